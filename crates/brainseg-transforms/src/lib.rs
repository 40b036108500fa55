//! Training-time transforms, the second stage of the brainseg pipeline: patch sampling (the seed's
//! background-threshold sampler plus nnU-Net foreground oversampling), intensity standardisation,
//! augmentation, and the training targets (per-class one-hot or BraTS regions).
//!
//! Every random choice comes from a caller-provided RNG (`rand_chacha::ChaCha8Rng` in brainseg), so
//! the same seed gives the same patches.

pub mod augment;
pub mod augmentation;
mod error;
pub mod patch;
pub mod resample;
pub mod standardize;
pub mod targets;

pub use augment::{augment, AugmentConfig, Augmentation};
pub use augmentation::{augment_patch, Applied, AugmentationConfig, AugmentationPreset};
pub use error::{Error, Result};
pub use patch::{
    crop_padded3, crop_padded4, sample_patch, sample_scaled_patch, Patch, PatchConfig, PatchOrigin,
};
pub use standardize::{standardize_slices, zscore_brain, Standardization};
pub use targets::{encode_targets, Targets};
