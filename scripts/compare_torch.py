#!/usr/bin/env python3
"""Check our Rust U-Net against the PyTorch reference (/work/shared/bench/torch_unet3d.py).

Loads the checkpoint written by `cargo run -p brainseg-model --example export_for_torch -- DIR`
into the reference model (parameter names mapped, no conversion of shapes needed), runs it on
the same input and compares with the outputs the Rust side wrote. Exits 1 if the relative error
(max |torch - rust| / max |rust|) of the logits or the probabilities reaches 1e-4.

Usage: compare_torch.py DIR [--bench /work/shared/bench]   (--bench: the folder of torch_unet3d.py)
Needs only torch (the safetensors files are parsed here); the GPU machine's python3 has it.
Checked: base 8 and 16 (depth 4) on 1x4x32x32x16, relative error 2e-6 (logits), 4e-7 (probabilities).
"""
import argparse
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    metadata = header.pop("__metadata__", {})
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        buf = bytearray(raw[base + start:base + end])
        t = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = t.float()
    return tensors, metadata


def torch_name(ours):
    """encoders.i.convK -> enc.i.{0,2}; decoders.j.convK -> dec.j.{0,2}; head stays."""
    parts = ours.split(".")
    if parts[0] in ("encoders", "decoders"):
        prefix = "enc" if parts[0] == "encoders" else "dec"
        index = {"conv1": "0", "conv2": "2"}[parts[2]]
        return f"{prefix}.{parts[1]}.{index}.{parts[3]}"
    return ours


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--bench", default="/work/shared/bench")
    a = ap.parse_args()
    sys.path.insert(0, a.bench)
    import torch_unet3d as ref

    weights, metadata = read_safetensors(f"{a.dir}/model.safetensors")
    config = json.loads(metadata["config"])
    if config["upsampling"] != "nearest" or config["normalisation"] != "none":
        sys.exit("the reference model has nearest upsampling and no normalisation only")
    ref.DEPTH, ref.BASE = config["depth"], config["base_filters"]
    ref.IN_CH, ref.OUT_CH = config["in_channels"], config["out_classes"]
    model = ref.Unet3d().eval()
    state = {torch_name(k): v for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    captured = {}
    model.head.register_forward_hook(lambda _m, _i, out: captured.update(logits=out))

    io, _ = read_safetensors(f"{a.dir}/io.safetensors")
    with torch.no_grad():
        probs = model(io["input"])
    logits = captured["logits"]  # the head's output, before the reference's sigmoid
    params = sum(p.numel() for p in model.parameters())

    def rel(x, y):
        return float((x - y).abs().max() / y.abs().max())

    result = {
        "torch": torch.__version__,
        "config": config,
        "params": params,
        "input_shape": list(io["input"].shape),
        "rel_err_output": rel(probs, io["output"]),
        "rel_err_logits": rel(logits, io["logits"]),
        "max_abs_err_output": float((probs - io["output"]).abs().max()),
    }
    result["ok"] = result["rel_err_output"] < 1e-4 and result["rel_err_logits"] < 1e-4
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
