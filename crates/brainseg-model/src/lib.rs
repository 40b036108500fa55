//! brainseg-model: the seed's 3D U-Net (ellisdg/3DUnetCNN) on burn 0.22, its losses on tensors,
//! a layer table, and safetensors checkpoints PyTorch can read.
//!
//! burn 0.22 tensors and modules carry no backend type: the [`Device`] a model is built on picks
//! the backend (`Device::flex()` on CPU, `Device::cuda(0)` once that feature is on) and
//! `device.autodiff()` turns on gradients. [`cpu_device`] is the default here.
pub mod checkpoint;
pub mod config;
pub mod loss;
pub mod ops;
pub mod predict;
pub mod summary;
pub mod unet;

pub use burn::tensor::Device;
pub use checkpoint::{
    load_checkpoint, read_checkpoint_config, read_metadata, save_checkpoint,
    save_checkpoint_with_metadata, StorageDtype, CHECKPOINT_FORMAT_VERSION,
};
pub use config::{Normalisation, OutputActivation, Targets, UNet3dConfig, Upsampling};
pub use loss::{bce_with_logits, dice_bce_loss, dice_coefficient, soft_dice_loss, SEED_EPSILON};
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
