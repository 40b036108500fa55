#!/usr/bin/env bash
# Train the bundled model's network at scale in ONE device call: all 16 shared BraTS cases (compact
# copy), nnU-Net recipe, CUDA, a checkpoint every epoch, stopping cleanly before the call's limit.
#
# Prepare here (once):
#   scripts/build_cuda.sh                 # -> target-gpu-bin/brainseg (libtorch from the device's PyTorch)
#   scripts/pack_gpu_train.sh             # -> gpu-data/train/: brainseg.xz + brats16.tar.xz (sizes printed)
# First call (device `run` tool; the working tree, ~10 MB, travels too: 64 MiB in all):
#   run(command="bash scripts/gpu_train.sh", carry=["gpu-data/train"], timeout_s=600)
# It returns $OUT: state.tar.xz.00..02 (checkpoint + run files, ~35 MB: the nnU-Net network at 16 base
# filters is 19 MB of weights and SGD keeps as much again), best.safetensors (19 MB), metrics.csv,
# curves.png, train.log (7 files, ~55 MB: within the 8 files / 64 MiB a call returns).
# Measured budget of the first call: working tree 9.9 MiB + brats16.tar.xz 29.3 MiB + brainseg.xz
# ~11-12 MiB (the CPU build: 30.9 MiB -> 11.8 MiB; the CUDA build is about as large) = ~51 MiB.
# To continue in a second call (the script resumes a previous run folder given as $1):
#   mkdir -p gpu-data/prev && cp <files_at>/state.tar.xz.* gpu-data/prev/     # here, before the call
#   run(command="EPOCHS=16 bash scripts/gpu_train.sh gpu-data/prev", carry=["gpu-data/train", "gpu-data/prev"],
#       timeout_s=600)
# BUT at these sizes it does not fit: 51 MiB + 35 MiB of state > 64 MiB (PREV=gpu-data/prev
# scripts/pack_gpu_train.sh checks). It fits with fewer carried cases or a smaller network
# (BASE_FILTERS=8: ~9 MiB of state); the CPU dry run exercises it. Without best.safetensors in the
# previous folder, the resumed run saves a new one only when an epoch beats the earlier best
# (progress keeps the best Dice): keep the first call's file otherwise.
# Recipe: --recipe nnunet (nnU-Net's network: instance norm, strided-conv down, transposed-conv up,
# LeakyReLU, deep supervision; SGD Nesterov 0.01 + poly; Dice + BCE on WT/TC/ET; nnU-Net's
# augmentation) at the bundled model's sizes: 16 base filters, depth 4, patch 128x128x32, batch 2.
# An epoch is STEPS steps (500 ~ a minute on an H200 at ~0.1 s/step) + validation + checkpoint;
# EPOCHS is the whole poly schedule (8: one call of ~8 one-minute epochs anneals to the end; raise
# it on the first call when more calls are planned); the time limit cuts each call.
#
# Variables (defaults for the GPU): BACKEND=cuda TIME_LIMIT=500 (seconds of training, counted from
# the start of `brainseg train`; the call's limit is 600 s and unpacking takes ~10 s) STEPS=500
# EPOCHS=8 PATCH=128,128,32 BATCH=2 BASE_FILTERS=16 VALID_PATCHES=4 CASES (first N cases only;
# empty = all) CARRY=gpu-data/train WORK=/tmp/brainseg-gpu-train (fixed: config.json records the
# data path, which must be the same when resuming). CPU dry run (3 cases packed with the CPU binary:
#   CONVERT_BIN=target/release/brainseg GPU_BIN=target/release/brainseg DEST=/tmp/gpu-dry/train \
#     CASES=Brats18_2013_11_1,Brats18_2013_20_1,Brats18_2013_2_1 scripts/pack_gpu_train.sh
#   BACKEND=cpu TIME_LIMIT=60 STEPS=20 EPOCHS=1000 PATCH=32,32,16 BASE_FILTERS=4 CASES=2 VALID_PATCHES=1 \
#     CARRY=/tmp/gpu-dry/train WORK=/tmp/gpu-dry/work OUT=/tmp/gpu-dry/out1 bash scripts/gpu_train.sh
#   then the same with TIME_LIMIT=30 OUT=/tmp/gpu-dry/out2 ... scripts/gpu_train.sh /tmp/gpu-dry/prev
#   (prev holding out1's state.tar.xz.* and best.safetensors).
set -u
cd "$(dirname "$0")/.."
prev=${1:-}
BACKEND=${BACKEND:-cuda}
TIME_LIMIT=${TIME_LIMIT:-500}
STEPS=${STEPS:-500}
EPOCHS=${EPOCHS:-8}
PATCH=${PATCH:-128,128,32}
BATCH=${BATCH:-2}
BASE_FILTERS=${BASE_FILTERS:-16}
VALID_PATCHES=${VALID_PATCHES:-4}
CASES=${CASES:-}
CARRY=${CARRY:-gpu-data/train}
WORK=${WORK:-/tmp/brainseg-gpu-train}
OUT=${OUT:-$PWD/gpu-train-out}
mkdir -p "$OUT" "$WORK"
export BRAINSEG_CACHE=${BRAINSEG_CACHE:-$WORK/cache}   # decoded cases, beside the run
started=$(date +%s)
say() { echo "=== $* (+$(($(date +%s) - started))s)"; }

