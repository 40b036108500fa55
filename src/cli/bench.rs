//! `brainseg bench`: CPU speed of the seed U-Net (16,318,307 parameters, Glorot weights from seed
//! 0) on burn's flex backend, optionally beside PyTorch on the same threads and shapes.
//!
//! Parts: `forward` (inference of one patch), `train` (forward, soft Dice on the sigmoid, backward,
//! Adam on one patch), `seed` and `sliding` (a whole random scan through brainseg-infer's tiling and
//! the CLI's [`ModelPredictor`], as `predict` runs it). `--layers` times each convolution alone on
//! its real shapes: forward, the two backward passes, and forward + backward through autodiff. The
//! 3x3x3 layers run brainseg-conv's kernels; with `--burn-conv` every layer runs burn's own conv3d
//! (its backward passes as burn's autodiff computes them: a transposed convolution for the input
//! gradient, a batch/channel-swapped convolution for the weight gradient).
//!
//! FLOP come from [`brainseg_model::summary`] (one multiply-add is 2, convolutions only); a
//! training step counts 3x the forward (forward, input gradient, weight gradient). Peak memory is
//! the process's VmHWM, reset before each part where Linux allows it. Timings on a loaded machine
//! mean little, so each part records the 1-minute load average before and after it.
use super::model_io::ModelPredictor;
use anyhow::{anyhow, bail, ensure, Context, Result};
use brainseg_infer::{predict_probabilities, tile_starts, InferenceConfig, Tiling};
use brainseg_model::burn::module::Module;
use brainseg_model::burn::nn::conv::Conv3d;
use brainseg_model::burn::optim::{AdamConfig, GradientsParams};
use brainseg_model::burn::tensor::activation::sigmoid;
use brainseg_model::burn::tensor::module::{conv3d, conv_transpose3d};
use brainseg_model::burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use brainseg_model::burn::tensor::{Tensor, TensorData};
use brainseg_model::conv::{
    conv3d_layer, is_same_3x3x3, same_conv3d_input_grad, same_conv3d_weight_grad,
    use_burn_convolution,
};
use brainseg_model::{loss, summary, UNet3d, UNet3dConfig};
use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Weights of the benchmarked model: the seed configuration drawn from this seed.
const MODEL_SEED: u64 = 0;
/// Adam's learning rate in the training step (the seed's).
const LEARNING_RATE: f64 = 1e-4;
const DEFAULT_TORCH_REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/bench/torch_unet3d.py"
);
const DEFAULT_TORCH_SCAN: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/torch_whole_scan.py");

#[derive(clap::Args)]
pub struct Args {
    /// Parts to time, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "forward,train,seed,sliding"
    )]
    pub parts: Vec<Part>,
    /// Time each convolution layer alone instead of the parts: forward, input gradient, weight
    /// gradient, and forward + backward through autodiff.
    #[arg(long, conflicts_with = "parts")]
    pub layers: bool,
    /// Patch size x,y,z (also the whole-scan tile); each side a multiple of 8.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "160,160,16")]
    pub size: Vec<usize>,
    /// Whole-scan volume x,y,z.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "240,240,155")]
    pub volume: Vec<usize>,
    /// Timed iterations of forward, train and layer timings; the median is reported (the upper
    /// one for even counts, as torch_unet3d.py does: odd counts compare best).
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    /// Untimed iterations before those.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed whole scans per tiling (no warm-up: a scan is dozens of patches).
    #[arg(long, default_value_t = 1)]
    pub scan_iters: usize,
    /// Fraction of a tile shared with its neighbour in the sliding window.
    #[arg(long, default_value_t = 0.5)]
    pub overlap: f64,
    /// Tiles per model call in the whole-scan parts (as `predict --batch-size`).
    #[arg(long, default_value_t = 2)]
    pub tile_batch: usize,
    /// Worker threads for burn (RAYON_NUM_THREADS) and PyTorch; default: all cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also run PyTorch with this Python (one with torch installed, e.g. .venv-bench/bin/python).
    #[arg(long, value_name = "PYTHON", conflicts_with = "layers")]
    pub torch: Option<PathBuf>,
    /// PyTorch reference of the seed U-Net (per-patch forward and training step).
    #[arg(long, default_value = DEFAULT_TORCH_REFERENCE)]
    pub torch_reference: PathBuf,
    /// PyTorch whole-scan tiling script.
    #[arg(long, default_value = DEFAULT_TORCH_SCAN)]
    pub torch_scan: PathBuf,
    /// One JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Use burn's own conv3d everywhere instead of brainseg-conv's kernels (the comparison the
    /// kernels were measured against).
    #[arg(long)]
    pub burn_conv: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Inference of one patch.
    Forward,
    /// Forward, soft Dice loss, backward and Adam on one patch.
    Train,
    /// Whole scan, the seed's non-overlapping tiles.
    Seed,
    /// Whole scan, Gaussian-weighted sliding window.
    Sliding,
}

