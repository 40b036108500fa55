//! `brainseg convert`: raw BraTS folders -> MSD Task01 layout; optionally a compact training copy.
use super::progress::Reporter;
use anyhow::Result;
use brainseg_pipeline::Progress;
use brainseg_volume::convert::{compact_copy, to_msd};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset to convert (raw BraTS: a folder per case; an MSD dataset is rewritten as is).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Output folder: dataset.json, imagesTr/<case>.nii.gz (4-D), labelsTr/<case>.nii.gz (MSD labels 0..3).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Lossy compact copy for carrying a training set (e.g. to a GPU machine): each modality of each case is
    /// scaled to whole values 1..255 (0 stays 0) and stored as uint8, about 3x smaller. Only for training
    /// with `--standardization zscore`, which does not see the scale.
    #[arg(long)]
    pub quantize_u8: bool,
    /// INPUT is a DICOM study: write each series as NIfTI (<number>_<description>.nii.gz).
    #[arg(long, conflicts_with_all = ["quantize_u8", "cases"])]
    pub dicom: bool,
    /// Only these cases (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub cases: Option<Vec<String>>,
}

pub fn run(args: Args) -> Result<()> {
    if args.dicom {
        let converted = brainseg_dicom::convert_study(&args.input, &args.output)?;
        let mut failed = 0;
        for series in &converted {
            match &series.outcome {
                Ok(path) => println!("wrote {}", path.display()),
                Err(e) => {
                    failed += 1;
                    eprintln!("warning: series {}: {e}", series.info.name)
                }
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} of {} series could not be converted", converted.len());
        }
        return Ok(());
    }
    if !args.quantize_u8 && args.cases.is_none() {
        let n = to_msd(&args.input, &args.output)?;
        println!("wrote {n} case(s) in the MSD layout to {}", args.output.display());
        return Ok(());
    }
    let mut progress = Reporter::new();
    let n = compact_copy(
        &args.input,
        &args.output,
        args.cases.as_deref(),
        args.quantize_u8,
        |done, total| progress.advance("cases", done, total, ""),
    )?;
    progress.finish("cases");
    let kind = if args.quantize_u8 { "uint8, lossy" } else { "as read" };
    println!("wrote {n} case(s) ({kind}) in the MSD layout to {}", args.output.display());
    Ok(())
}
