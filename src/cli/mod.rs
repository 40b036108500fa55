//! Subcommands, one module each. They turn flags into the pipeline's configurations, draw progress
//! and tables, and leave the work to `brainseg-pipeline` and the stage crates.
use anyhow::Result;
use brainseg_pipeline::Backend;
use clap::{Parser, Subcommand};

mod bench;
mod cache;
mod cohort;
mod convert;
mod demo;
mod evaluate;
mod info;
mod model;
mod predict;
mod progress;
mod report;
mod show;
mod train;
mod view;

#[derive(Parser)]
#[command(name = "brainseg", version, about = "Brain-tumour segmentation in multimodal MRI with 3D U-Nets", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The whole pipeline on synthetic data (or --data): train, segment, evaluate, draw, report.
    Demo(demo::Args),
    /// Describe a NIfTI file, a case folder or a dataset: shape, dtype, spacing, orientation, intensities, labels.
    Info(info::Args),
    /// Convert a raw BraTS dataset (a folder per case) to the MSD Task01 layout.
    Convert(convert::Args),
    /// Train a 3D U-Net on a dataset or on the notebook's HDF5 patches.
    Train(train::Args),
    /// Segment whole scans: label maps (and probabilities) in the source geometry.
    Predict(predict::Args),
    /// A cohort predicted in parts (`predict --part K/N`, e.g. a Slurm array): status.
    Cohort(cohort::Args),
    /// Score predicted label maps against ground truth: Dice, sensitivity, specificity, HD95.
    Evaluate(evaluate::Args),
    /// Draw a case: labelled slice grid, GIF, patch view, ground truth beside prediction.
    Show(show::Args),
    /// Look at a case in 3-D in the browser: modalities, ground truth and prediction (NiiVue on 127.0.0.1).
    View(view::Args),
    /// The U-Net's layer table, parameter count and GFLOP per patch.
    Model(model::Args),
    /// Write a self-contained HTML page for a run or a prediction folder.
    Report(report::Args),
    /// CPU speed of the notebook's U-Net: forward, training step and whole-scan times, GFLOP/s,
    /// peak memory; per-layer timings with --layers; beside PyTorch with --torch PYTHON.
    Bench(bench::Args),
    /// Where training keeps decoded cases (shared by runs on the same data), its size; --clear.
    Cache(cache::Args),
    /// Time training steps and inference of a U-Net on a device, or check it against the CPU (JSON).
    #[command(hide = true)]
    BenchGpu(bench::GpuArgs),
}

/// Where and how the network computes: shared by the commands that run a model.
#[derive(clap::Args, Clone, Copy)]
pub struct Compute {
    /// Compute backend.
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// CPU convolutions as direct 27-tap sums instead of Winograd F(2,3) (which is 2-3x faster;
    /// both are f32, Winograd rounds slightly differently).
    #[arg(long)]
    pub direct_conv: bool,
}

impl Compute {
    /// Applies the convolution choice; returns the backend.
    pub fn apply(self) -> Backend {
        brainseg_model::conv::use_direct_convolution(self.direct_conv);
        self.backend
    }
}

/// Parses `x,y,z`.
pub fn three(values: &[usize], flag: &str) -> Result<[usize; 3]> {
    values
        .try_into()
        .map_err(|_| anyhow::anyhow!("{flag} needs 3 sizes x,y,z"))
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Train(args) => train::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Cohort(args) => cohort::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Show(args) => show::run(args),
        Command::Report(args) => report::run(args),
        Command::View(args) => view::run(args),
        Command::Model(args) => model::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Cache(args) => cache::run(args),
        Command::BenchGpu(args) => bench::run_gpu(args),
    }
}
