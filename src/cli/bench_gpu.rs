//! `brainseg bench-gpu` (hidden): the numbers scripts/gpu_session.sh compares with PyTorch.
//!
//! Timing mode: N training steps (forward, soft Dice on the sigmoid, backward, Adam) and N
//! inference batches of a U-Net (the seed's by default) on random data, one JSON line on stdout in
//! the shape of `../shared/bench/torch_unet3d.py`'s. `--check`: the same small model on the CPU
//! and on `--backend`, same weights and data, compared output for output and loss for loss over a
//! few Adam steps; exits with an error when they disagree.
use anyhow::{bail, ensure, Result};
use brainseg_model::burn::module::Module;
use brainseg_model::burn::optim::{AdamConfig, GradientsParams};
use brainseg_model::burn::tensor::activation::sigmoid;
use brainseg_model::burn::tensor::{Tensor, TensorData};
use brainseg_model::{loss, Device, UNet3d, UNet3dConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "cuda")]
    pub backend: super::Backend,
    #[arg(long, default_value_t = 3)]
    pub batch: usize,
    /// Patch size x,y,z.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "160,160,16")]
    pub size: Vec<usize>,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed iterations first (cuDNN autotuning, allocator growth).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, value_enum, default_value = "both")]
    pub mode: Mode,
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    #[arg(long, default_value_t = 32)]
    pub base_filters: usize,
    /// Compare --backend with the CPU on a small model instead of timing.
    #[arg(long)]
    pub check: bool,
    /// Use libtorch's CPU device instead of --backend: tests the libtorch road without a GPU.
    #[cfg(feature = "cuda")]
    #[arg(long, hide = true)]
    pub libtorch_cpu: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Both,
    Infer,
    Train,
}

const LEARNING_RATE: f64 = 1e-4;
/// Largest CPU/GPU difference of a probability accepted in `--check`: cuDNN uses TF32 for f32
/// convolutions (10-bit mantissa, ~5e-4 relative), which a few layers grow to ~1e-3.
const PROBABILITY_TOLERANCE: f64 = 1e-2;
/// Largest CPU/GPU difference of a loss in `--check`, as a share of the CPU's loss drop over the
/// steps: the device must learn what the CPU learns (a wrong gradient changes the drop wholesale).
const LEARNING_TOLERANCE: f64 = 0.1;

pub fn run(args: Args) -> Result<()> {
    let entered = Instant::now();
    let size: [usize; 3] = args
        .size
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--size needs 3 sizes"))?;
    let device = chosen_device(&args)?;
    if args.check {
        return check(&device);
    }
    ensure!(args.iters > 0, "--iters must be at least 1");
    let config = UNet3dConfig {
        depth: args.depth,
        base_filters: args.base_filters,
        ..UNet3dConfig::default()
    };
    let shape = [args.batch, config.in_channels, size[0], size[1], size[2]];
    let (images, targets) = random_batch(shape, config.out_classes, 42);
    let mut result = json!({
        "framework": "brainseg-burn-0.22",
        "device": format!("{device:?}"),
        "batch": args.batch, "size": size, "warmup": args.warmup, "depth": args.depth, "base_filters": args.base_filters,
        "infer": null, "train": null,
    });

    let model = UNet3d::new(&config, 0, &device.clone().autodiff())?;
    if args.mode != Mode::Train {
        let plain = device.clone().without_autodiff();
        let model = model.valid().to_device(&plain);
        let input = Tensor::<5>::from_data(images.clone(), &plain);
        let times = timed(args.warmup + args.iters, "infer", || {
            let total = model.forward(input.clone())?.sum().into_scalar::<f32>();
            Ok(format!("sum={total:.1}"))
        })?;
        result["infer"] = summary(&times, args.warmup, args.batch);
    }
    if args.mode != Mode::Infer {
        let autodiff = device.clone().autodiff();
        let input = Tensor::<5>::from_data(images, &autodiff);
        let target = Tensor::<5>::from_data(targets, &autodiff);
        let mut optim = AdamConfig::new().init();
        let mut model = Some(model);
        let mut last_loss = f32::NAN;
        let times = timed(args.warmup + args.iters, "train", || {
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
            autodiff.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            model = Some(next);
            Ok(format!("loss={last_loss:.5}"))
        })?;
        result["train"] = summary(&times, args.warmup, args.batch);
        result["train"]["patches_per_s"] =
            json!(args.batch as f64 / median(&times[args.warmup.min(times.len() - 1)..]));
        result["last_loss"] = json!(last_loss);
    }
    result["bench_s"] = json!(entered.elapsed().as_secs_f64());
    println!("{result}");
    Ok(())
}

fn chosen_device(args: &Args) -> Result<Device> {
    #[cfg(feature = "cuda")]
    if args.libtorch_cpu {
        #[allow(deprecated)] // burn-tch is deprecated upstream but is the road to cuDNN here
        return Ok(Device::libtorch());
    }
    super::device(args.backend)
}

/// Same weights and data on the CPU and on `device`: forward probabilities, then the loss over
/// three Adam steps, must agree within [`PROBABILITY_TOLERANCE`] and [`LEARNING_TOLERANCE`].
fn check(device: &Device) -> Result<()> {
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
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
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
    let max_difference = cpu_probabilities
        .iter()
        .zip(&probabilities)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    let loss_difference = cpu_losses
        .iter()
        .zip(&losses)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    let cpu_drop = (cpu_losses[0] - cpu_losses[cpu_losses.len() - 1]) as f64;
    let loss_tolerance = LEARNING_TOLERANCE * cpu_drop.abs();
    let passed = max_difference <= PROBABILITY_TOLERANCE
        && loss_difference <= loss_tolerance
        && losses.iter().all(|l| l.is_finite());
    println!(
        "{}",
        json!({
            "check": if passed { "pass" } else { "FAIL" },
            "device": format!("{device:?}"),
            "voxels": cpu_probabilities.len(),
            "max_abs_probability_difference": max_difference,
            "cpu_losses": cpu_losses, "device_losses": losses,
            "probability_tolerance": PROBABILITY_TOLERANCE,
            "max_abs_loss_difference": loss_difference,
            "loss_tolerance": loss_tolerance,
        })
    );
    if !passed {
        bail!("{device:?} disagrees with the CPU beyond the tolerances");
    }
    Ok(())
}

/// Images uniform in [-1, 1) and 0/1 targets with p = 0.5, from `seed`: the same on every device.
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

/// Runs `step` `count` times, each ending in a host read (which waits for the device), and returns
/// the seconds each took. Progress goes to stderr.
fn timed(count: usize, what: &str, mut step: impl FnMut() -> Result<String>) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(count);
    for iteration in 0..count {
        let started = Instant::now();
        let note = step()?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("[bench-gpu] {what} it {iteration}: {seconds:.4}s ({note})");
        times.push(seconds);
    }
    Ok(times)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The keys torch_unet3d.py prints, over the iterations after the warm-up.
fn summary(times: &[f64], warmup: usize, batch: usize) -> serde_json::Value {
    let timed = &times[warmup.min(times.len() - 1)..];
    let median = median(timed);
    json!({
        "s_per_iter_mean": timed.iter().sum::<f64>() / timed.len() as f64,
        "s_per_iter_min": timed.iter().copied().fold(f64::INFINITY, f64::min),
        "s_per_iter_median": median,
        "s_per_patch": median / batch as f64,
        "first_iter_s": times[0],
        "iters": timed.len(),
    })
}
