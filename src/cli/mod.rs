//! Subcommands, one module each; the pipeline itself lives in the `brainseg-*` crates.
use anyhow::Result;
use brainseg_model::Device;
use clap::{Parser, Subcommand};

mod bench;
mod bench_gpu;
mod convert;
mod demo;
mod evaluate;
mod info;
mod model;
mod model_io;
mod predict;
pub(crate) mod progress;
mod report;
mod show;
mod train;

#[derive(Parser)]
#[command(name = "brainseg", version, about = "Brain-tumour segmentation in multimodal MRI with 3D U-Nets", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// CPU convolutions as direct 27-tap sums instead of Winograd F(2,3) (which is 2-3x faster;
    /// both are f32, Winograd rounds slightly differently)
    #[arg(long, global = true)]
    pub direct_conv: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// The whole pipeline on synthetic data (or --data): train, segment, evaluate, draw, report.
    Demo(demo::Args),
    /// Describe a NIfTI file, a case folder or a dataset: shape, dtype, spacing, orientation, intensities, labels.
    Info(info::Args),
    /// Convert a raw BraTS dataset (a folder per case) to the MSD Task01 layout.
    Convert(convert::Args),
    /// Train a 3D U-Net on a dataset or on the seed's HDF5 patches.
    Train(train::Args),
    /// Segment whole scans: label maps (and probabilities) in the source geometry.
    Predict(predict::Args),
    /// Score predicted label maps against ground truth: Dice, sensitivity, specificity, HD95.
    Evaluate(evaluate::Args),
    /// Draw a case: labelled slice grid, GIF, patch view, ground truth beside prediction.
    Show(show::Args),
    /// The U-Net's layer table, parameter count and GFLOP per patch.
    Model(model::Args),
    /// Write a self-contained HTML page for a run or a prediction folder.
    Report(report::Args),
    /// CPU speed of the seed U-Net: forward, training step and whole-scan times, GFLOP/s, peak
    /// memory; per-layer timings with --layers; beside PyTorch with --torch PYTHON.
    Bench(bench::Args),
    /// Time training steps and inference of a U-Net on a device, or check it against the CPU (JSON).
    #[command(hide = true)]
    BenchGpu(bench_gpu::Args),
}

/// Where the model runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (flex).
    Cpu,
    /// NVIDIA GPU (needs a build with `--features cuda`).
    Cuda,
}

pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(brainseg_model::cpu_device()),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Ok(brainseg_model::cuda_device()?),
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => anyhow::bail!("this brainseg was built without GPU support; rebuild with `cargo build --release --features cuda`"),
    }
}

pub fn training_device(backend: Backend) -> Result<Device> {
    Ok(device(backend)?.autodiff())
}

/// Peak resident memory of this process (Linux), for reports.
pub fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.2} GiB", kb / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into())
}

pub fn run(cli: Cli) -> Result<()> {
    brainseg_model::conv::use_direct_convolution(cli.direct_conv);
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Train(args) => train::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Show(args) => show::run(args),
        Command::Report(args) => report::run(args),
        Command::Model(args) => model::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchGpu(args) => bench_gpu::run(args),
    }
}