/// One timed part, with PyTorch's figures for the same work when asked.
#[derive(Serialize)]
struct PartResult {
    part: Part,
    /// Seconds of each timed iteration.
    seconds: Vec<f64>,
    median_s: f64,
    /// Convolution GFLOP of one iteration.
    gflop: f64,
    gflop_per_s: f64,
    /// Tiles per scan (whole-scan parts).
    tiles: Option<usize>,
    peak_rss_gib: Option<f64>,
    load_before: Option<f64>,
    load_after: Option<f64>,
    torch: Option<TorchResult>,
    /// brainseg seconds / PyTorch seconds.
    ratio: Option<f64>,
}

#[derive(Serialize)]
struct TorchResult {
    median_s: f64,
    gflop_per_s: f64,
    peak_rss_gib: Option<f64>,
    load_before: Option<f64>,
    load_after: Option<f64>,
    /// Everything the script printed.
    raw: Value,
}

/// One convolution timed alone on its shapes in the network.
#[derive(Serialize)]
struct LayerResult {
    name: String,
    /// `[C, X, Y, Z]` in, `[C, X, Y, Z]` out.
    input: [usize; 4],
    output: [usize; 4],
    kernel: usize,
    /// Forward GFLOP (each backward pass costs the same).
    gflop: f64,
    forward_s: f64,
    input_grad_s: f64,
    weight_grad_s: f64,
    autodiff_forward_backward_s: f64,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(threads) = args.threads {
        ensure!(threads > 0, "--threads must be at least 1");
        // Before any rayon use: the global pool reads this once, when it starts.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    ensure!(
        args.iters > 0 && args.scan_iters > 0,
        "--iters and --scan-iters must be at least 1"
    );
    let size: [usize; 3] = args
        .size
        .clone()
        .try_into()
        .map_err(|_| anyhow!("--size needs 3 sizes"))?;
    let volume: [usize; 3] = args
        .volume
        .clone()
        .try_into()
        .map_err(|_| anyhow!("--volume needs 3 sizes"))?;
    use_burn_convolution(args.burn_conv);
    let config = UNet3dConfig::default();
    let table = summary(&config, [config.in_channels, size[0], size[1], size[2]])
        .context("--size does not fit the seed U-Net")?;
    if args.torch.is_some() {
        for script in [&args.torch_reference, &args.torch_scan] {
            ensure!(
                script.is_file(),
                "{}: PyTorch script not found (see --torch-reference, --torch-scan)",
                script.display()
            );
        }
    }
    let threads = rayon_threads();
    let autodiff = brainseg_model::cpu_autodiff_device();
    let model = UNet3d::new(&config, MODEL_SEED, &autodiff)?;
    let header = json!({
        "model": "seed U-Net", "params": model.num_params(), "seed": MODEL_SEED,
        "size": size, "volume": volume, "threads": threads,
        "iters": args.iters, "warmup": args.warmup, "scan_iters": args.scan_iters,
        "overlap": args.overlap, "tile_batch": args.tile_batch,
        "forward_gflop": table.total_gflop,
        "cpu_avx512f": avx512f(),
        "convolution": if args.burn_conv {
            "burn"
        } else if brainseg_model::conv::direct_convolution() {
            "brainseg-conv direct"
        } else {
            "brainseg-conv Winograd"
        },
        "load_at_start": load_average(),
    });
    if !args.json {
        eprintln!("[bench] {header}");
    }

    if args.layers {
        let layers = time_layers(&model, &table, &args)?;
        if args.json {
            println!(
                "{}",
                json!({"bench": header, "layers": layers, "load_at_end": load_average()})
            );
        } else {
            print_layers(&header, &layers);
        }
        return Ok(());
    }

