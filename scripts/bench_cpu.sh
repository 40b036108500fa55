#!/usr/bin/env bash
# CPU speed of the seed U-Net, brainseg (burn flex) beside PyTorch on the same threads and shapes
# (issue 9): forward and training step per 4x160x160x16 patch, whole 240x240x155 scans with the
# `seed` and `sliding` tilings; seconds, GFLOP/s, peak memory and the brainseg/PyTorch ratios.
#
# Usage: scripts/bench_cpu.sh [brainseg bench options]
#   scripts/bench_cpu.sh                                  # everything, all cores (~30 min on 2 cores)
#   scripts/bench_cpu.sh --threads 2 --parts forward,train --iters 3
#   scripts/bench_cpu.sh --size 64,64,16 --parts forward,train   # small patches, a quick look
#   scripts/bench_cpu.sh --layers --iters 1               # per-layer times, burn only (~5 min)
#   scripts/bench_cpu.sh --json > bench.json
# Environment: NO_TORCH=1 skips PyTorch; CARGO_TARGET_DIR as for cargo.
# The first run creates the ignored venv .venv-bench and installs torch and numpy from PyPI
# (a large download; an existing .venv-bench, e.g. one with nibabel only, just gets torch added).
# Timings mean little while other work loads the machine: check `uptime` first; each part records
# the 1-minute load average before and after it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench   # ignored by git (.venv*)

TORCH_ARGS=()
if [ -z "${NO_TORCH:-}" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        "$VENV/bin/pip" install --quiet torch numpy
    fi
    TORCH_ARGS=(--torch "$VENV/bin/python")
fi

cargo build --release --quiet --bin brainseg
BRAINSEG="${CARGO_TARGET_DIR:-target}/release/brainseg"
for arg in "$@"; do
    # Per-layer timing is burn only.
    if [ "$arg" = "--layers" ]; then TORCH_ARGS=(); fi
done
uptime >&2
exec "$BRAINSEG" bench "${TORCH_ARGS[@]}" "$@"
