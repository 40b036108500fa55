//! `brainseg cohort status`: a cohort's progress over the parts of `predict --part K/N`.
use anyhow::Result;
use brainseg_pipeline::cohort::status;
use brainseg_pipeline::input::open_cases;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Merge the parts' records and manifests of a prediction folder: cases done, failed (with
    /// why) and, with --input, missing; which parts to run again.
    Status(StatusArgs),
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The prediction folder the parts write into.
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// The cohort's dataset, to list the cases not done yet.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Command::Status(args) = args.command;
    let ids = match &args.input {
        Some(input) => Some(
            open_cases(input, None)?
                .iter()
                .map(|c| c.id().to_string())
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let report = status(&args.out, ids.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