    let mut results = Vec::new();
    let (images, targets) = random_patch(
        [1, config.in_channels, size[0], size[1], size[2]],
        config.out_classes,
        42,
    );
    let image = random_volume([config.in_channels, volume[0], volume[1], volume[2]], 43);
    for &part in &args.parts {
        let reset = reset_peak_memory();
        let load_before = load_average();
        let (seconds, gflop, tiles) = match part {
            Part::Forward => {
                let plain = model.valid();
                let input = Tensor::<5>::from_data(images.clone(), &brainseg_model::cpu_device());
                let seconds = timed(part, args.warmup, args.iters, || {
                    plain.forward(input.clone())?.sum().into_scalar::<f32>();
                    Ok(())
                })?;
                (seconds, table.total_gflop, None)
            }
            Part::Train => {
                let input = Tensor::<5>::from_data(images.clone(), &autodiff);
                let target = Tensor::<5>::from_data(targets.clone(), &autodiff);
                let mut optimizer = AdamConfig::new().init();
                let mut current = Some(model.clone());
                let seconds = timed(part, args.warmup, args.iters, || {
                    let network = current.take().expect("put back after each step");
                    let probabilities = sigmoid(network.forward_logits(input.clone())?);
                    let loss =
                        loss::soft_dice_loss(probabilities, target.clone(), loss::SEED_EPSILON);
                    let grads = GradientsParams::from_grads(loss.backward(), &network);
                    current = Some(optimizer.step(LEARNING_RATE, network, grads));
                    Ok(())
                })?;
                (seconds, 3.0 * table.total_gflop, None)
            }
            Part::Seed | Part::Sliding => {
                let inference = scan_config(part, size, &args);
                let tiles = tile_count(volume, &inference);
                let plain = model.valid();
                let device = brainseg_model::cpu_device();
                let seconds = timed(part, 0, args.scan_iters, || {
                    let mut predictor = ModelPredictor {
                        model: &plain,
                        device: &device,
                    };
                    predict_probabilities(&mut predictor, image.view(), &inference, |_, _| {})?;
                    Ok(())
                })?;
                (seconds, tiles as f64 * table.total_gflop, Some(tiles))
            }
        };
        let median_s = median(&seconds);
        let peak_rss_gib = peak_memory_gib().filter(|_| reset);
        let load_after = load_average();
        // Right after brainseg's run of the same part, so both see about the same machine load.
        let torch = match &args.torch {
            Some(python) => Some(
                run_torch(python, part, size, volume, threads, gflop, &args)
                    .with_context(|| format!("PyTorch, part {part:?}"))?,
            ),
            None => None,
        };
        results.push(PartResult {
            part,
            median_s,
            gflop,
            gflop_per_s: gflop / median_s,
            tiles,
            peak_rss_gib,
            load_before,
            load_after,
            seconds,
            ratio: torch.as_ref().map(|t| median_s / t.median_s),
            torch,
        });
    }
    if args.json {
        println!(
            "{}",
            json!({"bench": header, "parts": results, "load_at_end": load_average()})
        );
    } else {
        print_parts(&header, &results);
    }
    Ok(())
}

fn scan_config(part: Part, size: [usize; 3], args: &Args) -> InferenceConfig {
    InferenceConfig {
        tile: size,
        tiling: if part == Part::Seed {
            Tiling::Seed
        } else {
            Tiling::Sliding
        },
        overlap: args.overlap,
        batch_size: args.tile_batch,
        ..InferenceConfig::default()
    }
}

fn tile_count(volume: [usize; 3], config: &InferenceConfig) -> usize {
    (0..3)
        .map(|axis| {
            tile_starts(
                volume[axis],
                config.tile[axis],
                config.tiling,
                config.overlap,
            )
            .len()
        })
        .product()
}

