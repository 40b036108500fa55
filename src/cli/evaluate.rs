//! `brainseg evaluate`: predictions against ground truth, per case and aggregated.
use anyhow::{bail, Context, Result};
use brainseg_metrics::{patch::SensSpec, sens_spec_table, CaseMetrics, CaseRow, Summary};
use brainseg_volume::{read_label, Dataset, LabelNumbering};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Predicted label maps: a folder of <case>.nii.gz (as `brainseg predict` writes) or one file.
    #[arg(long)]
    pub pred: PathBuf,
    /// Ground truth: a dataset (MSD or raw BraTS), a folder of <case>.nii.gz label maps, or one file.
    #[arg(long)]
    pub truth: PathBuf,
    /// Label numbering of the predictions.
    #[arg(long, value_enum, default_value = "msd")]
    pub pred_labels: super::predict::Labels,
    /// Label numbering of ground-truth files given directly (datasets say their own numbering).
    #[arg(long, value_enum, default_value = "msd")]
    pub truth_labels: super::predict::Labels,
    /// Write per-case rows and aggregates as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the same as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn numbering(labels: super::predict::Labels) -> LabelNumbering {
    match labels {
        super::predict::Labels::Msd => LabelNumbering::Msd,
        super::predict::Labels::Brats => LabelNumbering::Brats,
    }
}

/// Case id of a label file: its name without `.nii.gz`/`.nii` (and without a BraTS `_seg`/`-seg` suffix).
fn case_id(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name.trim_end_matches(".gz").trim_end_matches(".nii");
    stem.trim_end_matches("_seg")
        .trim_end_matches("-seg")
        .to_string()
}

fn is_nifti(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

/// Label files by case id, with the numbering they are stored in.
fn label_files(
    path: &Path,
    given: LabelNumbering,
    what: &str,
) -> Result<BTreeMap<String, (PathBuf, LabelNumbering)>> {
    if !path.exists() {
        bail!("{}: {what} path does not exist", path.display());
    }
    if path.is_file() {
        return Ok(BTreeMap::from([(
            case_id(path),
            (path.to_path_buf(), given),
        )]));
    }
    // A dataset knows where its labels are and how they are numbered.
    if let Ok(dataset) = Dataset::open(path) {
        let labelled: BTreeMap<_, _> = dataset
            .cases
            .iter()
            .filter_map(|c| c.label.clone().map(|l| (c.id.clone(), (l, c.numbering))))
            .collect();
        if !labelled.is_empty() {
            return Ok(labelled);
        }
    }
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(path)
        .with_context(|| format!("{}: cannot list the folder", path.display()))?
    {
        let file = entry?.path();
        if file.is_file() && is_nifti(&file) && !file.to_string_lossy().contains("_probabilities") {
            files.insert(case_id(&file), (file, given));
        }
    }
    if files.is_empty() {
        bail!(
            "{}: no label maps (.nii or .nii.gz) found for the {what}",
            path.display()
        );
    }
    Ok(files)
}

fn read_msd(
    path: &Path,
    numbering: LabelNumbering,
) -> Result<(ndarray::Array3<u8>, brainseg_volume::Geometry)> {
    let (raw, geometry) = read_label(path)?;
    let mut msd = raw;
    for v in msd.iter_mut() {
        *v = numbering.to_msd(*v).with_context(|| {
            format!(
                "{}: label value {} is not a {:?} label",
                path.display(),
                *v,
                numbering
            )
        })?;
    }
    Ok((msd, geometry))
}

/// A label map and how its labels are numbered.
type LabelFile = (PathBuf, LabelNumbering);

pub fn run(args: Args) -> Result<()> {
    let preds = label_files(&args.pred, numbering(args.pred_labels), "prediction")?;
    let truths = label_files(&args.truth, numbering(args.truth_labels), "ground truth")?;
    // One file against one file: match them whatever their names.
    let pairs: Vec<(String, LabelFile, LabelFile)> = if preds.len() == 1 && truths.len() == 1 {
        let (id, p) = preds.iter().next().expect("one");
        vec![(
            id.clone(),
            p.clone(),
            truths.values().next().expect("one").clone(),
        )]
    } else {
        preds
            .iter()
            .filter_map(|(id, p)| truths.get(id).map(|t| (id.clone(), p.clone(), t.clone())))
            .collect()
    };
    let missing: Vec<&String> = truths
        .keys()
        .filter(|id| !preds.contains_key(*id))
        .collect();
    let extra: Vec<&String> = preds
        .keys()
        .filter(|id| !truths.contains_key(*id))
        .collect();
    if pairs.is_empty() {
        bail!(
            "no case of {} matches a case of {} by name",
            args.pred.display(),
            args.truth.display()
        );
    }
    let bar = super::progress::bar(pairs.len() as u64, "cases");
    let mut rows = vec![];
    let mut failed = vec![];
    for (id, (pred_path, pred_numbering), (truth_path, truth_numbering)) in &pairs {
        bar.set_message(id.clone());
        let scored = (|| -> Result<CaseMetrics> {
            let (pred, _) = read_msd(pred_path, *pred_numbering)?;
            let (truth, geometry) = read_msd(truth_path, *truth_numbering)?;
            if pred.shape() != truth.shape() {
                bail!(
                    "{}: shape {:?} differs from the ground truth's {:?} ({})",
                    pred_path.display(),
                    pred.shape(),
                    truth.shape(),
                    truth_path.display()
                );
            }
            CaseMetrics::compute(pred.view(), truth.view(), geometry.spacing())
                .map_err(|e| anyhow::anyhow!("{e}"))
        })();
        match scored {
            Ok(metrics) => rows.push(CaseRow {
                case: id.clone(),
                metrics,
            }),
            Err(e) => {
                bar.suspend(|| eprintln!("error: case {id}: {e:#}"));
                failed.push(id.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if rows.is_empty() {
        // Nothing scored: no tables or files of zero cases.
        bail!(
            "{} case(s) could not be scored: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    let summary = Summary::new(rows);
    println!("{}", summary.to_text());
    // The seed's table: mean sensitivity and specificity per class over the cases.
    let mean = |key: &str| summary.stats(key).and_then(|s| s.mean);
    let classes: Vec<SensSpec> = ["edema", "non_enhancing", "enhancing"]
        .iter()
        .map(|c| SensSpec {
            sensitivity: mean(&format!("{c}_sensitivity")),
            specificity: mean(&format!("{c}_specificity")),
        })
        .collect();
    println!("{}", sens_spec_table(&classes));
    if !missing.is_empty() {
        println!(
            "no prediction for {} ground-truth case(s): {}",
            missing.len(),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !extra.is_empty() && pairs.len() > 1 {
        println!(
            "no ground truth for {} predicted case(s): {}",
            extra.len(),
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(csv) = &args.csv {
        brainseg_visualize::write_atomic(csv, summary.to_csv().as_bytes())?;
        println!("wrote {}", csv.display());
    }
    if let Some(json) = &args.json {
        brainseg_visualize::write_atomic(json, summary.to_json().as_bytes())?;
        println!("wrote {}", json.display());
    }
    if !failed.is_empty() {
        bail!(
            "{} case(s) could not be scored: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}
