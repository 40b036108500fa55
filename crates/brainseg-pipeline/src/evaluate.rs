//! Predicted label maps against ground truth, matched by case id, scored per case and aggregated.
use crate::layout::PredictionLayout;
use crate::layout::{case_id_of_label_file, is_nifti, PROBABILITIES_SUFFIX};
use crate::progress::Progress;
use crate::segment::Provenance;
use crate::{Error, Result};
use brainseg_core::{Class, LabelNumbering};
use brainseg_metrics::{patch::SensSpec, CaseMetrics, CaseRow, HausdorffConvention, Summary};
use brainseg_volume::{read_label_msd, Dataset, MsdLabelMap};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A label map and how its labels are numbered (`None`: detected from its values).
pub type LabelFile = (PathBuf, Option<LabelNumbering>);

/// Label files by case id: one file, a dataset (which knows its labels and their numbering) or a
/// folder of `<case>.nii.gz`. `numbering` applies to files given directly; without it, a folder
/// written by `brainseg predict` says its own (predictions.json), and other files are detected.
pub fn label_files(
    path: &Path,
    numbering: Option<LabelNumbering>,
    what: &str,
) -> Result<BTreeMap<String, LabelFile>> {
    if !path.exists() {
        return Err(Error::invalid(format!(
            "{}: {what} path does not exist",
            path.display()
        )));
    }
    if path.is_file() {
        return Ok(BTreeMap::from([(
            case_id_of_label_file(path),
            (path.to_path_buf(), numbering),
        )]));
    }
    if let Ok(dataset) = Dataset::open(path) {
        let labelled: BTreeMap<_, _> = dataset
            .cases
            .iter()
            .filter_map(|c| {
                c.label
                    .clone()
                    .map(|l| (c.id.clone(), (l, numbering.or(Some(c.numbering)))))
            })
            .collect();
        if !labelled.is_empty() {
            return Ok(labelled);
        }
    }
    let numbering = match numbering {
        Some(given) => Some(given),
        None => Provenance::read(&PredictionLayout::new(path))?.map(|p| p.numbering),
    };
    let entries = std::fs::read_dir(path)
        .map_err(|e| Error::invalid(format!("{}: cannot list the folder: {e}", path.display())))?;
    let mut files = BTreeMap::new();
    for entry in entries {
        let file = entry
            .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?
            .path();
        if file.is_file()
            && is_nifti(&file)
            && !file.to_string_lossy().contains(PROBABILITIES_SUFFIX)
        {
            files.insert(case_id_of_label_file(&file), (file, numbering));
        }
    }
    if files.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no label maps (.nii or .nii.gz) found for the {what}",
            path.display()
        )));
    }
    Ok(files)
}

/// What an evaluation found.
pub struct Evaluation {
    pub summary: Summary,
    /// Ground-truth cases without a prediction.
    pub missing: Vec<String>,
    /// Predicted cases without ground truth (only reported when more than one pair matched).
    pub extra: Vec<String>,
    /// Cases that could not be scored, with why.
    pub failed: Vec<(String, Error)>,
}

impl Evaluation {
    /// The notebook's table: mean sensitivity and specificity per class over the cases.
    pub fn class_sens_spec(&self) -> Vec<SensSpec> {
        let mean = |key: String| self.summary.stats(&key).and_then(|s| s.mean);
        Class::ALL
            .iter()
            .map(|c| SensSpec {
                sensitivity: mean(format!("{}_sensitivity", c.key())),
                specificity: mean(format!("{}_specificity", c.key())),
            })
            .collect()
    }
}

/// Scores every prediction that has a ground truth of the same case id (one file against one
/// file: whatever their names).
pub fn evaluate(
    predictions: &BTreeMap<String, LabelFile>,
    truths: &BTreeMap<String, LabelFile>,
    hd95: HausdorffConvention,
    progress: &mut dyn Progress,
) -> Result<Evaluation> {
    let pairs: Vec<(String, LabelFile, LabelFile)> = if predictions.len() == 1 && truths.len() == 1
    {
        let (id, p) = predictions.iter().next().expect("one");
        let t = truths.values().next().expect("one");
        vec![(id.clone(), p.clone(), t.clone())]
    } else {
        predictions
            .iter()
            .filter_map(|(id, p)| truths.get(id).map(|t| (id.clone(), p.clone(), t.clone())))
            .collect()
    };
    if pairs.is_empty() {
        return Err(Error::invalid(
            "no predicted case matches a ground-truth case by name",
        ));
    }
    let missing = truths
        .keys()
        .filter(|id| !predictions.contains_key(*id))
        .cloned()
        .collect();
    let extra = if pairs.len() > 1 {
        predictions
            .keys()
            .filter(|id| !truths.contains_key(*id))
            .cloned()
            .collect()
    } else {
        vec![]
    };
    let mut rows = vec![];
    let mut failed = vec![];
    for (done, (id, (pred_path, pred_numbering), (truth_path, truth_numbering))) in
        pairs.iter().enumerate()
    {
        progress.advance("cases", done, pairs.len(), id);
        let mut read = |path: &Path, numbering: Option<LabelNumbering>| -> Result<MsdLabelMap> {
            let map = read_label_msd(path, numbering, None)?;
            if map.guessed {
                progress.warn(&format!(
                    "{}: holds neither label 3 nor 4, so its numbering cannot be told from its values; \
                     read as MSD (give --pred-labels / --truth-labels if it is BraTS)",
                    path.display()
                ));
            }
            Ok(map)
        };
        let scored = (|| -> Result<CaseMetrics> {
            let pred = read(pred_path, *pred_numbering)?;
            let truth = read(truth_path, *truth_numbering)?;
            let (pred, truth, geometry) = (pred.labels, truth.labels, truth.geometry);
            if pred.shape() != truth.shape() {
                return Err(Error::invalid(format!(
                    "{}: shape {:?} differs from the ground truth's {:?} ({})",
                    pred_path.display(),
                    pred.shape(),
                    truth.shape(),
                    truth_path.display()
                )));
            }
            Ok(CaseMetrics::compute_with(
                pred.view(),
                truth.view(),
                geometry.spacing(),
                hd95,
            )?)
        })();
        match scored {
            Ok(metrics) => rows.push(CaseRow {
                case: id.clone(),
                metrics,
            }),
            Err(e) => {
                // A lone case's failure is the command's error, said once below.
                if pairs.len() > 1 {
                    progress.failed(&format!("case {id}: {e}"));
                }
                failed.push((id.clone(), e));
            }
        }
    }
    progress.finish("cases");
    if rows.is_empty() {
        // Nothing scored: the reasons themselves, so the one error line names file and problem.
        let reasons: Vec<String> = failed.iter().map(|(_, e)| e.to_string()).collect();
        return Err(Error::invalid(format!(
            "no case could be scored: {}",
            reasons.join("; ")
        )));
    }
    Ok(Evaluation {
        summary: Summary::new(rows),
        missing,
        extra,
        failed,
    })
}
