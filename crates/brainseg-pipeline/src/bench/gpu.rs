//! `brainseg bench-gpu`: the numbers scripts/gpu_session.sh compares with PyTorch.
//!
//! Timing mode: N training steps (forward, soft Dice on the sigmoid, backward, Adam) and N
//! inference batches of a U-Net (the seed's by default) on random data, in the shape of
//! `../shared/bench/torch_unet3d.py`'s JSON. Check mode: the same small model on the CPU and on
//! the backend, same weights and data, compared output for output and loss for loss over a few
//! Adam steps.
use super::timing::{median, timed, CpuInfo, Timings};
use super::{random_batch, GpuBenchConfig, Mode, LEARNING_RATE};
use crate::{Error, Progress, Result};
use brainseg_model::burn::module::Module;
use brainseg_model::burn::optim::{AdamConfig, GradientsParams};
use brainseg_model::burn::tensor::activation::sigmoid;
use brainseg_model::burn::tensor::Tensor;
use brainseg_model::{loss, Device, UNet3d, UNet3dConfig};
use serde::Serialize;
use std::time::Instant;

/// Largest CPU/GPU difference of a probability accepted in the check: cuDNN uses TF32 for f32
/// convolutions (10-bit mantissa, ~5e-4 relative), which a few layers grow to ~1e-3.
const PROBABILITY_TOLERANCE: f64 = 1e-2;
/// Largest CPU/GPU difference of a loss in the check, as a share of the CPU's loss drop over the
/// steps: the device must learn what the CPU learns (a wrong gradient changes the drop wholesale).
const LEARNING_TOLERANCE: f64 = 0.1;

/// What `bench-gpu` found: timings, or the check against the CPU.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum GpuBenchReport {
    Timing(GpuTiming),
    Check(GpuCheck),
}

impl GpuBenchReport {
    /// Why the run failed: the check's disagreement; `None` for timings and passed checks.
    pub fn failure(&self) -> Option<String> {
        match self {
            GpuBenchReport::Check(check) if check.check != "pass" => Some(format!(
                "{} disagrees with the CPU beyond the tolerances",
                check.device
            )),
            _ => None,
        }
    }
}

/// Timings, with torch_unet3d.py's keys.
#[derive(Debug, Serialize)]
pub struct GpuTiming {
    pub framework: &'static str,
    pub device: String,
    #[serde(flatten)]
    pub cpu: CpuInfo,
    pub batch: usize,
    pub size: [usize; 3],
    pub warmup: usize,
    pub depth: usize,
    pub base_filters: usize,
    pub infer: Option<IterationSummary>,
    pub train: Option<IterationSummary>,
    /// The loss of the last training step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_loss: Option<f32>,
    /// Seconds of the whole benchmark.
    pub bench_s: f64,
}

/// The keys torch_unet3d.py prints, over the iterations after the warm-up.
#[derive(Debug, Serialize)]
pub struct IterationSummary {
    pub s_per_iter_mean: f64,
    pub s_per_iter_min: f64,
    pub s_per_iter_median: f64,
    pub s_per_patch: f64,
    /// The first iteration, warm-up included.
    pub first_iter_s: f64,
    pub iters: usize,
    /// Training only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patches_per_s: Option<f64>,
}

impl IterationSummary {
    fn new(timings: &Timings, batch: usize) -> IterationSummary {
        let timed = &timings.seconds;
        let median = median(timed);
        IterationSummary {
            s_per_iter_mean: timed.iter().sum::<f64>() / timed.len() as f64,
            s_per_iter_min: timed.iter().copied().fold(f64::INFINITY, f64::min),
            s_per_iter_median: median,
            s_per_patch: median / batch as f64,
            first_iter_s: timings.first_s,
            iters: timed.len(),
            patches_per_s: None,
        }
    }
}

/// The device against the CPU.
#[derive(Debug, Serialize)]
pub struct GpuCheck {
    /// "pass" or "FAIL".
    pub check: &'static str,
    pub device: String,
    pub voxels: usize,
    pub max_abs_probability_difference: f64,
    pub cpu_losses: Vec<f32>,
    pub device_losses: Vec<f32>,
    pub probability_tolerance: f64,
    pub max_abs_loss_difference: f64,
    pub loss_tolerance: f64,
}