/// Each convolution of the network alone, on the shapes it sees for one patch.
fn time_layers(
    model: &UNet3d,
    table: &brainseg_model::ModelSummary,
    args: &Args,
) -> Result<Vec<LayerResult>> {
    let mut convs: Vec<(String, &Conv3d)> = Vec::new();
    for (level, block) in model.encoders.iter().enumerate() {
        convs.push((format!("encoders.{level}.conv1"), &block.conv1));
        convs.push((format!("encoders.{level}.conv2"), &block.conv2));
    }
    for (index, block) in model.decoders.iter().enumerate() {
        convs.push((format!("decoders.{index}.conv1"), &block.conv1));
        convs.push((format!("decoders.{index}.conv2"), &block.conv2));
    }
    convs.push(("head".into(), &model.head));
    let plain_device = brainseg_model::cpu_device();
    let autodiff_device = brainseg_model::cpu_autodiff_device();
    let mut rows = Vec::new();
    for (seed, (name, conv)) in convs.into_iter().enumerate() {
        let row = table
            .layers
            .iter()
            .find(|row| row.name == name)
            .ok_or_else(|| anyhow!("{name} is not in the layer table"))?;
        let [channels_out, channels_in, kernel, _, _] = conv.weight.dims();
        let [_, x, y, z] = row.output_shape;
        let padding = (kernel - 1) / 2;
        let input = random_tensor([1, channels_in, x, y, z], 2 * seed as u64);
        let output_grad = random_tensor([1, channels_out, x, y, z], 2 * seed as u64 + 1);
        let plain = conv.valid();
        let weight = plain.weight.val();
        let x_plain = Tensor::<5>::from_data(input.clone(), &plain_device);
        let grad_plain = Tensor::<5>::from_data(output_grad.clone(), &plain_device);
        let label = |pass: &str| format!("{name} {pass}");
        let ours = !args.burn_conv && is_same_3x3x3(conv);
        let forward_s = median(&timed_labelled(
            &label("forward"),
            args.warmup,
            args.iters,
            || {
                conv3d_layer(&plain, x_plain.clone())
                    .sum()
                    .into_scalar::<f32>();
                Ok(())
            },
        )?);
        let input_grad_s = median(&timed_labelled(
            &label("input grad"),
            args.warmup,
            args.iters,
            || {
                let grad = if ours {
                    same_conv3d_input_grad(x_plain.clone(), weight.clone(), grad_plain.clone())
                } else {
                    conv_input_grad(grad_plain.clone(), weight.clone(), padding)
                };
                grad.sum().into_scalar::<f32>();
                Ok(())
            },
        )?);
        let weight_grad_s = median(&timed_labelled(
            &label("weight grad"),
            args.warmup,
            args.iters,
            || {
                let grad = if ours {
                    same_conv3d_weight_grad(x_plain.clone(), weight.clone(), grad_plain.clone())
                } else {
                    conv_weight_grad(x_plain.clone(), grad_plain.clone(), padding)
                };
                grad.sum().into_scalar::<f32>();
                Ok(())
            },
        )?);
        let x_tracked = Tensor::<5>::from_data(input, &autodiff_device).require_grad();
        let grad_tracked = Tensor::<5>::from_data(output_grad, &autodiff_device);
        let autodiff_forward_backward_s = median(&timed_labelled(
            &label("autodiff fwd+bwd"),
            args.warmup,
            args.iters,
            || {
                let output = conv3d_layer(conv, x_tracked.clone());
                let grads = (output * grad_tracked.clone()).sum().backward();
                let input_grad = x_tracked
                    .grad(&grads)
                    .ok_or_else(|| anyhow!("no input gradient"))?;
                input_grad.sum().into_scalar::<f32>();
                Ok(())
            },
        )?);
        rows.push(LayerResult {
            name,
            input: [channels_in, x, y, z],
            output: row.output_shape,
            kernel,
            gflop: row.gflop,
            forward_s,
            input_grad_s,
            weight_grad_s,
            autodiff_forward_backward_s,
        });
    }
    Ok(rows)
}

/// Input gradient of a stride-1 convolution as burn's generic conv3d backward computes it
/// (burn-backend modules/conv.rs `conv3d_x_backward`): a transposed convolution.
fn conv_input_grad(output_grad: Tensor<5>, weight: Tensor<5>, padding: usize) -> Tensor<5> {
    let options = ConvTransposeOptions::new([1; 3], [padding; 3], [0; 3], [1; 3], 1);
    conv_transpose3d(output_grad, weight, None, options)
}

/// Weight gradient of a stride-1 convolution as burn's generic backward computes it
/// (`conv3d_weight_grad_no_groups`): a convolution of the input by the output gradient with batch
/// and channel axes swapped.
fn conv_weight_grad(input: Tensor<5>, output_grad: Tensor<5>, padding: usize) -> Tensor<5> {
    let options = ConvOptions::new([1; 3], [padding; 3], [1; 3], 1);
    conv3d(
        input.swap_dims(0, 1),
        output_grad.swap_dims(0, 1),
        None,
        options,
    )
    .swap_dims(0, 1)
}

