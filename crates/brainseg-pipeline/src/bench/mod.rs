//! The benchmarks: CPU speed of the seed U-Net (16,318,307 parameters, Glorot weights from seed
//! 0) on burn's flex backend, optionally beside PyTorch on the same threads and shapes ([`run`]),
//! and the device timings and CPU check `scripts/gpu_session.sh` runs ([`run_gpu`]).
//!
//! Parts ([`Part`]): `forward` (inference of one patch), `train` (forward, soft Dice on the
//! sigmoid, backward, Adam on one patch), `seed` and `sliding` (a whole random scan through
//! brainseg-infer's tiling and [`ModelPredictor`](crate::model::ModelPredictor), as segmenting
//! runs it). [`BenchConfig::layers`] times each convolution alone on its real shapes: forward,
//! the two backward passes, and forward + backward through autodiff. The 3x3x3 layers run
//! brainseg-conv's kernels; with [`BenchConfig::burn_conv`] every layer runs burn's own conv3d
//! (its backward passes as burn's autodiff computes them: a transposed convolution for the input
//! gradient, a batch/channel-swapped convolution for the weight gradient).
//!
//! FLOP come from [`brainseg_model::summary`] (one multiply-add is 2, convolutions only); a
//! training step counts 3x the forward (forward, input gradient, weight gradient). Peak memory is
//! the process's VmHWM, reset before each part where Linux allows it. Timings on a loaded machine
//! mean little, so each part records the 1-minute load average before and after it, and every
//! result names the CPU ([`CpuInfo`]). Nothing here prints: progress lines go to [`Progress`],
//! results come back as serialisable structs with their tables as text.
mod gpu;
mod layers;
mod parts;
mod predict;
pub mod timing;
mod torch;

pub use gpu::{run_gpu, GpuBenchReport, GpuCheck, GpuTiming, IterationSummary};
pub use layers::LayerResult;
pub use parts::PartResult;
pub use predict::{Agreement, PredictFigures};
pub use timing::CpuInfo;
pub use torch::TorchResult;

use crate::{Backend, Error, Progress, Result};
use brainseg_model::burn::module::Module;
use brainseg_model::burn::tensor::TensorData;
use brainseg_model::conv::{
    direct_convolution, use_burn_convolution, use_direct_convolution, Precision,
};
use brainseg_model::{summary, UNet3d, UNet3dConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};
use timing::{load_average, rayon_threads};

/// Weights of the benchmarked model: the seed configuration drawn from this seed.
pub const MODEL_SEED: u64 = 0;
/// Adam's learning rate in the training steps (the seed's).
const LEARNING_RATE: f64 = 1e-4;
/// The repository this crate was built in: the PyTorch scripts' default places.
fn repository() -> &'static Path {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir)
}

