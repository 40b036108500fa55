//! Segmenting whole scans: one case, or every case of a dataset into a prediction folder.
use crate::cohort::{self, CaseStatus, Manifest, ManifestEntry, Part};
use crate::input::{looks_skull_stripped, CaseSource};
use crate::layout::PredictionLayout;
use crate::model::{EnsemblePredictor, LoadedModel};
use crate::progress::Progress;
use crate::{Error, Result};
use brainseg_core::LabelNumbering;
use brainseg_infer::{
    decode_labels, enhancing_to_necrosis_below, keep_largest_tumour, predict_probabilities,
    remove_small_components, InferenceConfig,
};
use brainseg_model::Device;
use brainseg_volume::{write_label, write_probabilities, Case};
use ndarray::{Array3, Array4};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How probabilities become labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    let expected = model.config().in_channels;
    if channels != expected {
        return Err(Error::invalid(format!(
            "case {}: {channels} channels, the model expects {expected}",
            case.id
        )));
    }
    let mut predictor = EnsemblePredictor {
        networks: &model.networks,
        device,
    };
    let probs = predict_probabilities(
        &mut predictor,
        case.image.view(),
        inference,
        |done, total| progress.advance("tiles", done, total, &case.id),
    )?;
    progress.finish("tiles");
    let mut label_map = decode_labels(probs.view(), model.targets(), labels.threshold)?;
    if labels.min_component > 0 {
        remove_small_components(&mut label_map, labels.min_component, model.targets());
    }
    if inference.keep_largest_tumour {
        keep_largest_tumour(&mut label_map);
    }
    enhancing_to_necrosis_below(&mut label_map, inference.min_enhancing_voxels);
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

/// Every case of a dataset: the ones written, the ones that failed (with why), and the ones left
/// as they were because they were done before (with `--part`).
#[derive(Debug, Default)]
pub struct PredictOutcome {
    pub written: Vec<CaseOutcome>,
    pub failed: Vec<(String, Error)>,
    pub skipped: Vec<String>,
}

/// How a dataset is run: whole, or one part of it (see [`crate::cohort`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Only this part's share of the cases; it skips the cases done before (listed in a record of
    /// the folder, outputs in place), records into its own file and writes a manifest.
    pub part: Option<Part>,
    /// With a part: segment its cases again even when they are done.
    pub overwrite: bool,
}

/// Segments every case into `out`, case by case: a failing case is reported and the others go on.
pub fn predict_cases(
    cases: &[CaseSource],
    model: &LoadedModel,
    options: &PredictOptions,
    out: &PredictionLayout,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<PredictOutcome> {
    let all: Vec<&CaseSource> = cases.iter().collect();
    run_cases(
        &all,
        model,
        options,
        &RunOptions::default(),
        out,
        device,
        progress,
    )
}

/// Refuses settings out of range and an output folder that holds the inputs, before any work (and
/// before a command says what it is about to do).
pub fn check_options<'a>(
    cases: impl IntoIterator<Item = &'a CaseSource>,
    options: &PredictOptions,
    out: &PredictionLayout,
) -> Result<()> {
    options.inference.validate()?;
    options.labels.validate()?;
    let inputs: Vec<PathBuf> = cases.into_iter().flat_map(|c| c.files()).collect();
    crate::guard::refuse_input_folder(out.path(), &inputs)?;
    Ok(())
}