# 1. The binary: $CARRY/brainseg.xz (unpacked with python3's lzma), else $CARRY/brainseg, else
#    target-gpu-bin/brainseg; BRAINSEG_BIN overrides.
bin=${BRAINSEG_BIN:-}
if [ -z "$bin" ]; then
    if [ -f "$CARRY/brainseg.xz" ]; then
        bin=$WORK/brainseg
        python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as f, open(sys.argv[2], "wb") as o: shutil.copyfileobj(f, o, 1 << 20)' \
            "$CARRY/brainseg.xz" "$bin" || { echo "cannot unpack $CARRY/brainseg.xz"; exit 1; }
        chmod +x "$bin"
    elif [ -f "$CARRY/brainseg" ]; then
        bin=$CARRY/brainseg
    else
        bin=target-gpu-bin/brainseg
    fi
fi
if [ "$BACKEND" = cuda ]; then
    torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null \
        || echo /opt/torch/.venv/lib/python3.12/site-packages/torch/lib)
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
fi
"$bin" --version || { echo "the binary does not start:"; ldd "$bin" | grep -E "not found|torch|c10"; exit 1; }

# 2. The data: $CARRY/brats16.tar.xz (python3's tarfile) or the folder $CARRY/brats16.
data=$WORK/data/brats16
if [ ! -f "$data/dataset.json" ]; then
    if [ -f "$CARRY/brats16.tar.xz" ]; then
        mkdir -p "$WORK/data"
        python3 -c 'import sys, tarfile
with tarfile.open(sys.argv[1]) as t: t.extractall(sys.argv[2], filter="data")' \
            "$CARRY/brats16.tar.xz" "$WORK/data" || { echo "cannot unpack the data"; exit 1; }
    elif [ -f "$CARRY/brats16/dataset.json" ]; then
        mkdir -p "$WORK/data" && cp -r "$CARRY/brats16" "$WORK/data/"
    else
        echo "no data: expected $CARRY/brats16.tar.xz or $CARRY/brats16/ (scripts/pack_gpu_train.sh)"; exit 1
    fi
fi
if [ -n "$CASES" ]; then
    # The first CASES cases only (dry runs): a dataset.json listing them beside the full one.
    python3 - "$data" "$CASES" <<'EOF' || exit 1
import json, sys, pathlib
root, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
full = json.loads((root / "dataset.json").read_text())
if not (root / "dataset-all.json").exists():
    (root / "dataset-all.json").write_text(json.dumps(full, indent=1))
full = json.loads((root / "dataset-all.json").read_text())
full["training"] = full["training"][:n]
full["numTraining"] = n
(root / "dataset.json").write_text(json.dumps(full, indent=1))
EOF
fi
say "data: $(ls "$data/imagesTr" | wc -l) cases, $(du -sh "$data" | cut -f1) unpacked"

# 3. The run: new, or the previous call's state (state.tar.xz.NN parts + best.safetensors) resumed.
run=$WORK/run
rm -rf "$run"
# Should an epoch hang or run far over, `timeout` ends it: the last complete checkpoint still comes back.
hard_limit=$((${TIME_LIMIT%.*} + ${HARD_MARGIN:-60}))
if [ -n "$prev" ]; then
    ls "$prev"/state.tar.xz.* >/dev/null 2>&1 || { echo "no $prev/state.tar.xz.* to resume"; exit 1; }
    python3 - "$prev" "$WORK" <<'EOF' || { echo "cannot unpack the previous run"; exit 1; }
