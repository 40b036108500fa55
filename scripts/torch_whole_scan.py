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

With --case-raw (`brainseg bench --parts predict` writes it), the scan is a real case and the model a
brainseg model file (--weights, safetensors; the reference's network with the file's depth, filters
and channels): predicted as `brainseg predict` does by default: cropped to the bounding box of its
non-zero voxels, z-scored per channel over those voxels (population std), sliding window with
Gaussian weights, tiles with no non-zero voxel skipped. --probabilities-out writes the result.
"""
import argparse
import importlib.util
import struct
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


def predict_scan(model, image, tile, tiling, overlap, batch_size, out_channels,
                 standardize=standardize_slices, skip_empty=False):
    _, x, y, z = image.shape
    weights = torch.ones(tile) if tiling == "seed" else gaussian_importance(tile)
    starts = [tile_starts(d, t, tiling, overlap) for d, t in zip((x, y, z), tile)]
    corners = [(cx, cy, cz) for cx in starts[0] for cy in starts[1] for cz in starts[2]]
    if skip_empty:
        corners = [(cx, cy, cz) for cx, cy, cz in corners
                   if bool((image[:, cx:cx + tile[0], cy:cy + tile[1], cz:cz + tile[2]] != 0).any())]
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
        probabilities = model(standardize(batch))
        for slot, ((cx, cy, cz), (ex, ey, ez)) in enumerate(zip(chunk, extents)):
            w = weights[:ex, :ey, :ez]
            total[:, cx:cx + ex, cy:cy + ey, cz:cz + ez] += probabilities[slot, :, :ex, :ey, :ez] * w
            weight_sum[cx:cx + ex, cy:cy + ey, cz:cz + ez] += w
    return total / weight_sum.clamp(min=1e-30), len(corners)


def load_brainseg_model(reference, path):
    """The reference network shaped and filled as a brainseg safetensors model (f16 or f32)."""
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        data = f.read()
    config = json.loads(header["__metadata__"]["config"])
    if config.get("upsampling") != "nearest" or config.get("normalisation") != "none":
        sys.exit(f"{path}: only the seed network (nearest upsampling, no normalisation) is mirrored here")
    reference.DEPTH, reference.BASE = config["depth"], config["base_filters"]
    reference.IN_CH, reference.OUT_CH = config["in_channels"], config["out_classes"]
    model = reference.Unet3d().eval()
    dtypes = {"F16": torch.float16, "F32": torch.float32, "BF16": torch.bfloat16}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = torch.frombuffer(bytearray(data[start:end]), dtype=dtypes[info["dtype"]])
        tensors[name] = raw.reshape(info["shape"]).float()
    # brainseg's names -> the reference's modules (each block is conv, ReLU, conv, ReLU).
    state = {}
    for name, value in tensors.items():
        parts = name.split(".")
        if parts[0] in ("encoders", "decoders"):
            prefix = "enc" if parts[0] == "encoders" else "dec"
            index = {"conv1": 0, "conv2": 2}[parts[2]]
            state[f"{prefix}.{parts[1]}.{index}.{parts[3]}"] = value
        else:
            state[name] = value
    model.load_state_dict(state)
    return model, config


def zscore_brain(image):
    """Per channel over voxels non-zero in any channel: (v - mean) / std (population), 0 outside."""
    brain = (image != 0).any(dim=0)
    out = torch.zeros_like(image)
    for c in range(image.shape[0]):
        values = image[c][brain].double()
        mean = values.mean() if values.numel() else torch.tensor(0.0, dtype=torch.float64)
        std = values.std(unbiased=False) if values.numel() else torch.tensor(0.0, dtype=torch.float64)
        centred = image[c].double() - mean
        scored = centred / std if std > 0 else centred
        out[c] = torch.where(brain, scored, torch.zeros_like(scored)).float()
    return out


def predict_case(model, image, tile, overlap, batch_size, out_channels):
    """brainseg predict's defaults: crop to the non-zero box, z-score, sliding window, skip empty tiles."""
    nonzero = (image != 0).any(dim=0).nonzero()
    probabilities = torch.zeros(out_channels, *image.shape[1:])
    if nonzero.numel() == 0:
        return probabilities, 0
    low, high = nonzero.min(dim=0).values, nonzero.max(dim=0).values + 1
    box = (slice(None),) + tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    inner, tiles = predict_scan(model, zscore_brain(image[box]), tile, "sliding", overlap, batch_size,
                                out_channels, standardize=lambda b: b, skip_empty=True)
    probabilities[box] = inner
    return probabilities, tiles


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True, help="torch_unet3d.py (the model)")
    ap.add_argument("--volume", default="240x240x155", help="XxYxZ")
    ap.add_argument("--size", default="160x160x16", help="tile XxYxZ")
    ap.add_argument("--tiling", default="seed", choices=["seed", "sliding"])
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=1, help="tiles per model call (brainseg predict's default)")
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    ap.add_argument("--case-raw", help="a real case: (C, X, Y, Z) float32, raw little-endian")
    ap.add_argument("--case-shape", help="CxXxYxZ of --case-raw")
    ap.add_argument("--weights", help="with --case-raw: the brainseg model (safetensors)")
    ap.add_argument("--probabilities-out", help="with --case-raw: write (K, X, Y, Z) float32 here, raw")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    reference = load_reference(a.reference)
    torch.manual_seed(42)
    tile = tuple(int(v) for v in a.size.split("x"))
    if a.case_raw:
        model, config = load_brainseg_model(reference, a.weights)
        shape = tuple(int(v) for v in a.case_shape.split("x"))
        image = torch.from_numpy(__import__("numpy").fromfile(a.case_raw, dtype="<f4").reshape(shape))
        volume = shape[1:]
        scan = lambda: predict_case(model, image, tile, a.overlap, a.batch, reference.OUT_CH)
        a.tiling = "case"
    else:
        model = reference.Unet3d().eval()
        volume = tuple(int(v) for v in a.volume.split("x"))
        image = torch.rand(reference.IN_CH, *volume) * 1000
        scan = lambda: predict_scan(model, image, tile, a.tiling, a.overlap, a.batch, reference.OUT_CH)
    times, tiles = [], 0
    with torch.inference_mode():
        for it in range(a.iters):
            t = time.perf_counter()
            probabilities, tiles = scan()
            dt = time.perf_counter() - t
            print(f"[torch_whole_scan] {a.tiling} it {it}: {dt:.2f}s ({tiles} tiles, mean p {float(probabilities.mean()):.4f})",
                  file=sys.stderr, flush=True)
            times.append(dt)
    if a.probabilities_out:
        probabilities.numpy().astype("<f4").tofile(a.probabilities_out)
    s = sorted(times)
    print(json.dumps({
        "framework": f"torch-{torch.__version__}", "threads": torch.get_num_threads(),
        "volume": volume, "tile": tile, "tiling": a.tiling, "overlap": a.overlap, "batch": a.batch,
        "scan": {"s_per_iter_median": s[len(s) // 2], "s_per_iter_min": s[0], "iters": len(s), "tiles": tiles},
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }), flush=True)


if __name__ == "__main__":
    main()
