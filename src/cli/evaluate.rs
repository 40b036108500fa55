//! `brainseg evaluate`: predictions against ground truth, per case and aggregated.
use super::progress::Reporter;
use anyhow::{bail, Result};
use brainseg_core::LabelNumbering;
use brainseg_metrics::{sens_spec_table, HausdorffConvention};
use brainseg_pipeline::evaluate::{evaluate, label_files};
use brainseg_pipeline::guard::refuse_input_as_output;
use brainseg_visualize::write_atomic;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Predicted label maps: a folder of <case>.nii.gz (as `brainseg predict` writes) or one file;
    /// given several times (e.g. the validation predictions of each cross-validation fold), all
    /// are scored together.
    #[arg(short, long, alias = "pred", required = true)]
    pub input: Vec<PathBuf>,
    /// Ground truth: a dataset (MSD or raw BraTS), a folder of <case>.nii.gz label maps, or one file.
    #[arg(long)]
    pub truth: PathBuf,
    /// Label numbering of the predictions [default: as `brainseg predict` recorded it, else
    /// detected from the values: a 4 means BraTS, a 3 MSD; a warning when neither is present].
    #[arg(long, value_enum)]
    pub pred_labels: Option<LabelNumbering>,
    /// Label numbering of ground-truth files [default: as their dataset says, else detected].
    #[arg(long, value_enum)]
    pub truth_labels: Option<LabelNumbering>,
    /// HD95 convention: directed_max (the larger of the two directed 95th percentiles, as the BraTS
    /// challenges and MONAI compute it) or pooled (both distance sets pooled, as MedPy's hd95).
    #[arg(long, default_value_t = HausdorffConvention::default())]
    pub hd95: HausdorffConvention,
    /// Write per-case rows and aggregates as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the same as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut predictions = BTreeMap::new();
    for input in &args.input {
        for (id, file) in label_files(input, args.pred_labels, "prediction")? {
            if let Some((earlier, _)) = predictions.insert(id.clone(), file) {
                bail!(
                    "case {id} is predicted twice: {} and in {}",
                    earlier.display(),
                    input.display()
                );
            }
        }
    }
    let truths = label_files(&args.truth, args.truth_labels, "ground truth")?;
    let inputs: Vec<PathBuf> = predictions
        .values()
        .chain(truths.values())
        .map(|(p, _)| p.clone())
        .collect();
    for output in args.csv.iter().chain(&args.json) {
        refuse_input_as_output(output, &inputs)?;
    }
    let mut progress = Reporter::new();
    let evaluation = evaluate(&predictions, &truths, args.hd95, &mut progress)?;
    drop(progress);
    println!("{}", evaluation.summary.to_text());
    println!("{}", sens_spec_table(&evaluation.class_sens_spec()));
    if !evaluation.missing.is_empty() {
        println!(
            "no prediction for {} ground-truth case(s): {}",
            evaluation.missing.len(),
            evaluation.missing.join(", ")
        );
    }
    if !evaluation.extra.is_empty() {
        println!(
            "no ground truth for {} predicted case(s): {}",
            evaluation.extra.len(),
            evaluation.extra.join(", ")
        );
    }
    if let Some(csv) = &args.csv {
        write_atomic(csv, evaluation.summary.to_csv().as_bytes())?;
        println!("wrote {}", csv.display());
    }
    if let Some(json) = &args.json {
        write_atomic(json, evaluation.summary.to_json().as_bytes())?;
        println!("wrote {}", json.display());
    }
    if !evaluation.failed.is_empty() {
        let ids: Vec<&str> = evaluation
            .failed
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        bail!(
            "{} case(s) could not be scored: {}",
            ids.len(),
            ids.join(", ")
        );
    }
    Ok(())
}