/// Segments one part's share of `cases` (all of them without a part) into `out`: cases done
/// before are skipped (unless `run.overwrite`); each case's record is written only after its
/// files are renamed into place, so a part killed at any moment leaves no case counted as done
/// that is not complete, and running it again finishes the rest.
pub fn predict_part(
    cases: &[CaseSource],
    model: &LoadedModel,
    options: &PredictOptions,
    run: &RunOptions,
    out: &PredictionLayout,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<PredictOutcome> {
    let all: Vec<&CaseSource> = cases.iter().collect();
    let mine = match run.part {
        Some(part) => part.select(all, |c| c.id()),
        None => all,
    };
    run_cases(&mine, model, options, run, out, device, progress)
}

fn run_cases(
    cases: &[&CaseSource],
    model: &LoadedModel,
    options: &PredictOptions,
    run: &RunOptions,
    out: &PredictionLayout,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<PredictOutcome> {
    check_options(cases.iter().copied(), options, out)?;
    std::fs::create_dir_all(out.path()).map_err(|e| {
        brainseg_volume::Error::at(out.path(), format!("cannot create the output folder: {e}"))
    })?;
    let record = match run.part {
        Some(part) => part.record(out),
        None => out.provenance(),
    };
    let mut provenance = Provenance::start(out, &record, model, options)?;
    brainseg_viewer::write_colour_tables(&out.colour_tables(), options.numbering)?;
    let done = match run.part {
        Some(_) if !run.overwrite => cohort::done_cases(out, options.probabilities)?,
        _ => Default::default(),
    };
    let mut manifest = run.part.map(|part| Manifest::new(part.manifest(out)));
    let mut outcome = PredictOutcome::default();
    let total = cases.len();
    for (index, source) in cases.iter().enumerate() {
        progress.advance("cases", index, total, source.id());
        if done.contains(source.id()) {
            if let Some(manifest) = &mut manifest {
                manifest.push(ManifestEntry {
                    case: source.id().to_string(),
                    status: CaseStatus::Skipped,
                    seconds: 0.0,
                    error: None,
                })?;
            }
            outcome.skipped.push(source.id().to_string());
            continue;
        }
        let started = Instant::now();
        let result = (|| -> Result<CaseOutcome> {
            let case = source.load()?;
            if !looks_skull_stripped(&case) {
                progress.warn(&format!(
                    "case {}: the scan is non-zero over most of its volume, so it looks not \
                     skull-stripped; brainseg's models were trained on skull-stripped scans \
                     (BraTS) and segment others poorly",
                    case.id
                ));
            }
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
            write_label(
                &label_map,
                &on_disk,
                &case.geometry,
                Some(options.numbering),
            )?;
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
            Ok(case) => {
                // Only now, with the files renamed into place, is the case done.
                provenance.cases.insert(case.case.clone(), case.seconds);
                provenance.write(&record)?;
                if let Some(manifest) = &mut manifest {
                    manifest.push(ManifestEntry {
                        case: case.case.clone(),
                        status: CaseStatus::Ok,
                        seconds: case.seconds,
                        error: None,
                    })?;
                }
                outcome.written.push(case)
            }
            Err(error) => {
                progress.failed(&format!("case {}: {error}", source.id()));
                if provenance.cases.remove(source.id()).is_some() {
                    provenance.write(&record)?;
                }
                if let Some(manifest) = &mut manifest {
                    manifest.push(ManifestEntry {
                        case: source.id().to_string(),
                        status: CaseStatus::Failed,
                        seconds: started.elapsed().as_secs_f64(),
                        error: Some(error.to_string().replace('\n', " ")),
                    })?;
                }
                outcome.failed.push((source.id().to_string(), error));
            }
        }
        progress.advance("cases", index + 1, total, source.id());
    }
    progress.finish("cases");
    Ok(outcome)
}

/// What made the predictions in a folder (`predictions.json`), so a label map says where it came
/// from and a second run with another model or other options cannot mix into the same folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub brainseg_version: String,
    /// The model file's path, or the bundled model.
    pub model: String,
    /// FNV-1a 64 of the model file's bytes.
    pub model_fingerprint: String,
    /// Label numbering of the written maps.
    pub numbering: LabelNumbering,
    pub inference: InferenceConfig,
    pub labels: LabelOptions,
    pub probabilities: bool,
    /// Seconds each case took, by case id.
    pub cases: BTreeMap<String, f64>,
}

impl Provenance {
    /// Reads a folder's record: `predictions.json`, or else the parts' records merged (the
    /// settings of the first, the cases of all), if it has any.
    pub fn read(out: &PredictionLayout) -> Result<Option<Provenance>> {
        let mut records = cohort::records(out)?.into_iter();
        let Some(first) = records.next() else {
            return Ok(None);
        };
        let mut merged = first.provenance;
        if first.part.is_some() {
            for record in records {
                merged.cases.extend(record.provenance.cases);
            }
        }
        Ok(Some(merged))
    }

    /// Reads one record file, if it exists.
    pub fn read_file(path: &Path) -> Result<Option<Provenance>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::invalid(format!(
                    "{}: not a brainseg prediction record: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(brainseg_volume::Error::at(path, format!("cannot read: {e}")).into()),
        }
    }

    /// Whether these predictions were made by the same model with the same options. Tiles per
    /// model call do not count: each tile is computed on its own, so the labels are the same, and
    /// a folder begun with another `--batch-size` (2 was the default before) continues.
    fn same_as(&self, other: &Provenance) -> bool {
        let results_from = |p: &Provenance| InferenceConfig {
            batch_size: 1,
            ..p.inference.clone()
        };
        self.model_fingerprint == other.model_fingerprint
            && self.numbering == other.numbering
            && results_from(self) == results_from(other)
            && self.labels == other.labels
    }

    /// The record for this run at `record` (`predictions.json` or a part's), continuing its own
    /// cases when the model and options are the same; refuses a folder any of whose records
    /// holds predictions made otherwise.
    fn start(
        out: &PredictionLayout,
        record: &Path,
        model: &LoadedModel,
        options: &PredictOptions,
    ) -> Result<Provenance> {
        let mut this = Provenance {
            brainseg_version: env!("CARGO_PKG_VERSION").to_string(),
            model: model.name.clone(),
            model_fingerprint: model.fingerprint.clone(),
            numbering: options.numbering,
            inference: options.inference.clone(),
            labels: options.labels.clone(),
            probabilities: options.probabilities,
            cases: BTreeMap::new(),
        };
        for existing in cohort::records(out)? {
            if !existing.provenance.same_as(&this) {
                return Err(Error::invalid(format!(
                    "{}: holds predictions made with another model or other options ({}, model {}); \
                     choose another output folder",
                    out.path().display(),
                    existing.path.display(),
                    existing.provenance.model
                )));
            }
            if existing.path == record {
                this.cases = existing.provenance.cases;
            }
        }
        Ok(this)
    }

    fn write(&self, record: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("the record serialises") + "\n";
        Ok(brainseg_volume::write_atomic(record, json.as_bytes())?)
    }
}
