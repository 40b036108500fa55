//! A model ready to segment: read from a model file or the bundled one, with what it was trained
//! on, and run on tiles through [`PatchPredictor`].
use crate::{Error, Result};
use brainseg_core::Targets;
use brainseg_infer::{InferenceConfig, PatchPredictor};
use brainseg_model::checkpoint::StorageDtype;
use brainseg_model::{predict::predict_batch, Device, UNet3d};
use brainseg_train::model_file;
use ndarray::{Array5, ArrayView5};
use std::path::{Path, PathBuf};

/// The bundled model, trained on real BraTS cases (see models/MODEL_CARD.md).
#[cfg(bundled_model)]
const BUNDLED: &[u8] = include_bytes!("../../../models/brainseg-brats.safetensors");

/// Writes the bundled model's file (for programs that read it themselves, as the PyTorch benchmark).
pub fn write_bundled(path: &Path) -> Result<()> {
    #[cfg(bundled_model)]
    return brainseg_volume::write_atomic(path, BUNDLED).map_err(Error::Input);
    #[cfg(not(bundled_model))]
    return Err(Error::invalid(format!(
        "{}: this build has no bundled model",
        path.display()
    )));
}

/// What `describe` and provenance files call the bundled model.
pub const BUNDLED_NAME: &str = "bundled BraTS model";

