#!/usr/bin/env bash
# Load speed: nibabel `get_fdata(dtype=float32)` against brainseg's loader on the same
# 240x240x155x4 int16 .nii.gz (the four modalities of a shared BraTS case stacked by nibabel).
# Usage: scripts/bench_nifti_load.sh [CASE_FOLDER] ; RUNS=7 by default. Prints both medians and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
CASE=${1:-../shared/data/brats2018/Brats18_2013_2_1}
RUNS=${RUNS:-7}
VENV=.venv-bench   # ignored by git (.venv*)

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet nibabel numpy
fi
cargo build --release --quiet -p brainseg-volume --example load_bench
BENCH_BIN="${CARGO_TARGET_DIR:-target}/release/examples/load_bench"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FILE="$WORK/case_4d.nii.gz"

"$VENV/bin/python" - "$CASE" "$FILE" <<'PY'
import sys, pathlib, numpy as np, nibabel as nib
case, out = pathlib.Path(sys.argv[1]), sys.argv[2]
suffixes = ["flair", "t1", "t1ce", "t2"]
imgs = [nib.load(next(case.glob(f"*_{s}.nii*"))) for s in suffixes]
data = np.stack([np.asarray(i.dataobj) for i in imgs], axis=-1).astype(np.int16)
out_img = nib.Nifti1Image(data, imgs[0].affine, imgs[0].header)
out_img.set_data_dtype(np.int16)
out_img.to_filename(out)
print(f"wrote {out}: {data.shape} {data.dtype}")
PY

NIB=$("$VENV/bin/python" - "$FILE" "$RUNS" <<'PY'
import sys, time, statistics, numpy as np, nibabel as nib
path, runs = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(runs):
    t = time.perf_counter()
    data = nib.load(path).get_fdata(dtype=np.float32)
    times.append(time.perf_counter() - t)
assert data.shape == (240, 240, 155, 4)
print(f"{statistics.median(times):.4f}")
PY
)
RUST=$("$BENCH_BIN" "$FILE" "$RUNS" | awk '/median_s/ {print $2}')
echo "nibabel get_fdata(float32): median ${NIB} s"
echo "brainseg read (canonical): median ${RUST} s"
python3 -c "print(f'ratio nibabel/brainseg: {$NIB / $RUST:.2f}x')"
