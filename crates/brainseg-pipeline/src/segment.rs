//! Segmenting whole scans: one case, or every case of a dataset into a prediction folder.
use crate::layout::PredictionLayout;
use crate::model::{LoadedModel, ModelPredictor};
use crate::progress::Progress;
use crate::{Error, Result};
use brainseg_core::LabelNumbering;
use brainseg_infer::{decode_labels, predict_probabilities, remove_small_components, InferenceConfig};
use brainseg_model::Device;
use brainseg_volume::{write_label, write_probabilities, Case, Dataset};
use ndarray::{Array3, Array4};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// How probabilities become labels.
#[derive(Debug, Clone, Serialize)]
pub struct LabelOptions {
    /// A voxel belongs to a class (or region) when its probability is above this.
    pub threshold: f32,
    /// Connected components smaller than this many voxels are removed (0 keeps all).
    pub min_component: usize,
}

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            threshold: 0.5,
            min_component: 0,
        }
    }
}

impl LabelOptions {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.threshold) {
            return Err(Error::invalid(format!(
                "threshold {} must be in [0, 1)",
                self.threshold
            )));
        }
        Ok(())
    }
}

/// Segment one case: probabilities by tiling, then labels (MSD numbering), small components removed.
pub fn segment_case(
    case: &Case,
    model: &LoadedModel,
    inference: &InferenceConfig,
    labels: &LabelOptions,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Array3<u8>, Array4<f32>)> {
    let channels = case.image.shape()[0];
    let expected = model.model.config().in_channels;
    if channels != expected {
        return Err(Error::invalid(format!(
            "case {}: {channels} channels, the model expects {expected}",
            case.id
        )));
    }
    let mut predictor = ModelPredictor {
        model: &model.model,
        device,
    };
    let probs = predict_probabilities(&mut predictor, case.image.view(), inference, |done, total| {
        progress.advance("tiles", done, total, &case.id)
    })?;
    progress.finish("tiles");
    let mut label_map = decode_labels(probs.view(), model.targets(), labels.threshold)?;
    if labels.min_component > 0 {
        remove_small_components(&mut label_map, labels.min_component, model.targets());
    }
    Ok((label_map, probs))
}

/// What `predict` writes, besides the label maps.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    pub inference: InferenceConfig,
    pub labels: LabelOptions,
    /// Numbering of the written label maps.
    pub numbering: LabelNumbering,
    /// Also write the probability maps.
    pub probabilities: bool,
}

/// One segmented case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    pub case: String,
    pub label_map: PathBuf,
    pub tumour_voxels: usize,
    pub tumour_ml: f64,
    pub seconds: f64,
}

/// Every case of a dataset: the ones written and the ones that failed (with why).
#[derive(Debug, Default)]
pub struct PredictOutcome {
    pub written: Vec<CaseOutcome>,
    pub failed: Vec<(String, Error)>,
}

/// Segments every case of `dataset` into `out`, case by case: a failing case is reported and the
/// others go on.
pub fn predict_dataset(
    dataset: &Dataset,
    model: &LoadedModel,
    options: &PredictOptions,
    out: &PredictionLayout,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<PredictOutcome> {
    options.inference.validate()?;
    options.labels.validate()?;
    std::fs::create_dir_all(out.path()).map_err(|e| {
        brainseg_volume::Error::at(out.path(), format!("cannot create the output folder: {e}"))
    })?;
    let mut outcome = PredictOutcome::default();
    let total = dataset.cases.len();
    for (index, case_ref) in dataset.cases.iter().enumerate() {
        progress.advance("cases", index, total, &case_ref.id);
        let started = Instant::now();
        let result = (|| -> Result<CaseOutcome> {
            let case = case_ref.load()?;
            let (labels, probs) = segment_case(
                &case,
                model,
                &options.inference,
                &options.labels,
                device,
                progress,
            )?;
            let tumour_voxels = labels.iter().filter(|&&v| v > 0).count();
            let on_disk = labels.mapv(|v| options.numbering.from_msd(v));
            let label_map = out.label_map(&case.id);
            write_label(&label_map, &on_disk, &case.geometry)?;
            if options.probabilities {
                write_probabilities(&out.probabilities(&case.id), &probs, &case.geometry)?;
            }
            let [sx, sy, sz] = case.geometry.spacing();
            Ok(CaseOutcome {
                case: case.id.clone(),
                label_map,
                tumour_voxels,
                tumour_ml: tumour_voxels as f64 * (sx * sy * sz) as f64 / 1000.0,
                seconds: started.elapsed().as_secs_f64(),
            })
        })();
        match result {
            Ok(case) => outcome.written.push(case),
            Err(error) => {
                progress.warn(&format!("case {}: {error}", case_ref.id));
                outcome.failed.push((case_ref.id.clone(), error));
            }
        }
        progress.advance("cases", index + 1, total, &case_ref.id);
    }
    progress.finish("cases");
    Ok(outcome)
}