pub struct LoadedModel {
    /// One network, or the members of an ensemble, whose probabilities are averaged.
    pub networks: Vec<UNet3d>,
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
                    Error::Input(brainseg_volume::Error::at(
                        path,
                        format!("cannot read the checkpoint: {e}"),
                    ))
                })?;
                let file = model_file::load(path, device)?;
                Ok(LoadedModel {
                    networks: vec![file.model],
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
        let unpack =
            |e: std::io::Error| Error::invalid(format!("cannot unpack the bundled model: {e}"));
        let tmp = tempfile::NamedTempFile::new().map_err(unpack)?;
        std::fs::write(tmp.path(), BUNDLED).map_err(unpack)?;
        let file = model_file::load(tmp.path(), device)?;
        Ok(LoadedModel {
            networks: vec![file.model],
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

    /// Reads every model file of `paths` as one ensemble; a training run's folder stands for its
    /// `best.safetensors`, another folder for the model files in it and its subfolders'
    /// `best.safetensors` (a cross-validation's fold runs). The members
    /// must agree on inputs, outputs, tile and standardisation; the first one's settings are used.
    pub fn load_ensemble(paths: &[PathBuf], device: &Device) -> Result<LoadedModel> {
        let files = model_files(paths)?;
        let [first, rest @ ..] = files.as_slice() else {
            return Self::load(None, device);
        };
        let mut ensemble = Self::load(Some(first), device)?;
        for path in rest {
            let member = Self::load(Some(path), device)?;
            let (a, b) = (ensemble.config(), member.config());
            let agree = a.in_channels == b.in_channels
                && a.out_classes == b.out_classes
                && a.targets == b.targets
                && ensemble.inference.tile == member.inference.tile
                && ensemble.inference.standardization == member.inference.standardization;
            if !agree {
                return Err(Error::invalid(format!(
                    "{}: does not fit an ensemble with {} (inputs, outputs, tile or standardisation differ)",
                    path.display(),
                    first.display()
                )));
            }
            ensemble.networks.extend(member.networks);
            ensemble.name = format!("{} + {}", ensemble.name, member.name);
            ensemble.fingerprint = format!("{}+{}", ensemble.fingerprint, member.fingerprint);
        }
        Ok(ensemble)
    }

    /// The (first) network's configuration.
    pub fn config(&self) -> &brainseg_model::UNet3dConfig {
        self.networks[0].config()
    }

    pub fn targets(&self) -> Targets {
        self.config().targets
    }

    /// One line: depth, filters, outputs.
    pub fn describe(&self) -> String {
        let c = self.config();
        let outputs = match c.targets {
            Targets::Classes => "per-class outputs",
            Targets::Regions => "WT/TC/ET region outputs",
        };
        let members = match self.networks.len() {
            1 => String::new(),
            n => format!(", an ensemble of {n}"),
        };
        format!(
            "depth {}, {} base filters, {} {outputs}{members}",
            c.depth, c.base_filters, c.out_classes
        )
    }
}

/// The model files `paths` stand for, in order (folders expanded, sorted).
fn model_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = vec![];
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        // A run folder also holds last.safetensors: the run is its best model, not a pair.
        let best = path.join("best.safetensors");
        if best.is_file() {
            files.push(best);
            continue;
        }
        let entries = std::fs::read_dir(path)
            .map_err(|e| brainseg_volume::Error::at(path, format!("cannot list: {e}")))?;
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter_map(|p| {
                if p.is_dir() {
                    Some(p.join("best.safetensors")).filter(|b| b.is_file())
                } else {
                    Some(p).filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                }
            })
            .collect();
        if found.is_empty() {
            return Err(Error::invalid(format!(
                "{}: holds no model files (*.safetensors or */best.safetensors)",
                path.display()
            )));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Writes `source`'s weights again as f16 (half the size, for shipping), keeping its metadata.
pub fn export_f16(source: &Path, target: &Path, post: PostProcessing) -> Result<()> {
    let mut file = model_file::load(source, &brainseg_model::cpu_device())?;
    if let Some(keep) = post.keep_largest_tumour {
        file.inference.keep_largest_tumour = keep;
    }
    if let Some(voxels) = post.min_enhancing_voxels {
        file.inference.min_enhancing_voxels = voxels;
    }
    model_file::save(&file.model, &file.inference, target, StorageDtype::F16)?;
    Ok(())
}

/// Post-processing to store in an exported model file (nnU-Net's `postprocessing.pkl`): what
/// `predict` does with the model unless told otherwise. `None` keeps the file's own.
#[derive(Clone, Copy, Debug, Default)]
pub struct PostProcessing {
    pub keep_largest_tumour: Option<bool>,
    pub min_enhancing_voxels: Option<usize>,
}

/// Runs an ensemble on batches of tiles: the mean of its members' probabilities.
pub struct EnsemblePredictor<'a> {
    pub networks: &'a [UNet3d],
    pub device: &'a Device,
}

impl PatchPredictor for EnsemblePredictor<'_> {
    fn out_channels(&self) -> usize {
        self.networks[0].config().out_classes
    }
    fn predict(&mut self, batch: ArrayView5<f32>) -> Array5<f32> {
        let mut members = self.networks.iter().map(|model| {
            ModelPredictor {
                model,
                device: self.device,
            }
            .predict(batch)
        });
        let mut sum = members.next().expect("an ensemble has a member");
        for probabilities in members {
            sum += &probabilities;
        }
        if self.networks.len() > 1 {
            sum /= self.networks.len() as f32;
        }
        sum
    }
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
    use super::*;
    use brainseg_model::UNet3dConfig;
    use ndarray::Array5;

    /// An f16 export keeps the weights to f16 precision and stores the post-processing it is
    /// given, leaving the rest of the inference settings as they were.
    #[test]
    fn an_export_stores_its_post_processing() {
        let dir = tempfile::tempdir().unwrap();
        let device = brainseg_model::cpu_device();
        let config = UNet3dConfig {
            depth: 2,
            base_filters: 2,
            ..UNet3dConfig::default()
        };
        let model = UNet3d::new(&config, 3, &device).unwrap();
        let inference = brainseg_infer::InferenceConfig {
            tile: [16, 16, 8],
            min_enhancing_voxels: 7,
            ..Default::default()
        };
        let source = dir.path().join("f32.safetensors");
        model_file::save(&model, &inference, &source, StorageDtype::F32).unwrap();
        let post = PostProcessing {
            keep_largest_tumour: Some(true),
            min_enhancing_voxels: None,
        };
        let target = dir.path().join("f16.safetensors");
        export_f16(&source, &target, post).unwrap();
        let exported = model_file::load(&target, &device).unwrap();
        assert!(exported.inference.keep_largest_tumour);
        assert_eq!(exported.inference.min_enhancing_voxels, 7, "the file's own");
        assert_eq!(exported.inference.tile, [16, 16, 8]);
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert!(
            size(&target) < size(&source),
            "f16 weights take half the bytes"
        );
    }

    /// A run folder is its best model (not best + last); a folder of fold runs is each run's
    /// best model, and loose model files count too, in name order; an empty folder is refused.
    #[test]
    fn folders_stand_for_their_model_files() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |relative: &str| {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
            path
        };
        let run_best = touch("run/best.safetensors");
        touch("run/last.safetensors");
        touch("run/config.json");
        let fold_1 = touch("cv/fold_1/best.safetensors");
        touch("cv/fold_1/last.safetensors");
        let fold_0 = touch("cv/fold_0/best.safetensors");
        let extra = touch("cv/extra.safetensors");
        touch("cv/notes.txt");
        let found = model_files(&[dir.path().join("run"), dir.path().join("cv")]).unwrap();
        assert_eq!(found, vec![run_best, extra, fold_0, fold_1]);
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let error = model_files(&[dir.path().join("empty")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("holds no model files"), "{error}");
    }

    #[test]
    fn an_ensemble_predicts_the_mean_of_its_members() {
        let device = brainseg_model::cpu_device();
        let config = UNet3dConfig {
            depth: 2,
            base_filters: 2,
            ..UNet3dConfig::default()
        };
        let networks: Vec<UNet3d> = (0..2)
            .map(|seed| UNet3d::new(&config, seed, &device).unwrap())
            .collect();
        let batch = Array5::from_shape_fn((1, 4, 8, 8, 4), |(_, c, x, y, z)| {
            ((c * 7 + x * 3 + y + z * 5) % 11) as f32 / 5.0 - 1.0
        });
        let alone: Vec<Array5<f32>> = networks
            .iter()
            .map(|model| {
                ModelPredictor {
                    model,
                    device: &device,
                }
                .predict(batch.view())
            })
            .collect();
        assert!(alone[0] != alone[1], "two seeds, two models");
        let mean = (&alone[0] + &alone[1]) / 2.0;
        let together = EnsemblePredictor {
            networks: &networks,
            device: &device,
        }
        .predict(batch.view());
        let largest = (&together - &mean).iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            largest < 1e-6,
            "ensemble differs from the mean by {largest}"
        );
        // One member: exactly that member's output.
        let single = EnsemblePredictor {
            networks: &networks[..1],
            device: &device,
        }
        .predict(batch.view());
        assert_eq!(single, alone[0]);
    }

    #[test]
    fn fingerprint_is_fnv1a_64() {
        // Reference values of FNV-1a 64 (the FNV specification's test vectors).
        assert_eq!(super::fingerprint(b""), "cbf29ce484222325");
        assert_eq!(super::fingerprint(b"a"), "af63dc4c8601ec8c");
        assert_eq!(super::fingerprint(b"foobar"), "85944171f73967e8");
    }
}
