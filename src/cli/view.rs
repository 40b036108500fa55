//! `brainseg view`: flags to `brainseg_viewer::ViewOptions`; the viewer does the rest.
use anyhow::Result;
use brainseg_core::LabelNumbering;
use brainseg_viewer::{ViewOptions, Viewer};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A BraTS case folder, a 4-D NIfTI, or a dataset folder (then --case picks the case; default the first).
    pub input: PathBuf,
    /// Case id within a dataset.
    #[arg(long)]
    pub case: Option<String>,
    /// A predicted label map, shown as an overlay.
    #[arg(long)]
    pub pred: Option<PathBuf>,
    /// A ground-truth label map instead of the case's own.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Label numbering of --truth and --pred [default: detected; a 4 means BraTS].
    #[arg(long, value_enum)]
    pub labels: Option<LabelNumbering>,
    /// Port on 127.0.0.1 [default: a free one].
    #[arg(long)]
    pub port: Option<u16>,
}

pub fn run(args: Args) -> Result<()> {
    let viewer = Viewer::open(&ViewOptions {
        input: args.input,
        case: args.case,
        truth: args.truth,
        pred: args.pred,
        numbering: args.labels,
        port: args.port,
    })?;
    println!("{}: open {} (Ctrl-C stops)", viewer.summary, viewer.url());
    viewer.serve()?;
    Ok(())
}