/// Runs PyTorch on the same work as `part`, in its own process (so its peak memory is its own).
#[allow(clippy::too_many_arguments)]
fn run_torch(
    python: &Path,
    part: Part,
    size: [usize; 3],
    volume: [usize; 3],
    threads: usize,
    gflop: f64,
    args: &Args,
) -> Result<TorchResult> {
    let shape = |s: [usize; 3]| format!("{}x{}x{}", s[0], s[1], s[2]);
    let common = [
        "--threads".to_string(),
        threads.to_string(),
        "--size".into(),
        shape(size),
    ];
    let (script, extra, key): (&Path, Vec<String>, &str) = match part {
        Part::Forward | Part::Train => (
            &args.torch_reference,
            vec![
                "--device".into(),
                "cpu".into(),
                "--batch".into(),
                "1".into(),
                "--iters".into(),
                args.iters.to_string(),
                "--warmup".into(),
                args.warmup.to_string(),
                "--mode".into(),
                if part == Part::Forward {
                    "infer".into()
                } else {
                    "train".into()
                },
            ],
            if part == Part::Forward {
                "infer"
            } else {
                "train"
            },
        ),
        Part::Seed | Part::Sliding => (
            &args.torch_scan,
            vec![
                "--reference".into(),
                args.torch_reference.display().to_string(),
                "--volume".into(),
                shape(volume),
                "--tiling".into(),
                if part == Part::Seed {
                    "seed".into()
                } else {
                    "sliding".into()
                },
                "--overlap".into(),
                args.overlap.to_string(),
                "--batch".into(),
                args.tile_batch.to_string(),
                "--iters".into(),
                args.scan_iters.to_string(),
            ],
            "scan",
        ),
    };
    // torch_unet3d.py prints no memory figure on CPU: run it under a wrapper that adds one.
    const WITH_PEAK_MEMORY: &str = "import json, resource, runpy, sys\n\
        sys.argv = sys.argv[1:]\n\
        runpy.run_path(sys.argv[0], run_name='__main__')\n\
        print(json.dumps({'peak_rss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)\n";
    eprintln!(
        "[bench] PyTorch {part:?}: {} {}",
        python.display(),
        script.display()
    );
    let load_before = load_average();
    let output = Command::new(python)
        .arg("-c")
        .arg(WITH_PEAK_MEMORY)
        .arg(script)
        .args(&common)
        .args(&extra)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "{} {} failed ({})",
            python.display(),
            script.display(),
            output.status
        );
    }
    let mut merged = serde_json::Map::new();
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
    {
        if let Value::Object(fields) =
            serde_json::from_str(line).with_context(|| format!("unreadable output line: {line}"))?
        {
            merged.extend(fields);
        }
    }
    let raw = Value::Object(merged);
    let median_s = raw[key]["s_per_iter_median"]
        .as_f64()
        .ok_or_else(|| anyhow!("no {key}.s_per_iter_median in the output: {raw}"))?;
    let peak_rss_gib = raw["peak_rss_kib"]
        .as_f64()
        .map(|kib| kib / (1024.0 * 1024.0));
    Ok(TorchResult {
        median_s,
        gflop_per_s: gflop / median_s,
        peak_rss_gib,
        load_before,
        load_after: load_average(),
        raw,
    })
}

fn print_parts(header: &Value, results: &[PartResult]) {
    println!(
        "seed U-Net ({} params), patch 4x{}, {} thread(s), {} convolution, load {} at start",
        header["params"],
        dims(&header["size"]),
        header["threads"],
        header["convolution"].as_str().unwrap_or("?"),
        header["load_at_start"]
    );
    let torch = results.iter().any(|r| r.torch.is_some());
    print!(
        "{:<24} {:>10} {:>8} {:>9} {:>11}",
        "part", "seconds", "GFLOP/s", "peak GiB", "load"
    );
    if torch {
        print!(
            " {:>10} {:>8} {:>9} {:>11} {:>16}",
            "PyTorch s", "GFLOP/s", "peak GiB", "load", "brainseg/PyTorch"
        );
    }
    println!();
    for r in results {
        let what = match (r.part, r.tiles) {
            (part, Some(tiles)) => format!("{part:?} scan ({tiles} tiles)").to_lowercase(),
            (part, None) => format!("{part:?} per patch").to_lowercase(),
        };
        let load = format!(
            "{}-{}",
            one_decimal(r.load_before),
            one_decimal(r.load_after)
        );
        print!(
            "{what:<24} {:>10.3} {:>8.1} {:>9} {load:>11}",
            r.median_s,
            r.gflop_per_s,
            two_decimals(r.peak_rss_gib)
        );
        if let (Some(t), Some(ratio)) = (&r.torch, r.ratio) {
            let load = format!(
                "{}-{}",
                one_decimal(t.load_before),
                one_decimal(t.load_after)
            );
            print!(
                " {:>10.3} {:>8.1} {:>9} {load:>11} {ratio:>16.2}",
                t.median_s,
                t.gflop_per_s,
                two_decimals(t.peak_rss_gib)
            );
        }
        println!();
    }
    println!("load at end {}", one_decimal(load_average()));
}

