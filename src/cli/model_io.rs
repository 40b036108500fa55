//! Loading a model for prediction (a file or the bundled one) and running it on tiles.
use anyhow::{Context, Result};
use brainseg_infer::{InferenceConfig, PatchPredictor, CHECKPOINT_METADATA_KEY};
use brainseg_model::{checkpoint, predict::predict_batch, Device, UNet3d};
use brainseg_transforms::Targets;
use ndarray::{Array5, ArrayView5};
use std::path::Path;

/// The bundled model, trained on real BraTS cases (see models/MODEL_CARD.md).
#[cfg(bundled_model)]
const BUNDLED: &[u8] = include_bytes!("../../models/brainseg-brats.safetensors");

pub struct LoadedModel {
    pub model: UNet3d,
    pub name: String,
    /// Tile size and standardisation the model was trained with.
    pub inference: InferenceConfig,
    pub targets: Targets,
}

impl LoadedModel {
    pub fn describe(&self) -> String {
        let c = self.model.config();
        format!(
            "depth {}, {} base filters, {} outputs as {:?}",
            c.depth, c.base_filters, c.out_classes, self.targets
        )
    }
}

pub fn load_model(path: Option<&Path>, device: &Device) -> Result<LoadedModel> {
    let (file, name): (std::path::PathBuf, String);
    let mut _unpacked: Option<tempfile::NamedTempFile> = None;
    match path {
        Some(p) => {
            file = p.to_path_buf();
            name = p.display().to_string();
        }
        None => {
            #[cfg(bundled_model)]
            {
                let tmp =
                    tempfile::NamedTempFile::new().context("cannot unpack the bundled model")?;
                std::fs::write(tmp.path(), BUNDLED).context("cannot unpack the bundled model")?;
                file = tmp.path().to_path_buf();
                name = "bundled BraTS model".into();
                _unpacked = Some(tmp);
            }
            #[cfg(not(bundled_model))]
            anyhow::bail!("this build has no bundled model; pass --model <weights.safetensors>");
        }
    }
    let model =
        checkpoint::load_checkpoint(&file, None, device).map_err(|e| anyhow::anyhow!("{e}"))?;
    let inference: InferenceConfig = checkpoint::read_metadata(&file, CHECKPOINT_METADATA_KEY)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .with_context(|| {
            format!(
                "{}: the inference settings in the file are unreadable",
                file.display()
            )
        })?
        .unwrap_or_default();
    let targets = match model.config().targets {
        brainseg_model::Targets::Classes => Targets::Classes,
        brainseg_model::Targets::Regions => Targets::Regions,
    };
    Ok(LoadedModel {
        model,
        name,
        inference,
        targets,
    })
}

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
