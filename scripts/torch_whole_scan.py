#!/usr/bin/env python3
"""Whole-scan inference of the seed U-Net in PyTorch, tiled as brainseg tiles it
(crates/brainseg-infer/src/tiling.rs), for `brainseg bench --torch`.

- seed: the notebook's grid, starts 0, tile, 2*tile, ... per axis, zero-padded past the end, uniform weights.
- sliding: nnU-Net's window, ceil((dim - tile) / (tile * (1 - overlap))) + 1 evenly spread starts per
  axis (rounded half to even), predictions weighted by a Gaussian (sigma = tile / 8, peak 1).
Each tile is standardised per channel and z-slice (brainseg's default `seed_slices`), tiles go to
the model `--batch` at a time, and the weighted sums are divided out at the end.

The model is torch_unet3d.py's (`--reference`) with its default initialisation; the scan is random
intensities: only the time matters. Prints one JSON line: {"scan": {"s_per_iter_median": ...}, ...}.
Usage: torch_whole_scan.py --reference ../shared/bench/torch_unet3d.py --tiling seed --threads 2
"""
import argparse
import importlib.util
import json
import math
import resource
import sys
import time

import torch


def load_reference(path):
    spec = importlib.util.spec_from_file_location("torch_unet3d", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tile_starts(dim, tile, tiling, overlap):
    if tiling == "seed":
        return list(range(0, max(dim, 1), tile))
    if dim <= tile:
        return [0]
    span = dim - tile
    steps = math.ceil(span / (tile * (1 - overlap))) + 1
    step = span / (steps - 1)
    return [round(step * i) for i in range(steps)]  # Python rounds half to even, as brainseg


def gaussian_importance(tile):
    profiles = []
    for n in tile:
        sigma, centre = n / 8, (n - 1) / 2
        p = torch.exp(-((torch.arange(n, dtype=torch.float64) - centre) ** 2) / (2 * sigma * sigma))
        profiles.append(p / p.max())
    px, py, pz = profiles
    return (px[:, None, None] * py[None, :, None] * pz[None, None, :]).float()


def standardize_slices(batch):
    """Per tile, channel and z-slice: subtract the mean, divide by the std where it is not zero."""
    mean = batch.mean(dim=(2, 3), keepdim=True)
    std = batch.std(dim=(2, 3), keepdim=True, unbiased=False)
    return (batch - mean) / torch.where(std > 0, std, torch.ones_like(std))


def predict_scan(model, image, tile, tiling, overlap, batch_size, out_channels):
    _, x, y, z = image.shape
    weights = torch.ones(tile) if tiling == "seed" else gaussian_importance(tile)
    starts = [tile_starts(d, t, tiling, overlap) for d, t in zip((x, y, z), tile)]
    corners = [(cx, cy, cz) for cx in starts[0] for cy in starts[1] for cz in starts[2]]
    total = torch.zeros(out_channels, x, y, z)
    weight_sum = torch.zeros(x, y, z)
    for first in range(0, len(corners), batch_size):
        chunk = corners[first:first + batch_size]
        batch = torch.zeros(len(chunk), image.shape[0], *tile)
        extents = []
        for slot, (cx, cy, cz) in enumerate(chunk):
            ex, ey, ez = min(tile[0], x - cx), min(tile[1], y - cy), min(tile[2], z - cz)
            batch[slot, :, :ex, :ey, :ez] = image[:, cx:cx + ex, cy:cy + ey, cz:cz + ez]
            extents.append((ex, ey, ez))
        probabilities = model(standardize_slices(batch))
        for slot, ((cx, cy, cz), (ex, ey, ez)) in enumerate(zip(chunk, extents)):
            w = weights[:ex, :ey, :ez]
            total[:, cx:cx + ex, cy:cy + ey, cz:cz + ez] += probabilities[slot, :, :ex, :ey, :ez] * w
            weight_sum[cx:cx + ex, cy:cy + ey, cz:cz + ez] += w
    return total / weight_sum, len(corners)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True, help="torch_unet3d.py (the model)")
    ap.add_argument("--volume", default="240x240x155", help="XxYxZ")
    ap.add_argument("--size", default="160x160x16", help="tile XxYxZ")
    ap.add_argument("--tiling", default="seed", choices=["seed", "sliding"])
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=2, help="tiles per model call")
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    reference = load_reference(a.reference)
    torch.manual_seed(42)
    model = reference.Unet3d().eval()
    volume = tuple(int(v) for v in a.volume.split("x"))
    tile = tuple(int(v) for v in a.size.split("x"))
    image = torch.rand(reference.IN_CH, *volume) * 1000
    times, tiles = [], 0
    with torch.inference_mode():
        for it in range(a.iters):
            t = time.perf_counter()
            probabilities, tiles = predict_scan(model, image, tile, a.tiling, a.overlap, a.batch, reference.OUT_CH)
            dt = time.perf_counter() - t
            print(f"[torch_whole_scan] {a.tiling} it {it}: {dt:.2f}s ({tiles} tiles, mean p {float(probabilities.mean()):.4f})",
                  file=sys.stderr, flush=True)
            times.append(dt)
    s = sorted(times)
    print(json.dumps({
        "framework": f"torch-{torch.__version__}", "threads": torch.get_num_threads(),
        "volume": volume, "tile": tile, "tiling": a.tiling, "overlap": a.overlap, "batch": a.batch,
        "scan": {"s_per_iter_median": s[len(s) // 2], "s_per_iter_min": s[0], "iters": len(s), "tiles": tiles},
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }), flush=True)


if __name__ == "__main__":
    main()
