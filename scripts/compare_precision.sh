#!/usr/bin/env bash
# bf16 against f32 inference (issue #18): every case of DATA predicted with `--precision f32` and
# `--precision bf16`, both scored against the truth (Dice and HD95 per region), and the two label
# maps of each case compared voxel by voxel. Needs a CPU with AVX512_BF16 and a python3 with numpy.
#
#   scripts/compare_precision.sh BRAINSEG DATA OUT [PYTHON]
#
# Writes OUT/f32/, OUT/bf16/ (label maps, BraTS numbering), OUT/{f32,bf16}.json (evaluate) and
# prints the per-region means side by side and each case's share of voxels labelled alike.
set -euo pipefail
bin=$(realpath "$1"); data=$(realpath "$2"); out=$3; python=${4:-python3}
mkdir -p "$out"
for precision in f32 bf16; do
  [[ -f $out/$precision/predictions.json ]] ||
    "$bin" predict -i "$data" -o "$out/$precision" --labels brats --precision "$precision"
  "$bin" evaluate -i "$out/$precision" --truth "$data" --json "$out/$precision.json" >/dev/null
done
"$python" - "$out" <<'PY'
import gzip, json, os, struct, sys
import numpy as np
out = sys.argv[1]
def labels(path):
    raw = gzip.open(path).read()
    offset = int(struct.unpack("<f", raw[108:112])[0])
    return np.frombuffer(raw[offset:], dtype=np.uint8)
def means(path):
    return {m["metric"]: m["mean"] for m in json.load(open(path))["metrics"]}
worst, total, differing = 1.0, 0, 0
for name in sorted(os.listdir(f"{out}/f32")):
    if not name.endswith(".nii.gz") or "_probabilities" in name:
        continue
    a, b = labels(f"{out}/f32/{name}"), labels(f"{out}/bf16/{name}")
    same = float((a == b).mean())
    worst, total, differing = min(worst, same), total + a.size, differing + int((a != b).sum())
    print(f"{name:32} voxels labelled alike: {100 * same:.4f}%")
print(f"all cases: {differing} of {total} voxels differ ({100 * (1 - differing / total):.4f}% alike; worst case {100 * worst:.4f}%)")
f32, bf16 = means(f"{out}/f32.json"), means(f"{out}/bf16.json")
for region in ("wt", "tc", "et"):
    d32, d16 = f32[f"{region}_dice"], bf16[f"{region}_dice"]
    h32, h16 = f32.get(f"{region}_hd95"), bf16.get(f"{region}_hd95")
    print(f"{region.upper()}: Dice f32 {d32:.4f} bf16 {d16:.4f} (difference {d16 - d32:+.4f}); "
          f"HD95 f32 {h32:.2f} bf16 {h16:.2f}")
PY
