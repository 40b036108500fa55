//! `brainseg info`: what is in a file, a case or a dataset, as a table or JSON.
use anyhow::Result;
use brainseg_pipeline::info::describe;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A .nii/.nii.gz file, a BraTS case folder, or a dataset folder (MSD or raw BraTS).
    #[arg(value_name = "INPUT")]
    pub path: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let info = describe(&args.path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", info.to_table());
    }
    Ok(())
}
