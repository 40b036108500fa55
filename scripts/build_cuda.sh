#!/usr/bin/env bash
# Builds `brainseg` with the `cuda` feature (burn's libtorch backend) and copies the binary to
# target-gpu-bin/brainseg, the file a GPU session carries (see scripts/gpu_session.sh).
#
# libtorch comes from the PyPI wheel torch==2.11.0 (CUDA 13.0 build), installed with --no-deps into
# an ignored venv (.venv-torch, ~1.2 GB): only its torch/include and torch/lib are used. Its CUDA
# runtime wheels (cuDNN, cuBLAS, ...) are not installed here: they are needed at run time only, on
# the GPU machine, where PyTorch already holds them. So the build
#   - points torch-sys and burn-tch at the wheel's folder (LIBTORCH) instead of asking Python
#     (LIBTORCH_USE_PYTORCH would `import torch`, which fails without the CUDA wheels),
#   - bypasses tch 0.22's libtorch version check (it expects 2.9; 2.11's C API is compatible),
#   - links with --allow-shlib-undefined, since libtorch_cuda's own CUDA dependencies are absent here,
#   - records the venv's torch/lib as a run path, so the binary starts here without LD_LIBRARY_PATH
#     once those dependencies can be found (elsewhere set LD_LIBRARY_PATH to PyTorch's torch/lib).
#
# Usage: scripts/build_cuda.sh            (CARGO_TARGET_DIR defaults to /work/target-gpu)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${BRAINSEG_TORCH_VENV:-$root/.venv-torch}
torch_version=2.11.0

torch_dir() { compgen -G "$venv/lib/python3*/site-packages/torch" | head -n 1; }
if [ -z "$(torch_dir)" ] || [ ! -f "$(torch_dir)/lib/libtorch_cuda.so" ]; then
    echo "[build_cuda] installing torch==$torch_version (wheel only, ~530 MB download) into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-deps --only-binary=:all: "torch==$torch_version"
fi
torch=$(torch_dir)
[ -f "$torch/lib/libtorch_cuda.so" ] || { echo "[build_cuda] $torch/lib has no libtorch_cuda.so: not a CUDA wheel" >&2; exit 1; }

unset LIBTORCH_USE_PYTORCH
export LIBTORCH="$torch" LIBTORCH_CXX11_ABI=1 LIBTORCH_BYPASS_VERSION_CHECK=1
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,--allow-shlib-undefined -C link-arg=-Wl,-rpath,$torch/lib"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-gpu}

cd "$root"
cargo build --release --features cuda --bin brainseg
mkdir -p target-gpu-bin
cp "$CARGO_TARGET_DIR/release/brainseg" target-gpu-bin/brainseg.tmp
mv target-gpu-bin/brainseg.tmp target-gpu-bin/brainseg
echo "[build_cuda] target-gpu-bin/brainseg ($(du -h target-gpu-bin/brainseg | cut -f1)); run with LD_LIBRARY_PATH=<torch>/lib" >&2
