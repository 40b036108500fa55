//! A trained model file, written by training and read by prediction: safetensors weights (PyTorch
//! reads them), the network's configuration, and the [`InferenceConfig`] (tile size,
//! standardisation) under [`CHECKPOINT_METADATA_KEY`], so the file alone rebuilds its predictor.
use brainseg_infer::{InferenceConfig, CHECKPOINT_METADATA_KEY};
use brainseg_model::checkpoint::{self, StorageDtype};
use brainseg_model::{Device, Error, Result, UNet3d};
use std::path::Path;

/// A model and how to run it on whole scans.
pub struct ModelFile {
    pub model: UNet3d,
    pub inference: InferenceConfig,
}

/// Writes `model` with `inference` as its metadata.
pub fn save(
    model: &UNet3d,
    inference: &InferenceConfig,
    path: &Path,
    dtype: StorageDtype,
) -> Result<()> {
    let metadata = serde_json::to_string(inference).expect("inference settings serialise");
    checkpoint::save_checkpoint_with_metadata(
        model,
        path,
        dtype,
        &[(CHECKPOINT_METADATA_KEY, metadata.as_str())],
    )
}

/// Reads a model file; a file without inference settings gets [`InferenceConfig::default`].
pub fn load(path: &Path, device: &Device) -> Result<ModelFile> {
    let model = checkpoint::load_checkpoint(path, None, device)?;
    let inference = checkpoint::read_metadata(path, CHECKPOINT_METADATA_KEY)?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| {
            Error::at(
                path,
                format!("the inference settings in the file are unreadable: {e}"),
            )
        })?
        .unwrap_or_default();
    Ok(ModelFile { model, inference })
}
