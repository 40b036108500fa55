#!/usr/bin/env bash
# One GPU session in one device call: checks brainseg's CUDA build against its CPU path, then
# times it beside PyTorch (../shared/bench/torch_unet3d.py) on the seed U-Net and prints ratios.
#
# Build here first (scripts/build_cuda.sh), then run from the repository root on the GPU machine,
# carrying the binary:  device run, carry ["target-gpu-bin"], command "bash scripts/gpu_session.sh"
# Each step has its own time limit, so one hang cannot eat the session (worst case ~8 minutes:
# give the call timeout_s 540; normally ~3). Each step's JSON and log are packed into
# $OUT/gpu-session.tgz (one file: a device call brings back at most 8).
set -u
cd "$(dirname "$0")/.."
bin=${BRAINSEG_BIN:-target-gpu-bin/brainseg}
bench=${TORCH_BENCH:-../shared/bench/torch_unet3d.py}
# The GPU machine's copy of the repository has no ../shared: carry a copy in the ignored gpu-data/
# (cp ../shared/bench/torch_unet3d.py gpu-data/ before the call, carry ["target-gpu-bin", "gpu-data"]).
[ -f "$bench" ] || bench=gpu-data/torch_unet3d.py
work=$(mktemp -d)
out=$work/results
mkdir -p "$out"

# libtorch (and, through its run paths, cuDNN and cuBLAS) from the machine's PyTorch.
torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null \
    || echo /opt/torch/.venv/lib/python3.12/site-packages/torch/lib)
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

step() { echo; echo "=== $1 ($(date +%T))"; }
# run LIMIT NAME CMD...: stdout to $out/NAME.json (the JSON line), stderr to $out/NAME.log.
run() {
    local limit=$1 name=$2; shift 2
    local started=$(date +%s.%N)
    timeout --kill-after=5 "$limit" "$@" >"$out/$name.json" 2>"$out/$name.log"
    local rc=$?
    local seconds=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")
    echo "$name: exit $rc in ${seconds}s"
    [ $rc -eq 124 ] && echo "$name: TIMED OUT after ${limit}s"
    [ $rc -ne 0 ] && tail -n 15 "$out/$name.log"
    tail -n 1 "$out/$name.json"
    echo "$seconds" >"$out/$name.wall"
    return $rc
}

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu --format=csv,noheader
echo "torch lib: $torch_lib"
ls -l "$bin" || { echo "no $bin: build it with scripts/build_cuda.sh and carry target-gpu-bin"; exit 1; }
if ! "$bin" --version; then
    echo "the binary does not start; its libraries:"; ldd "$bin" | grep -E "not found|torch|c10"; exit 1
fi

step "(a) correctness: CUDA against CPU, same weights and data (forward, 3 Adam steps)"
run 60 check "$bin" bench-gpu --check --backend cuda

step "(a) end to end: tiny synthetic dataset (CPU demo), then train + predict on CUDA"
run 60 demo "$bin" demo --out "$work/demo" --cases 2 --shape 48,48,32 --epochs 1 --steps-per-epoch 1 \
    --patch 32,32,16 --base-filters 4
run 60 train-cuda "$bin" train --data "$work/demo/data" --out "$work/run" --backend cuda --epochs 1 \
    --steps-per-epoch 3 --patch 32,32,16 --batch-size 2 --base-filters 8 --valid-patches 2
run 45 predict-cuda "$bin" predict -i "$work/demo/heldout" -o "$work/pred" --model "$work/run/best.safetensors" --backend cuda
ls "$work/pred" 2>/dev/null

step "(b) timing: brainseg (burn + libtorch), seed U-Net, batch 3 of 4x160x160x16"
# Peak memory of the whole device (context included), sampled while brainseg runs.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$out/brainseg-mem.csv" &
sampler=$!
run 150 brainseg "$bin" bench-gpu --backend cuda --batch 3 --size 160,160,16 --iters 10 --warmup 3
kill "$sampler" 2>/dev/null

step "(b) timing: PyTorch fp32 (TF32 convs) and bf16 autocast + channels_last_3d + cudnn.benchmark"
run 60 torch-fp32 python3 "$bench" --device cuda --batch 3 --iters 10 --warmup 3
run 60 torch-bf16 python3 "$bench" --device cuda --batch 3 --iters 10 --warmup 3 --amp --channels-last --cudnn-benchmark

step "ratios (brainseg time / PyTorch time: above 1 is slower)"
python3 - "$out" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / f"{name}.json").read_text().strip().splitlines()[-1])
    except Exception:
        return None
ours = load("brainseg")
if not ours:
    sys.exit("no brainseg timing")
mem = [int(v) for v in (out / "brainseg-mem.csv").read_text().split() if v.isdigit()]
wall = (out / "brainseg.wall").read_text().strip()
train, infer = ours.get("train") or {}, ours.get("infer") or {}
print(f"brainseg: train {train.get('s_per_iter_median', float('nan')) * 1e3:.1f} ms/step "
      f"({train.get('patches_per_s', float('nan')):.1f} patches/s), infer {infer.get('s_per_patch', float('nan')) * 1e3:.2f} ms/patch, "
      f"first train step {train.get('first_iter_s', float('nan')):.2f} s, first infer batch {infer.get('first_iter_s', float('nan')):.2f} s, "
      f"process wall {wall} s, device memory peak {max(mem, default=0) / 1024:.2f} GiB (whole GPU, context included)")
for name in ("torch-fp32", "torch-bf16"):
    ref = load(name)
    if not ref:
        print(f"{name}: no result"); continue
    rt, ri = ref["train"]["s_per_iter_median"], ref["infer"]["s_per_patch"]
    print(f"{name}: train {rt * 1e3:.1f} ms/step ({ref['batch'] / rt:.1f} patches/s), infer {ri * 1e3:.2f} ms/patch, "
          f"max allocated {ref.get('max_mem_gib')} GiB | brainseg/torch: train x{train['s_per_iter_median'] / rt:.2f}, "
          f"infer x{infer['s_per_patch'] / ri:.2f}")
EOF
tar -czf "${OUT:-.}/gpu-session.tgz" -C "$work" results && echo "results: ${OUT:-.}/gpu-session.tgz"
rm -rf "$work"
