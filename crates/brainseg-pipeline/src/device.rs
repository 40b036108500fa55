//! Where models run.
use crate::{Error, Result};
use brainseg_model::Device;

/// Compute backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Backend {
    /// burn's pure-Rust CPU backend (flex) with brainseg's convolution kernels.
    #[default]
    Cpu,
    /// NVIDIA GPU through libtorch (needs a build with `--features cuda`).
    Cuda,
}

/// The device for inference on `backend`.
pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(brainseg_model::cpu_device()),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Ok(brainseg_model::cuda_device()?),
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => Err(Error::invalid(
            "this brainseg was built without GPU support; rebuild with `cargo build --release --features cuda`",
        )),
    }
}

/// The device for training on `backend` (with automatic differentiation).
pub fn training_device(backend: Backend) -> Result<Device> {
    Ok(device(backend)?.autodiff())
}
