//! `brainseg bench` and `bench-gpu`: flags only; the benchmarks live in `brainseg_pipeline::bench`.
use super::progress::Reporter;
use anyhow::{bail, ensure, Result};
use brainseg_model::conv::Precision;
use brainseg_pipeline::bench::{self, BenchConfig, GpuBenchConfig, Mode, Part};
use brainseg_pipeline::Backend;
use std::path::PathBuf;

fn cpu() -> BenchConfig {
    BenchConfig::default()
}

fn gpu() -> GpuBenchConfig {
    GpuBenchConfig::default()
}

/// A list default as the flag takes it, "a,b,c" (clap would show `default_values_t` as "a b c").
fn commas<T: ToString>(values: impl IntoIterator<Item = T>) -> &'static str {
    let text: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    Box::leak(text.join(",").into_boxed_str())
}

#[derive(clap::Args)]
pub struct Args {
    /// Parts to time, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = commas(cpu().parts.iter().map(|p| p.name())))]
    pub parts: Vec<Part>,
    /// Time each convolution layer alone instead of the parts: forward, input gradient, weight
    /// gradient, and forward + backward through autodiff.
    #[arg(long, conflicts_with = "parts")]
    pub layers: bool,
    /// Patch size x,y,z (also the whole-scan tile); each side a multiple of 8.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = commas(cpu().size))]
    pub size: Vec<usize>,
    /// Whole-scan volume x,y,z.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = commas(cpu().volume))]
    pub volume: Vec<usize>,
    /// Timed iterations of forward, train and layer timings; the median is reported (the upper
    /// one for even counts, as torch_unet3d.py does: odd counts compare best).
    #[arg(long, default_value_t = cpu().iters)]
    pub iters: usize,
    /// Untimed iterations before those.
    #[arg(long, default_value_t = cpu().warmup)]
    pub warmup: usize,
    /// Timed whole scans per tiling (no warm-up: a scan is dozens of patches).
    #[arg(long, default_value_t = cpu().scan_iters)]
    pub scan_iters: usize,
    /// Fraction of a tile shared with its neighbour in the sliding window.
    #[arg(long, default_value_t = cpu().overlap)]
    pub overlap: f64,
    /// Tiles per model call in the whole-scan parts (as `predict --batch-size`).
    #[arg(long, default_value_t = cpu().tile_batch)]
    pub tile_batch: usize,
    /// Worker threads for burn (RAYON_NUM_THREADS) and PyTorch; default: all cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also run PyTorch with this Python (one with torch installed, e.g. .venv-bench/bin/python).
    #[arg(long, value_name = "PYTHON", conflicts_with = "layers")]
    pub torch: Option<PathBuf>,
    /// PyTorch reference of the seed U-Net (per-patch forward and training step).
    #[arg(long, default_value_os_t = cpu().torch_reference)]
    pub torch_reference: PathBuf,
    /// PyTorch whole-scan tiling script.
    #[arg(long, default_value_os_t = cpu().torch_scan)]
    pub torch_scan: PathBuf,
    /// One JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Use burn's own conv3d everywhere instead of brainseg-conv's kernels (the comparison the
    /// kernels were measured against).
    #[arg(long)]
    pub burn_conv: bool,
    /// brainseg-conv's direct 27-tap sums instead of Winograd F(2,3).
    #[arg(long, conflicts_with = "burn_conv")]
    pub direct_conv: bool,
    /// The case the predict part segments (a case folder or file, as `predict -i` takes).
    #[arg(long, default_value_os_t = cpu().case)]
    pub case: PathBuf,
    /// The model of the predict part (default: the bundled model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// What forward convolutions multiply in, as `predict --precision` (training steps: f32, `train`'s
    /// default, unless bf16 is named).
    #[arg(long, value_enum, default_value_t = cpu().precision)]
    pub precision: Precision,
}

#[derive(clap::Args)]
pub struct GpuArgs {
    #[arg(long, value_enum, default_value_t = gpu().backend)]
    pub backend: Backend,
    #[arg(long, default_value_t = gpu().batch)]
    pub batch: usize,
    /// Patch size x,y,z.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = commas(gpu().size))]
    pub size: Vec<usize>,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = gpu().iters)]
    pub iters: usize,
    /// Untimed iterations first (cuDNN autotuning, allocator growth).
    #[arg(long, default_value_t = gpu().warmup)]
    pub warmup: usize,
    #[arg(long, value_enum, default_value_t = gpu().mode)]
    pub mode: Mode,
    #[arg(long, default_value_t = gpu().depth)]
    pub depth: usize,
    #[arg(long, default_value_t = gpu().base_filters)]
    pub base_filters: usize,
    /// Compare --backend with the CPU on a small model instead of timing.
    #[arg(long)]
    pub check: bool,
    /// Use libtorch's CPU device instead of --backend: tests the libtorch road without a GPU.
    #[cfg(feature = "cuda")]
    #[arg(long, hide = true)]
    pub libtorch_cpu: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(threads) = args.threads {
        ensure!(threads > 0, "--threads must be at least 1");
        // Before any rayon use: the global pool reads this once, when it starts.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    let config = BenchConfig {
        parts: args.parts,
        layers: args.layers,
        size: super::three(&args.size, "--size")?,
        volume: super::three(&args.volume, "--volume")?,
        iters: args.iters,
        warmup: args.warmup,
        scan_iters: args.scan_iters,
        overlap: args.overlap,
        tile_batch: args.tile_batch,
        threads: args.threads,
        torch: args.torch,
        torch_reference: args.torch_reference,
        torch_scan: args.torch_scan,
        burn_conv: args.burn_conv,
        direct_conv: args.direct_conv,
        case: args.case,
        model: args.model,
        precision: args.precision,
    };
    let report = bench::run(&config, &mut Reporter::new())?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

pub fn run_gpu(args: GpuArgs) -> Result<()> {
    let config = GpuBenchConfig {
        backend: args.backend,
        batch: args.batch,
        size: super::three(&args.size, "--size")?,
        iters: args.iters,
        warmup: args.warmup,
        mode: args.mode,
        depth: args.depth,
        base_filters: args.base_filters,
        check: args.check,
        #[cfg(feature = "cuda")]
        libtorch_cpu: args.libtorch_cpu,
    };
    let report = bench::run_gpu(&config, &mut Reporter::new())?;
    println!("{}", serde_json::to_string(&report)?);
    if let Some(failure) = report.failure() {
        bail!(failure);
    }
    Ok(())
}