/// What `brainseg bench` times; [`Default`] holds the defaults.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Parts to time.
    pub parts: Vec<Part>,
    /// Time each convolution layer alone instead of the parts.
    pub layers: bool,
    /// Patch size (also the whole-scan tile); each side a multiple of 8.
    pub size: [usize; 3],
    /// Whole-scan volume.
    pub volume: [usize; 3],
    /// Timed iterations of forward, train and layer timings (the median is reported).
    pub iters: usize,
    /// Untimed iterations before those.
    pub warmup: usize,
    /// Timed whole scans per tiling (no warm-up: a scan is dozens of patches).
    pub scan_iters: usize,
    /// Fraction of a tile shared with its neighbour in the sliding window.
    pub overlap: f64,
    /// Tiles per model call in the whole-scan parts.
    pub tile_batch: usize,
    /// Worker threads for burn and PyTorch; `None`: all cores. rayon reads RAYON_NUM_THREADS once,
    /// when its pool starts: the caller sets it to this before any rayon use, [`run`] checks.
    pub threads: Option<usize>,
    /// Also run PyTorch with this Python (one with torch installed).
    pub torch: Option<PathBuf>,
    /// PyTorch reference of the seed U-Net (per-patch forward and training step).
    pub torch_reference: PathBuf,
    /// PyTorch whole-scan tiling script.
    pub torch_scan: PathBuf,
    /// burn's own conv3d everywhere instead of brainseg-conv's kernels.
    pub burn_conv: bool,
    /// brainseg-conv's direct 27-tap sums instead of Winograd.
    pub direct_conv: bool,
    /// The case the predict part segments (a case folder or file, as `predict -i` takes).
    pub case: PathBuf,
    /// The model the predict part uses; `None`: the bundled model.
    pub model: Option<PathBuf>,
    /// What the forward convolutions multiply in (`predict`'s default: bf16 where the CPU has it).
    pub precision: Precision,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            parts: vec![Part::Forward, Part::Train, Part::Seed, Part::Sliding],
            layers: false,
            size: [160, 160, 16],
            volume: [240, 240, 155],
            iters: 3,
            warmup: 1,
            scan_iters: 1,
            overlap: 0.5,
            tile_batch: brainseg_infer::InferenceConfig::default().batch_size,
            threads: None,
            torch: None,
            // Beside the repository, and in it.
            torch_reference: repository().join("../shared/bench/torch_unet3d.py"),
            torch_scan: repository().join("scripts/torch_whole_scan.py"),
            burn_conv: false,
            direct_conv: false,
            case: repository().join("../shared/data/brats2018/Brats18_2013_2_1"),
            model: None,
            precision: Precision::Auto,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Part {
    /// Inference of one patch.
    Forward,
    /// Forward, soft Dice loss, backward and Adam on one patch.
    Train,
    /// Whole scan, the seed's non-overlapping tiles.
    Seed,
    /// Whole scan, Gaussian-weighted sliding window.
    Sliding,
    /// A real case (`--case`) through `predict`'s defaults with the bundled model (or `--model`).
    Predict,
}

impl Part {
    /// "forward", "train", "seed", "sliding", "predict".
    pub fn name(self) -> &'static str {
        match self {
            Part::Forward => "forward",
            Part::Train => "train",
            Part::Seed => "seed",
            Part::Sliding => "sliding",
            Part::Predict => "predict",
        }
    }
}

/// What `brainseg bench-gpu` does; [`Default`] holds the defaults.
#[derive(Clone, Debug)]
pub struct GpuBenchConfig {
    pub backend: Backend,
    /// Patches per step.
    pub batch: usize,
    /// Patch size.
    pub size: [usize; 3],
    /// Timed iterations (the median is reported).
    pub iters: usize,
    /// Untimed iterations first (cuDNN autotuning, allocator growth).
    pub warmup: usize,
    pub mode: Mode,
    pub depth: usize,
    pub base_filters: usize,
    /// Compare the backend with the CPU on a small model instead of timing.
    pub check: bool,
    /// Use libtorch's CPU device instead of the backend: tests the libtorch road without a GPU.
    #[cfg(feature = "cuda")]
    pub libtorch_cpu: bool,
}

impl Default for GpuBenchConfig {
    fn default() -> GpuBenchConfig {
        GpuBenchConfig {
            backend: Backend::Cuda,
            batch: 3,
            size: [160, 160, 16],
            iters: 10,
            warmup: 3,
            mode: Mode::Both,
            depth: 4,
            base_filters: 32,
            check: false,
            #[cfg(feature = "cuda")]
            libtorch_cpu: false,
        }
    }
}

/// What the device benchmark times.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Mode {
    Both,
    Infer,
    Train,
}

/// The settings and the machine a CPU benchmark ran with.
#[derive(Clone, Debug, Serialize)]
pub struct BenchHeader {
    pub model: &'static str,
    pub params: usize,
    pub seed: u64,
    pub size: [usize; 3],
    pub volume: [usize; 3],
    pub threads: usize,
    pub iters: usize,
    pub warmup: usize,
    pub scan_iters: usize,
    pub overlap: f64,
    pub tile_batch: usize,
    pub forward_gflop: f64,
    #[serde(flatten)]
    pub cpu: CpuInfo,
    /// "burn", "brainseg-conv direct" or "brainseg-conv Winograd".
    pub convolution: &'static str,
    /// What the forward convolutions multiply in: "bf16" or "f32".
    pub precision: &'static str,
    /// What the training steps' convolutions multiply in: "f32", or "bf16" when named.
    pub train_precision: &'static str,
    pub load_at_start: Option<f64>,
}

/// A CPU benchmark: the parts or, with [`BenchConfig::layers`], the layers.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub bench: BenchHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<PartResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerResult>>,
    pub load_at_end: Option<f64>,
}

