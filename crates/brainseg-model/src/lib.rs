//! brainseg-model: the seed's 3D U-Net (ellisdg/3DUnetCNN) on burn 0.22 with nnU-Net's options
//! (instance norm, leaky ReLU, strided convolutions, deep supervision), its losses on tensors,
//! a layer table, and safetensors checkpoints PyTorch can read.
//!
//! burn 0.22 tensors and modules carry no backend type: the [`Device`] a model is built on picks
//! the backend (`Device::flex()` on CPU; with the `cuda` feature, [`cuda_device`]: libtorch on the
//! first NVIDIA GPU) and `device.autodiff()` turns on gradients. [`cpu_device`] is the default here.
pub mod checkpoint;
pub mod config;
pub mod conv;
mod error;
pub mod loss;
pub mod ops;
pub mod predict;
pub mod summary;
pub mod unet;

/// The framework itself, so that callers (the CLI's benchmarks) use exactly this version of it.
pub use burn;
pub use burn::tensor::Device;
pub use checkpoint::{
    load_checkpoint, read_checkpoint_config, read_metadata, save_checkpoint,
    save_checkpoint_with_metadata, StorageDtype, CHECKPOINT_FORMAT_VERSION,
};
pub use config::{
    Activation, Downsampling, Normalisation, OutputActivation, Targets, UNet3dConfig, Upsampling,
    LEAKY_RELU_SLOPE,
};
pub use error::{Error, Result};
pub use loss::{
    bce_with_logits, deep_supervision_loss, deep_supervision_weights, dice_bce_loss,
    dice_coefficient, soft_dice_loss, SEED_EPSILON,
};
pub use predict::predict_batch;
pub use summary::{summary, LayerRow, ModelSummary};
pub use unet::UNet3d;

/// burn's pure-Rust CPU backend.
pub type CpuBackend = burn::backend::Flex;
/// The CPU backend with gradients.
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;

/// The CPU device (flex backend), for inference.
pub fn cpu_device() -> Device {
    Device::flex()
}

/// The CPU device with autodiff, for training.
pub fn cpu_autodiff_device() -> Device {
    Device::flex().autodiff()
}

/// The first NVIDIA GPU through burn's libtorch backend, for inference (`.autodiff()` for training).
///
/// Probes libtorch first, so a machine without a usable GPU gets an error instead of the panic
/// burn-tch raises on its first CUDA allocation. Turns on cuDNN's autotuner: patch shapes are fixed
/// for a whole run, so the one-off search per shape pays for itself.
#[cfg(feature = "cuda")]
pub fn cuda_device() -> Result<Device, Error> {
    if !tch::Cuda::is_available() {
        return Err(Error::msg(
            "no CUDA GPU is usable by libtorch: check `nvidia-smi` (driver and GPU) and that this \
             build's libtorch is a CUDA one (libtorch_cuda.so beside libtorch_cpu.so on LD_LIBRARY_PATH)",
        ));
    }
    tch::Cuda::cudnn_set_benchmark(true);
    #[allow(deprecated)] // burn-tch is deprecated upstream but is the road to cuDNN here
    Ok(Device::libtorch_cuda(0))
}
