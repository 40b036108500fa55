//! A model ready to segment: read from a model file or the bundled one, with what it was trained
//! on, and run on tiles through [`PatchPredictor`].
use crate::{Error, Result};
use brainseg_core::Targets;
use brainseg_infer::{InferenceConfig, PatchPredictor};
use brainseg_model::checkpoint::StorageDtype;
use brainseg_model::{predict::predict_batch, Device, UNet3d};
use brainseg_train::model_file;
use ndarray::{Array5, ArrayView5};
use std::path::Path;

/// The bundled model, trained on real BraTS cases (see models/MODEL_CARD.md).
#[cfg(bundled_model)]
const BUNDLED: &[u8] = include_bytes!("../../../models/brainseg-brats.safetensors");

/// What `describe` and provenance files call the bundled model.
pub const BUNDLED_NAME: &str = "bundled BraTS model";

pub struct LoadedModel {
    pub model: UNet3d,
    /// The file's path, or [`BUNDLED_NAME`].
    pub name: String,
    /// Tile size and standardisation the model was trained with.
    pub inference: InferenceConfig,
    /// FNV-1a 64 of the file's bytes, to tell models apart in provenance records.
    pub fingerprint: String,
}

impl LoadedModel {
    /// Reads `path`, or the bundled model when `None`.
    pub fn load(path: Option<&Path>, device: &Device) -> Result<LoadedModel> {
        match path {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    Error::Input(brainseg_volume::Error::at(path, format!("cannot read: {e}")))
                })?;
                let file = model_file::load(path, device)?;
                Ok(LoadedModel {
                    model: file.model,
                    name: path.display().to_string(),
                    inference: file.inference,
                    fingerprint: fingerprint(&bytes),
                })
            }
            None => Self::bundled(device),
        }
    }

    #[cfg(bundled_model)]
    fn bundled(device: &Device) -> Result<LoadedModel> {
        let unpack = |e: std::io::Error| Error::invalid(format!("cannot unpack the bundled model: {e}"));
        let tmp = tempfile::NamedTempFile::new().map_err(unpack)?;
        std::fs::write(tmp.path(), BUNDLED).map_err(unpack)?;
        let file = model_file::load(tmp.path(), device)?;
        Ok(LoadedModel {
            model: file.model,
            name: BUNDLED_NAME.into(),
            inference: file.inference,
            fingerprint: fingerprint(BUNDLED),
        })
    }

    #[cfg(not(bundled_model))]
    fn bundled(_device: &Device) -> Result<LoadedModel> {
        Err(Error::invalid(
            "this build has no bundled model; pass --model <weights.safetensors>",
        ))
    }

    pub fn targets(&self) -> Targets {
        self.model.config().targets
    }

    /// One line: depth, filters, outputs.
    pub fn describe(&self) -> String {
        let c = self.model.config();
        let outputs = match c.targets {
            Targets::Classes => "per-class outputs",
            Targets::Regions => "WT/TC/ET region outputs",
        };
        format!(
            "depth {}, {} base filters, {} {outputs}",
            c.depth, c.base_filters, c.out_classes
        )
    }
}

/// Writes `source`'s weights again as f16 (half the size, for shipping), keeping its metadata.
pub fn export_f16(source: &Path, target: &Path) -> Result<()> {
    let file = model_file::load(source, &brainseg_model::cpu_device())?;
    model_file::save(&file.model, &file.inference, target, StorageDtype::F16)?;
    Ok(())
}

/// Runs a model on batches of tiles.
pub struct ModelPredictor<'a> {
    pub model: &'a UNet3d,
    pub device: &'a Device,
}

impl PatchPredictor for ModelPredictor<'_> {
    fn out_channels(&self) -> usize {
        self.model.config().out_classes
    }
    fn predict(&mut self, batch: ArrayView5<f32>) -> Array5<f32> {
        // Tile shapes come from the model's own training patch size, checked when it was loaded.
        predict_batch(self.model, batch, self.device)
            .expect("tile shape validated against the model")
    }
}

/// FNV-1a, 64 bits, as 16 hex digits: a stable name for a model's bytes (not a security hash).
pub fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprint_is_fnv1a_64() {
        // Reference values of FNV-1a 64 (the FNV specification's test vectors).
        assert_eq!(super::fingerprint(b""), "cbf29ce484222325");
        assert_eq!(super::fingerprint(b"a"), "af63dc4c8601ec8c");
        assert_eq!(super::fingerprint(b"foobar"), "85944171f73967e8");
    }
}
