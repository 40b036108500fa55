//! `brainseg convert`: raw BraTS folders -> MSD Task01 layout.
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset to convert (raw BraTS: a folder per case; an MSD dataset is rewritten as is).
    pub input: PathBuf,
    /// Output folder: dataset.json, imagesTr/<case>.nii.gz (4-D), labelsTr/<case>.nii.gz (MSD labels 0..3).
    pub output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let n = brainseg_volume::convert::to_msd(&args.input, &args.output)?;
    println!("wrote {n} case(s) in the MSD layout to {}", args.output.display());
    Ok(())
}
