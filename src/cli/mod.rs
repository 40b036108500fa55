//! Subcommands, one module each.
use clap::{Parser, Subcommand};

mod convert;
mod info;
pub(crate) mod progress;

#[derive(Parser)]
#[command(name = "brainseg", version, about = "Brain-tumour segmentation in multimodal MRI with 3D U-Nets", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Describe a NIfTI file, a case folder or a dataset: shape, dtype, spacing, orientation, intensities, labels.
    Info(info::Args),
    /// Convert a raw BraTS dataset (a folder per case) to the MSD Task01 layout.
    Convert(convert::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(args),
    }
}
