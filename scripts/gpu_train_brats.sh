#!/usr/bin/env bash
# Train the bundled model on a GPU in one device call (issue: a pretrained model trained on real BraTS).
#
# Prepare here:
#   scripts/build_cuda.sh                                   # -> target-gpu-bin/brainseg
#   brainseg convert ../shared/data/brats2018 gpu-data/brats-u8 --quantize-u8 --cases <ids>   # compact copy
# then run from the repository root on the GPU machine, carrying target-gpu-bin and gpu-data (64 MiB in all):
#   bash scripts/gpu_train_brats.sh [seconds]
# The run's small files (config.json, split.json, metrics.csv, curves.png, best.safetensors) come back in
# $OUT/run; its case cache stays behind. Training stops after the given seconds (default 270); every epoch
# is checkpointed, so best.safetensors is the best epoch reached by then (by the moving average of the
# validation Dice, as `brainseg train` chooses).
set -u
cd "$(dirname "$0")/.."
bin=${BRAINSEG_BIN:-target-gpu-bin/brainseg}
limit=${1:-270}
torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null \
    || echo /opt/torch/.venv/lib/python3.12/site-packages/torch/lib)
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
echo "=== training on $(nvidia-smi --query-gpu=name --format=csv,noheader) for at most ${limit}s ($(date +%T))"
timeout --kill-after=5 "$limit" "$bin" train --data gpu-data/brats-u8 --out "$work/run" --backend cuda \
    --patch 128,128,32 --batch-size 2 --epochs 1000 --steps-per-epoch 20 --valid-patches 8 \
    --learning-rate 1e-3 --base-filters 16 --targets regions --loss dice-bce --standardization zscore \
    --foreground-share 0.5 --train-fraction 0.86 --seed 0 2>&1 | tail -n 40
echo "exit ${PIPESTATUS[0]} ($(date +%T))"
mkdir -p "${OUT:-.}/run"
for f in config.json split.json metrics.csv curves.png best.safetensors; do
    cp "$work/run/$f" "${OUT:-.}/run/" 2>/dev/null || echo "no $f"
done
rm -rf "$work"
