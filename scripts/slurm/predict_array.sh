#!/usr/bin/env bash
# Segment a cohort as a Slurm job array, one part per task (CPU). Submit from the checkout:
#
#   N=8 INPUT=/data/Task01_BrainTumour OUT=/scratch/preds MODEL=/models/brats.safetensors \
#       sbatch --array=0-7 scripts/slurm/predict_array.sh
#
# --array must be 0-(N-1); N is set here (or in the environment) rather than taken from
# SLURM_ARRAY_TASK_COUNT, because resubmitting only some parts (sbatch --array=1,5 ...) makes that
# count the number of tasks resubmitted, which would split the cohort differently.
# Each task runs `brainseg predict --part K/N` (K = array index + 1): cases done before are skipped,
# so resubmitting a part (or the whole array) finishes what is left. Watch progress with
#   brainseg cohort status "$OUT" --input "$INPUT"
#
#SBATCH --job-name=brainseg-predict
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=brainseg-predict-%A_%a.out
set -euo pipefail

N="${N:-8}"                     # number of parts: keep equal to the --array size
INPUT="${INPUT:?set INPUT to the dataset folder}"
OUT="${OUT:?set OUT to the prediction folder (shared by all parts)}"
MODEL="${MODEL:-}"              # empty: the bundled model
BRAINSEG="${BRAINSEG:-${SLURM_SUBMIT_DIR:-.}/target/release/brainseg}"
EXTRA="${EXTRA:-}"              # more predict flags (the same for every part: --tta, --labels brats, ...)

: "${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=0-$((N - 1))}"
if (( SLURM_ARRAY_TASK_ID >= N )); then
    echo "array index $SLURM_ARRAY_TASK_ID is outside 0-$((N - 1)) (N=$N)" >&2
    exit 2
fi
PART="$((SLURM_ARRAY_TASK_ID + 1))/$N"
# One rayon worker per CPU Slurm gave the task.
export RAYON_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"

args=(predict -i "$INPUT" -o "$OUT" --part "$PART")
[[ -n "$MODEL" ]] && args+=(--model "$MODEL")
# shellcheck disable=SC2206 # EXTRA is split into flags on purpose
args+=($EXTRA)
echo "$(date -Is) $(hostname) part $PART: $BRAINSEG ${args[*]}"
exec "$BRAINSEG" "${args[@]}"
