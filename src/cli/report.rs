//! `brainseg report`: one self-contained HTML page for a training run or a prediction folder.
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A run folder (from `brainseg train`) or a prediction/evaluation folder.
    #[arg(value_name = "INPUT")]
    pub dir: PathBuf,
    /// Where to write the page [default: <INPUT>/report.html].
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub options: brainseg_pipeline::report::ReportOptions,
}

pub fn run(args: Args) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| brainseg_pipeline::layout::PredictionLayout::new(&args.dir).report());
    brainseg_pipeline::report::build(&args.dir, &args.options)?.write(&out)?;
    println!("wrote {}", out.display());
    Ok(())
}
