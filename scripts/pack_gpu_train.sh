#!/usr/bin/env bash
# Packs what scripts/gpu_train.sh carries to the GPU machine into $DEST (default gpu-data/train,
# ignored by git): the compact copy of the shared BraTS cases and the xz-compressed CUDA binary,
# choosing the data codec by measurement, and checks the 64 MiB budget of a device call.
#
#   scripts/pack_gpu_train.sh                       # all 16 cases, target-gpu-bin/brainseg
#   GPU_BIN=target/release/brainseg DEST=/tmp/x scripts/pack_gpu_train.sh   # CPU binary (dry runs)
#   PREV=gpu-data/prev scripts/pack_gpu_train.sh    # also count a previous run carried to resume
#
# The data: `brainseg convert --compact` (crop to the non-zero box + 2 voxels, uint8 per modality
# with the steps in quantisation.json) written twice, as gzip -9 .nii.gz files and as stored
# (level 0) .nii.gz files packed in one tar.xz; the smaller goes to $DEST (brats16/ or
# brats16.tar.xz). Needs the CPU build (target/release/brainseg) to convert.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${SRC:-../shared/data/brats2018}
DEST=${DEST:-gpu-data/train}
CONVERT_BIN=${CONVERT_BIN:-target/release/brainseg}
GPU_BIN=${GPU_BIN:-target-gpu-bin/brainseg}
CASES=${CASES:-}
PREV=${PREV:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
size() { du -sb "$1" | cut -f1; }
mib() { python3 -c "print(f'{$1 / 2**20:.2f} MiB')"; }
cases=()
[ -n "$CASES" ] && cases=(--cases "$CASES")

echo "== compact copy of $SRC"
nice "$CONVERT_BIN" convert "$SRC" "$tmp/gz9/brats16" --compact "${cases[@]}"
nice "$CONVERT_BIN" convert "$SRC" "$tmp/stored/brats16" --compact --gzip-level 0 "${cases[@]}"
(cd "$tmp/stored" && nice tar -cf - brats16 | nice xz -9e -T2 >"$tmp/brats16.tar.xz")
gz9=$(size "$tmp/gz9/brats16")
txz=$(size "$tmp/brats16.tar.xz")
raw=$(size "$tmp/stored/brats16")
echo "uint8 cropped, uncompressed (stored gzip): $(mib "$raw")"
echo "gzip -9 per file:                          $(mib "$gz9")"
echo "one tar.xz (xz -9e) of the stored files:   $(mib "$txz")"

rm -rf "$DEST"
mkdir -p "$DEST"
if [ "$txz" -lt "$gz9" ]; then
    cp "$tmp/brats16.tar.xz" "$DEST/"
    echo "chosen: brats16.tar.xz"
else
    cp -r "$tmp/gz9/brats16" "$DEST/"
    echo "chosen: brats16/ (gzip -9)"
fi

echo "== binary $GPU_BIN"
if [ -f "$GPU_BIN" ]; then
    nice xz -9e -T2 -c "$GPU_BIN" >"$DEST/brainseg.xz"
    echo "binary: $(mib "$(size "$GPU_BIN")") raw, $(mib "$(size "$DEST/brainseg.xz")") xz -9e"
else
    echo "no $GPU_BIN: build it with scripts/build_cuda.sh (the device has no Rust)"
fi

echo "== budget of one device call (64 MiB: working tree + carry)"
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
carry=$(size "$DEST")
prev=0
[ -n "$PREV" ] && prev=$(size "$PREV")
total=$((tree + carry + prev))
echo "working tree $(mib "$tree") + $DEST $(mib "$carry")${PREV:+ + $PREV $(mib "$prev")} = $(mib "$total") of 64 MiB"
if [ "$total" -gt $((64 << 20)) ]; then
    echo "OVER BUDGET: carry less (fewer cases: CASES=...), or ignore untracked files in the tree"
    exit 1
fi
