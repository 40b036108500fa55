#!/usr/bin/env bash
# Cross-validated comparison of training recipes at equal steps (issue #15), on whole-scan predictions
# of each fold's held-out cases. Resumable: a fold whose predictions exist is skipped, a stopped
# training run is resumed.
#
#   scripts/cv_compare.sh BRAINSEG DATA OUT [RECIPE...]
#
# Settings come from the environment (defaults: a configuration small enough that ten runs fit a
# working day on 2 cores): FOLDS=5 EPOCHS=10 STEPS=24 FILTERS=8 PATCH=64,64,32 SEED=0.
# Writes OUT/<recipe>/fold_<k>/ (the run), OUT/<recipe>/pred_<k>/ (label maps, BraTS numbering) and
# OUT/<recipe>/cv.json + cv.csv (all folds scored together).
set -euo pipefail
bin=$(realpath "$1"); data=$(realpath "$2"); out=$3; shift 3
recipes=("${@:-cpu nnunet}")
read -r -a recipes <<<"${recipes[*]}"
folds=${FOLDS:-5} epochs=${EPOCHS:-10} steps=${STEPS:-24}
filters=${FILTERS:-8} patch=${PATCH:-64,64,32} seed=${SEED:-0}
mkdir -p "$out"
for recipe in "${recipes[@]}"; do
  for ((k = 0; k < folds; k++)); do
    run=$out/$recipe/fold_$k pred=$out/$recipe/pred_$k
    [[ -f $pred/predictions.json ]] && continue
    if [[ -f $run/config.json ]]; then
      "$bin" train --resume "$run" --epochs "$epochs"
    else
      "$bin" train -i "$data" -o "$run" --recipe "$recipe" --folds "$folds" --fold "$k" \
        --seed "$seed" --epochs "$epochs" --steps-per-epoch "$steps" --base-filters "$filters" \
        --patch "$patch" --valid-patches 2
    fi
    # Whole-scan predictions of the fold's held-out cases, into a temporary folder renamed when done.
    rm -rf "$pred.partial"
    for case in $(jq -r '.valid[]' "$run/split.json"); do
      "$bin" predict -i "$data/$case" -o "$pred.partial" --model "$run/best.safetensors" \
        --labels brats --min-enhancing 0
    done
    mv "$pred.partial" "$pred"
  done
  inputs=()
  for ((k = 0; k < folds; k++)); do inputs+=(-i "$out/$recipe/pred_$k"); done
  "$bin" evaluate "${inputs[@]}" --truth "$data" --json "$out/$recipe/cv.json" \
    --csv "$out/$recipe/cv.csv" | tee "$out/$recipe/cv.txt"
done