fn print_layers(header: &Value, layers: &[LayerResult]) {
    println!(
        "seed U-Net convolutions alone, patch 4x{}, {} thread(s), {} convolution, load {} at start; GFLOP/s in brackets",
        dims(&header["size"]), header["threads"], header["convolution"].as_str().unwrap_or("?"), header["load_at_start"]
    );
    println!(
        "{:<20} {:>16} {:>4} {:>8} {:>16} {:>16} {:>16} {:>18}",
        "layer",
        "in -> out C",
        "k",
        "GFLOP",
        "forward s",
        "input grad s",
        "weight grad s",
        "autodiff f+b s"
    );
    let rate = |gflop: f64, s: f64| format!("{s:.3} [{:.0}]", gflop / s);
    for l in layers {
        println!(
            "{:<20} {:>16} {:>4} {:>8.2} {:>16} {:>16} {:>16} {:>18}",
            l.name,
            format!("{} -> {}", l.input[0], l.output[0]),
            l.kernel,
            l.gflop,
            rate(l.gflop, l.forward_s),
            rate(l.gflop, l.input_grad_s),
            rate(l.gflop, l.weight_grad_s),
            rate(3.0 * l.gflop, l.autodiff_forward_backward_s),
        );
    }
    let total = |f: fn(&LayerResult) -> f64| layers.iter().map(f).sum::<f64>();
    let gflop = total(|l| l.gflop);
    println!(
        "{:<20} {:>16} {:>4} {:>8.2} {:>16} {:>16} {:>16} {:>18}",
        "total",
        "",
        "",
        gflop,
        rate(gflop, total(|l| l.forward_s)),
        rate(gflop, total(|l| l.input_grad_s)),
        rate(gflop, total(|l| l.weight_grad_s)),
        rate(3.0 * gflop, total(|l| l.autodiff_forward_backward_s)),
    );
    println!(
        "(the first layer's input gradient is not needed in training; load at end {})",
        one_decimal(load_average())
    );
}

fn dims(value: &Value) -> String {
    value
        .as_array()
        .map(|v| {
            v.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        })
        .unwrap_or_default()
}

fn one_decimal(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "?".into())
}

fn two_decimals(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "?".into())
}

fn timed(
    part: Part,
    warmup: usize,
    iters: usize,
    step: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    timed_labelled(&format!("{part:?}").to_lowercase(), warmup, iters, step)
}

/// Runs `step` `warmup + iters` times and returns the seconds of the last `iters`; progress on stderr.
fn timed_labelled(
    what: &str,
    warmup: usize,
    iters: usize,
    mut step: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    let mut seconds = Vec::with_capacity(iters);
    for iteration in 0..warmup + iters {
        let started = Instant::now();
        step()?;
        let elapsed = started.elapsed().as_secs_f64();
        let kind = if iteration < warmup {
            "warm-up"
        } else {
            "timed"
        };
        eprintln!("[bench] {what} {kind} {iteration}: {elapsed:.3}s");
        if iteration >= warmup {
            seconds.push(elapsed);
        }
    }
    Ok(seconds)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// A `[B, C, X, Y, Z]` image uniform in [-1, 1) and a `[B, classes, X, Y, Z]` 0/1 target (p = 0.5).
fn random_patch(shape: [usize; 5], classes: usize, seed: u64) -> (TensorData, TensorData) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let target_shape = [shape[0], classes, shape[2], shape[3], shape[4]];
    let targets: Vec<f32> = (0..target_shape.iter().product::<usize>())
        .map(|_| if rng.random_bool(0.5) { 1.0 } else { 0.0 })
        .collect();
    (
        random_tensor(shape, seed + 1),
        TensorData::new(targets, target_shape),
    )
}

