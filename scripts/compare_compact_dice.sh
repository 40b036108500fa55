#!/usr/bin/env bash
# What the compact copy costs in Dice: the same short CPU training (same seed, so the same split and
# the same draws) from the original BraTS files and from `brainseg convert --compact`, then each
# run's validation Dice from metrics.csv side by side. A rough check: a few steps of a small network.
#
#   scripts/compare_compact_dice.sh [work folder]     (SRC, BIN, LEVELS, EPOCHS, STEPS override)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/brainseg-compact-dice}
SRC=${SRC:-../shared/data/brats2018}
BIN=${BIN:-target/release/brainseg}
LEVELS=${LEVELS:-32}
EPOCHS=${EPOCHS:-3}
STEPS=${STEPS:-10}
mkdir -p "$work"
# Each run keeps its decoded cases apart from other runs'.
export BRAINSEG_CACHE=$work/cache
[ -f "$work/copy/dataset.json" ] || nice "$BIN" convert "$SRC" "$work/copy" --compact --levels "$LEVELS"
for name in original copy; do
    data=$SRC
    [ $name = copy ] && data=$work/copy
    [ -f "$work/run-$name/metrics.csv" ] && continue
    rm -rf "$work/run-$name"
    nice "$BIN" train -i "$data" -o "$work/run-$name" --recipe cpu --patch 64 64 32 --base-filters 8 \
        --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --seed 0 2>&1 | grep -E "^epoch|best" || true
done
python3 - "$work" <<'EOF'
import csv, sys, pathlib
work = pathlib.Path(sys.argv[1])
runs = {n: list(csv.DictReader(open(work / f"run-{n}" / "metrics.csv"))) for n in ("original", "copy")}
print(f"{'epoch':>5} {'':8} {'WT':>6} {'TC':>6} {'ET':>6} {'mean':>6}  train loss")
for i in range(len(runs["original"])):
    for n, rows in runs.items():
        r = rows[i]
        print(f"{r['epoch']:>5} {n:8} {r['dice_wt'][:6] or '-':>6} {r['dice_tc'][:6] or '-':>6} "
              f"{r['dice_et'][:6] or '-':>6} {float(r['dice_mean']):6.4f}  {float(r['train_loss']):.4f}")
EOF