/// Times the device, or with `config.check` compares it with the CPU (a failed comparison is a
/// report whose [`GpuBenchReport::failure`] says so, not an error).
pub fn run_gpu(config: &GpuBenchConfig, progress: &mut dyn Progress) -> Result<GpuBenchReport> {
    let entered = Instant::now();
    let device = chosen_device(config)?;
    if config.check {
        return Ok(GpuBenchReport::Check(check(&device)?));
    }
    if config.iters == 0 {
        return Err(Error::invalid("--iters must be at least 1"));
    }
    let unet = UNet3dConfig {
        depth: config.depth,
        base_filters: config.base_filters,
        ..UNet3dConfig::default()
    };
    let [x, y, z] = config.size;
    let shape = [config.batch, unet.in_channels, x, y, z];
    let (images, targets) = random_batch(shape, unet.out_classes, 42);
    let mut result = GpuTiming {
        framework: "brainseg-burn-0.22",
        device: format!("{device:?}"),
        cpu: CpuInfo::detect(),
        batch: config.batch,
        size: config.size,
        warmup: config.warmup,
        depth: config.depth,
        base_filters: config.base_filters,
        infer: None,
        train: None,
        last_loss: None,
        bench_s: 0.0,
    };
    progress.stage(&format!(
        "[bench-gpu] {} on {}",
        result.device,
        result.cpu.describe()
    ));

    let model = UNet3d::new(&unet, 0, &device.clone().autodiff())?;
    let (warmup, iters) = (config.warmup, config.iters);
    if config.mode != Mode::Train {
        let plain = device.clone().without_autodiff();
        let model = model.valid().to_device(&plain);
        let input = Tensor::<5>::from_data(images.clone(), &plain);
        let times = timed(progress, "[bench-gpu] infer", warmup, iters, || {
            let total = model.forward(input.clone())?.sum().into_scalar::<f32>();
            Ok(format!("sum={total:.1}"))
        })?;
        result.infer = Some(IterationSummary::new(&times, config.batch));
    }
    if config.mode != Mode::Infer {
        let autodiff = device.clone().autodiff();
        let input = Tensor::<5>::from_data(images, &autodiff);
        let target = Tensor::<5>::from_data(targets, &autodiff);
        let mut optim = AdamConfig::new().init();
        let mut model = Some(model);
        let mut last_loss = f32::NAN;
        let times = timed(progress, "[bench-gpu] train", warmup, iters, || {
            let current = model.take().expect("the model is put back after each step");
            let loss = loss::soft_dice_loss(
                sigmoid(current.forward_logits(input.clone())?),
                target.clone(),
                loss::SEED_EPSILON,
            );
            let grads = GradientsParams::from_grads(loss.backward(), &current);
            let next = optim.step(LEARNING_RATE, current, grads);
            last_loss = loss.into_scalar::<f32>();
            // The loss came before the update: make the update itself part of the timed step.
            autodiff
                .sync()
                .map_err(|e| Error::invalid(format!("{e:?}")))?;
            model = Some(next);
            Ok(format!("loss={last_loss:.5}"))
        })?;
        let mut train = IterationSummary::new(&times, config.batch);
        train.patches_per_s = Some(config.batch as f64 / train.s_per_iter_median);
        result.train = Some(train);
        result.last_loss = Some(last_loss);
    }
    result.bench_s = entered.elapsed().as_secs_f64();
    Ok(GpuBenchReport::Timing(result))
}

fn chosen_device(config: &GpuBenchConfig) -> Result<Device> {
    #[cfg(feature = "cuda")]
    if config.libtorch_cpu {
        #[allow(deprecated)] // burn-tch is deprecated upstream but is the road to cuDNN here
        return Ok(Device::libtorch());
    }
    crate::device(config.backend)
}

/// Same weights and data on the CPU and on `device`: forward probabilities, then the loss over
/// three Adam steps, must agree within [`PROBABILITY_TOLERANCE`] and [`LEARNING_TOLERANCE`].
fn check(device: &Device) -> Result<GpuCheck> {
    let config = UNet3dConfig {
        depth: 3,
        base_filters: 8,
        ..UNet3dConfig::default()
    };
    let shape = [2, config.in_channels, 32, 32, 16];
    let (images, targets) = random_batch(shape, config.out_classes, 7);
    let cpu = brainseg_model::cpu_device();
    let run_on = |device: &Device| -> Result<(Vec<f32>, Vec<f32>)> {
        let plain = device.clone().without_autodiff();
        let autodiff = device.clone().autodiff();
        let mut model = UNet3d::new(&config, 3, &autodiff)?;
        let output = model
            .valid()
            .to_device(&plain)
            .forward(Tensor::<5>::from_data(images.clone(), &plain))?;
        let probabilities = output
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::invalid(format!("{e:?}")))?;
        let input = Tensor::<5>::from_data(images.clone(), &autodiff);
        let target = Tensor::<5>::from_data(targets.clone(), &autodiff);
        let mut optim = AdamConfig::new().init();
        let mut losses = Vec::new();
        for _ in 0..3 {
            let loss = loss::soft_dice_loss(
                sigmoid(model.forward_logits(input.clone())?),
                target.clone(),
                loss::SEED_EPSILON,
            );
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            // A large step so that a wrong gradient shows in the next loss.
            model = optim.step(1e-3, model, grads);
            losses.push(loss.into_scalar::<f32>());
        }
        Ok((probabilities, losses))
    };
    let (cpu_probabilities, cpu_losses) = run_on(&cpu)?;
    let (probabilities, losses) = run_on(device)?;
    let largest_difference = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max)
    };
    let max_difference = largest_difference(&cpu_probabilities, &probabilities);
    let loss_difference = largest_difference(&cpu_losses, &losses);
    let cpu_drop = (cpu_losses[0] - cpu_losses[cpu_losses.len() - 1]) as f64;
    let loss_tolerance = LEARNING_TOLERANCE * cpu_drop.abs();
    let passed = max_difference <= PROBABILITY_TOLERANCE
        && loss_difference <= loss_tolerance
        && losses.iter().all(|l| l.is_finite());
    Ok(GpuCheck {
        check: if passed { "pass" } else { "FAIL" },
        device: format!("{device:?}"),
        voxels: cpu_probabilities.len(),
        max_abs_probability_difference: max_difference,
        cpu_losses,
        device_losses: losses,
        probability_tolerance: PROBABILITY_TOLERANCE,
        max_abs_loss_difference: loss_difference,
        loss_tolerance,
    })
}