/// Values uniform in [-1, 1).
fn random_tensor(shape: [usize; 5], seed: u64) -> TensorData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    TensorData::new(
        (0..shape.iter().product::<usize>())
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect(),
        shape,
    )
}

/// A `(C, X, Y, Z)` scan of intensities uniform in [0, 1000): the tiles standardise it as real scans.
fn random_volume(shape: [usize; 4], seed: u64) -> Array4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array4::from_shape_simple_fn(shape, || rng.random_range(0.0..1000.0))
}

/// Threads of rayon's global pool as it will start: RAYON_NUM_THREADS, else all cores.
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

fn avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The 1-minute load average (Linux).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resets VmHWM to the current resident size (Linux 4.0+); false where that is not possible.
fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_memory_gib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainseg_model::burn::module::Param;
    use brainseg_model::burn::nn::PaddingConfig3d;

    #[test]
    fn whole_scan_tile_counts_are_the_issues() {
        // 240x240x155 in 160x160x16 tiles. Seed grid: x, y in {0, 160}, z in {0, 16, ..., 144}:
        // 2 * 2 * 10. Sliding, overlap 0.5: x, y ceil(80 / 80) + 1 = 2 starts, z ceil(139 / 8) + 1 = 19.
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: Args,
        }
        let args = <Command as clap::Parser>::try_parse_from(["bench"])
            .unwrap()
            .args;
        assert_eq!(
            tile_count(
                [240, 240, 155],
                &scan_config(Part::Seed, [160, 160, 16], &args)
            ),
            40
        );
        assert_eq!(
            tile_count(
                [240, 240, 155],
                &scan_config(Part::Sliding, [160, 160, 16], &args)
            ),
            76
        );
    }

    #[test]
    fn median_is_the_upper_middle_as_in_torch_unet3d() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[1.0, 4.0]), 4.0);
    }

    /// The per-layer backward timings must time what autodiff computes: same gradients, on odd
    /// sizes, for a 3x3x3 and a 1x1x1 kernel.
    #[test]
    fn layer_gradients_match_autodiff() {
        let device = brainseg_model::cpu_autodiff_device();
        for (kernel, [channels_in, channels_out], size) in
            [(3, [3, 4], [5, 4, 3]), (1, [4, 2], [3, 2, 5])]
        {
            let shape = |c: usize| [1, c, size[0], size[1], size[2]];
            let conv = Conv3d {
                weight: Param::from_data(
                    random_tensor([channels_out, channels_in, kernel, kernel, kernel], 1),
                    &device,
                ),
                bias: Some(Param::from_data(
                    TensorData::new(vec![0.5f32; channels_out], [channels_out]),
                    &device,
                )),
                stride: [1; 3],
                kernel_size: [kernel; 3],
                dilation: [1; 3],
                groups: 1,
                padding: PaddingConfig3d::Same,
            };
            let input = Tensor::<5>::from_data(random_tensor(shape(channels_in), 2), &device)
                .require_grad();
            let output_grad =
                Tensor::<5>::from_data(random_tensor(shape(channels_out), 3), &device);
            let grads = (conv.forward(input.clone()) * output_grad.clone())
                .sum()
                .backward();
            let expected_input = input.grad(&grads).unwrap();
            let expected_weight = conv.weight.val().grad(&grads).unwrap();

            let plain = |t: Tensor<5>| t.inner();
            let padding = (kernel - 1) / 2;
            let input_grad = conv_input_grad(
                plain(output_grad.clone()),
                conv.weight.val().inner(),
                padding,
            );
            let weight_grad = conv_weight_grad(plain(input.clone()), plain(output_grad), padding);
            for (got, expected) in [(input_grad, expected_input), (weight_grad, expected_weight)] {
                assert_eq!(got.dims(), expected.dims());
                let got = got.into_data().try_to_vec::<f32>().unwrap();
                let expected = expected.into_data().try_to_vec::<f32>().unwrap();
                let largest = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(largest > 0.1, "a gradient worth comparing");
                for (g, e) in got.iter().zip(&expected) {
                    assert!((g - e).abs() <= 1e-5 * largest, "{g} vs {e}");
                }
            }
        }
    }
}
