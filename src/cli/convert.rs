//! `brainseg convert`: raw BraTS folders -> MSD Task01 layout; optionally a compact training copy.
use anyhow::{bail, Context, Result};
use brainseg_volume::{nifti_io::write_image, write_label, Dataset};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset to convert (raw BraTS: a folder per case; an MSD dataset is rewritten as is).
    pub input: PathBuf,
    /// Output folder: dataset.json, imagesTr/<case>.nii.gz (4-D), labelsTr/<case>.nii.gz (MSD labels 0..3).
    pub output: PathBuf,
    /// Lossy compact copy for carrying a training set (e.g. to a GPU machine): each modality of each case is
    /// scaled to whole values 1..255 (0 stays 0) and stored as uint8, about 3x smaller. Only for training
    /// with `--standardization zscore`, which does not see the scale.
    #[arg(long)]
    pub quantize_u8: bool,
    /// Only these cases (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub cases: Option<Vec<String>>,
}

pub fn run(args: Args) -> Result<()> {
    if !args.quantize_u8 && args.cases.is_none() {
        let n = brainseg_volume::convert::to_msd(&args.input, &args.output)?;
        println!(
            "wrote {n} case(s) in the MSD layout to {}",
            args.output.display()
        );
        return Ok(());
    }
    let n = compact_copy(
        &args.input,
        &args.output,
        args.cases.as_deref(),
        args.quantize_u8,
    )?;
    println!(
        "wrote {n} case(s) ({}) in the MSD layout to {}",
        if args.quantize_u8 {
            "uint8, lossy"
        } else {
            "as read"
        },
        args.output.display()
    );
    Ok(())
}

/// Each modality scaled so its 99.9th percentile of non-zero voxels is 254, rounded, clamped to 1..255.
fn quantize(image: &mut ndarray::Array4<f32>) {
    for mut channel in image.outer_iter_mut() {
        let mut values: Vec<f32> = channel.iter().copied().filter(|&v| v > 0.0).collect();
        if values.is_empty() {
            continue;
        }
        let k = ((values.len() - 1) as f64 * 0.999) as usize;
        let (_, top, _) = values.select_nth_unstable_by(k, f32::total_cmp);
        let scale = 254.0 / top.max(f32::MIN_POSITIVE);
        channel.mapv_inplace(|v| {
            if v > 0.0 {
                (v * scale).round().clamp(1.0, 255.0)
            } else {
                0.0
            }
        });
    }
}

fn compact_copy(
    input: &Path,
    output: &Path,
    only: Option<&[String]>,
    quantize_u8: bool,
) -> Result<usize> {
    let dataset = Dataset::open(input)?;
    let cases: Vec<_> = match only {
        Some(ids) => ids
            .iter()
            .map(|id| {
                dataset
                    .case(id)
                    .with_context(|| format!("{}: no case {id}", input.display()))
            })
            .collect::<Result<_>>()?,
        None => dataset.cases.iter().collect(),
    };
    if output.join("dataset.json").exists() {
        bail!("{}: already holds a dataset", output.display());
    }
    std::fs::create_dir_all(output.join("imagesTr"))?;
    std::fs::create_dir_all(output.join("labelsTr"))?;
    let bar = super::progress::bar(cases.len() as u64, "cases");
    let mut training = vec![];
    for case_ref in cases {
        let mut case = case_ref.load()?;
        let label = case
            .label
            .take()
            .with_context(|| format!("case {} has no label", case.id))?;
        let dtype = if quantize_u8 {
            quantize(&mut case.image);
            "uint8"
        } else {
            "float32"
        };
        write_image(
            &output.join("imagesTr").join(format!("{}.nii.gz", case.id)),
            &case.image,
            &case.geometry,
            dtype,
        )?;
        write_label(
            &output.join("labelsTr").join(format!("{}.nii.gz", case.id)),
            &label,
            &case.geometry,
        )?;
        training.push(serde_json::json!({"image": format!("./imagesTr/{}.nii.gz", case.id), "label": format!("./labelsTr/{}.nii.gz", case.id)}));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = training.len();
    let json = serde_json::json!({
        "name": "brainseg compact copy",
        "description": format!("from {}{}", input.display(), if quantize_u8 { ", uint8-quantised per modality (lossy)" } else { "" }),
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "numTraining": n,
        "training": training,
        "test": [],
    });
    // Written last, so an interrupted copy never looks like a dataset.
    brainseg_visualize::write_atomic(
        output.join("dataset.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(n)
}