import io, sys, tarfile, pathlib
prev, work = pathlib.Path(sys.argv[1]), sys.argv[2]
blob = b"".join(p.read_bytes() for p in sorted(prev.glob("state.tar.xz.*")))
with tarfile.open(fileobj=io.BytesIO(blob), mode="r:xz") as t:
    t.extractall(work, filter="data")
EOF
    [ -f "$prev/best.safetensors" ] && cp "$prev/best.safetensors" "$run/"
    say "resuming after epoch $(($(wc -l <"$run/metrics.csv") - 1))"
    set -o pipefail
    timeout --kill-after=10 "$hard_limit" "$bin" train --resume "$run" --backend "$BACKEND" \
        --epochs "$EPOCHS" --time-limit "$TIME_LIMIT" 2>&1 | tee "$OUT/train.log"
    rc=$?
else
    say "training: recipe nnunet, $BACKEND, patch $PATCH, batch $BATCH, $BASE_FILTERS base filters, $STEPS steps/epoch, $EPOCHS epochs, limit ${TIME_LIMIT}s"
    set -o pipefail
    timeout --kill-after=10 "$hard_limit" "$bin" train -i "$data" -o "$run" --recipe nnunet --backend "$BACKEND" --patch ${PATCH//,/ } \
        --batch-size "$BATCH" --base-filters "$BASE_FILTERS" --depth 4 --epochs "$EPOCHS" \
        --steps-per-epoch "$STEPS" --valid-patches "$VALID_PATCHES" --train-fraction 0.8 --seed 0 \
        --time-limit "$TIME_LIMIT" 2>&1 | tee "$OUT/train.log"
    rc=$?
fi
set +o pipefail
say "brainseg train exited $rc"

# 4. What comes back: the run's state (checkpoint + small files) as xz parts of at most 15 MiB
#    (a call returns 8 files of 16 MiB at most), best.safetensors, metrics.csv, curves.png.
if [ -f "$run/metrics.csv" ]; then
    python3 - "$run" "$OUT" <<'EOF'
import csv, io, sys, tarfile, pathlib
run, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:xz", preset=0) as t:
    for name in ["config.json", "split.json", "metrics.csv", "checkpoint"]:
        if (run / name).exists():
            t.add(run / name, arcname=f"run/{name}")
blob, part = buf.getvalue(), 15 << 20
for old in out.glob("state.tar.xz.*"):
    old.unlink()
for i in range(0, len(blob), part):
    (out / f"state.tar.xz.{i // part:02d}").write_bytes(blob[i:i + part])
for name in ["best.safetensors", "metrics.csv", "curves.png"]:
    if (run / name).exists():
        (out / name).write_bytes((run / name).read_bytes())
rows = list(csv.DictReader(open(run / "metrics.csv")))
cfg = __import__("json").loads((run / "config.json").read_text())
steps = cfg["steps_per_epoch"]
print(f"state: {len(blob) / 2**20:.1f} MiB in {-(-len(blob) // part)} part(s)")
print(f"epochs done: {len(rows)} of {cfg['epochs']} = {len(rows) * steps} steps of batch {cfg['sampling']['batch_size']}")
for r in rows[-5:]:
    print(f"  epoch {r['epoch']}: train loss {float(r['train_loss']):.4f}, valid Dice WT {r['dice_wt'] or '-'} "
          f"TC {r['dice_tc'] or '-'} ET {r['dice_et'] or '-'} mean {float(r['dice_mean']):.4f} ({r['seconds']} s)")
if rows:
    # brainseg train's rule: the highest moving average (0.9 old, 0.1 new) of the mean validation Dice.
    ema, best, best_ema = None, None, float("-inf")
    for r in rows:
        d = float(r["dice_mean"])
        ema = d if ema is None else 0.9 * ema + 0.1 * d
        if ema > best_ema:
            best, best_ema = r, ema
    print(f"best: epoch {best['epoch']}, mean validation Dice {float(best['dice_mean']):.4f} (moving average {best_ema:.4f})")
EOF
else
    echo "no epoch finished: nothing to return"
fi
ls -l "$OUT"
say "done"
exit $rc
