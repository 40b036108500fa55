//! Whole-scan inference, backend-free: the model crate implements [`PatchPredictor`]; this crate
//! tiles a `(C, X, Y, Z)` volume (the seed's grid or an nnU-Net-style Gaussian-weighted sliding
//! window, optionally with mirroring test-time augmentation), stitches the probabilities in bounded
//! memory, decodes MSD labels and removes small connected components.

pub mod decode;
mod error;
pub mod postprocess;
pub mod tiling;

pub use decode::decode_labels;
pub use error::{Error, Result};
pub use postprocess::{
    enhancing_to_necrosis_below, keep_largest_tumour, remove_small_components, Removed,
};
pub use tiling::{
    gaussian_importance, predict_probabilities, tile_starts, InferenceConfig, Tiling,
};

/// Checkpoint metadata key holding the [`InferenceConfig`] (tile size, standardisation) a model was
/// trained with, so prediction preprocesses exactly as training did.
pub const CHECKPOINT_METADATA_KEY: &str = "brainseg.inference";

/// A model that maps a batch of standardised patches to per-channel sigmoid probabilities.
pub trait PatchPredictor {
    /// Number of output channels K.
    fn out_channels(&self) -> usize;
    /// `(B, C, px, py, pz)` standardised input -> `(B, K, px, py, pz)` probabilities.
    fn predict(&mut self, batch: ndarray::ArrayView5<f32>) -> ndarray::Array5<f32>;
}