impl BenchReport {
    /// The results as a text table.
    pub fn table(&self) -> String {
        match (&self.parts, &self.layers) {
            (_, Some(layers)) => layers::table(&self.bench, layers, self.load_at_end),
            (Some(parts), None) => parts::table(&self.bench, parts, self.load_at_end),
            (None, None) => String::new(),
        }
    }
}

impl BenchConfig {
    fn validate(&self) -> Result<()> {
        if self.iters == 0 || self.scan_iters == 0 {
            return Err(Error::invalid(
                "--iters and --scan-iters must be at least 1",
            ));
        }
        if let Some(threads) = self.threads {
            if threads == 0 {
                return Err(Error::invalid("--threads must be at least 1"));
            }
            if rayon_threads() != threads {
                return Err(Error::invalid(format!(
                    "{threads} threads asked for, but rayon will start {}: set RAYON_NUM_THREADS \
                     before any rayon use",
                    rayon_threads()
                )));
            }
        }
        if self.torch.is_some() {
            for script in [&self.torch_reference, &self.torch_scan] {
                if !script.is_file() {
                    return Err(Error::invalid(format!(
                        "{}: PyTorch script not found (see --torch-reference, --torch-scan)",
                        script.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Times the parts (or the layers) `config` asks for. Sets the process-wide convolution switches
/// ([`use_burn_convolution`], [`use_direct_convolution`]) from `config`.
pub fn run(config: &BenchConfig, progress: &mut dyn Progress) -> Result<BenchReport> {
    config.validate()?;
    use_burn_convolution(config.burn_conv);
    use_direct_convolution(config.direct_conv);
    let precision = config.precision.apply().map_err(Error::invalid)?;
    let unet = UNet3dConfig::default();
    let [x, y, z] = config.size;
    let table = summary(&unet, [unet.in_channels, x, y, z])
        .map_err(|e| Error::invalid(format!("--size does not fit the seed U-Net: {e}")))?;
    let model = UNet3d::new(&unet, MODEL_SEED, &brainseg_model::cpu_autodiff_device())?;
    let header = BenchHeader {
        model: "seed U-Net",
        params: model.num_params(),
        seed: MODEL_SEED,
        size: config.size,
        volume: config.volume,
        threads: rayon_threads(),
        iters: config.iters,
        warmup: config.warmup,
        scan_iters: config.scan_iters,
        overlap: config.overlap,
        tile_batch: config.tile_batch,
        forward_gflop: table.total_gflop,
        cpu: CpuInfo::detect(),
        convolution: if config.burn_conv {
            "burn"
        } else if direct_convolution() {
            "brainseg-conv direct"
        } else {
            "brainseg-conv Winograd"
        },
        precision,
        train_precision: if config.precision == Precision::Bf16 {
            "bf16"
        } else {
            "f32"
        },
        load_at_start: load_average(),
    };
    progress.stage(&format!(
        "[bench] {}",
        serde_json::to_string(&header).expect("plain numbers and strings")
    ));
    let (parts, layers) = if config.layers {
        (
            None,
            Some(layers::time_layers(&model, &table, config, progress)?),
        )
    } else {
        let parts = parts::time_parts(&model, &table, config, header.threads, progress)?;
        (Some(parts), None)
    };
    Ok(BenchReport {
        bench: header,
        parts,
        layers,
        load_at_end: load_average(),
    })
}

/// A `[B, C, X, Y, Z]` image uniform in [-1, 1) and a `[B, classes, X, Y, Z]` 0/1 target
/// (p = 0.5), both drawn from `seed`: the same on every device.
fn random_batch(shape: [usize; 5], classes: usize, seed: u64) -> (TensorData, TensorData) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let target_shape = [shape[0], classes, shape[2], shape[3], shape[4]];
    let targets: Vec<f32> = (0..target_shape.iter().product::<usize>())
        .map(|_| if rng.random_bool(0.5) { 1.0 } else { 0.0 })
        .collect();
    (
        TensorData::new(images, shape),
        TensorData::new(targets, target_shape),
    )
}

/// Values uniform in [-1, 1).
fn random_tensor(shape: [usize; 5], seed: u64) -> TensorData {
    random_batch(shape, 0, seed).0
}
