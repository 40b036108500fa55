//! The parts of `brainseg bench`: one patch forward, one training step, and a whole scan in the
//! seed's tiles or the sliding window, each beside PyTorch's figures when asked.
use super::predict::PredictFigures;
use super::timing::{
    load_average, one_decimal, peak_memory_gib, reset_peak_memory, timed, two_decimals,
};
use super::{random_batch, torch, BenchConfig, BenchHeader, Part, TorchResult, LEARNING_RATE};
use crate::model::ModelPredictor;
use crate::{Progress, Result};
use brainseg_infer::{predict_probabilities, tile_starts, InferenceConfig, Tiling};
use brainseg_model::burn::module::Module;
use brainseg_model::burn::optim::{AdamConfig, GradientsParams};
use brainseg_model::burn::tensor::activation::sigmoid;
use brainseg_model::burn::tensor::Tensor;
use brainseg_model::{loss, ModelSummary, UNet3d};
use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write;

/// One timed part, with PyTorch's figures for the same work when asked.
#[derive(Debug, Serialize)]
pub struct PartResult {
    pub part: Part,
    /// Seconds of each timed iteration.
    pub seconds: Vec<f64>,
    pub median_s: f64,
    /// Convolution GFLOP of one iteration.
    pub gflop: f64,
    pub gflop_per_s: f64,
    /// Tiles per scan (whole-scan parts).
    pub tiles: Option<usize>,
    pub peak_rss_gib: Option<f64>,
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
    pub torch: Option<TorchResult>,
    /// brainseg seconds / PyTorch seconds.
    pub ratio: Option<f64>,
    /// The predict part's own figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predict: Option<PredictFigures>,
}

/// Times each of `config.parts` in turn, PyTorch right after brainseg on the same part (so both
/// see about the same machine load) when `config.torch` names a Python.
pub(super) fn time_parts(
    model: &UNet3d,
    table: &ModelSummary,
    config: &BenchConfig,
    threads: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<PartResult>> {
    let unet = model.config();
    let [x, y, z] = config.size;
    let [vx, vy, vz] = config.volume;
    let (images, targets) = random_batch([1, unet.in_channels, x, y, z], unet.out_classes, 42);
    let image = random_volume([unet.in_channels, vx, vy, vz], 43);
    let autodiff = brainseg_model::cpu_autodiff_device();
    let mut results = Vec::new();
    for &part in &config.parts {
        if part == Part::Predict {
            results.push(super::predict::time_predict(config, threads, progress)?);
            continue;
        }
        let reset = reset_peak_memory();
        let load_before = load_average();
        let label = format!("[bench] {}", part.name());
        let (timings, gflop, tiles) = match part {
            Part::Forward => {
                let plain = model.valid();
                let input = Tensor::<5>::from_data(images.clone(), &brainseg_model::cpu_device());
                let timings = timed(progress, &label, config.warmup, config.iters, || {
                    plain.forward(input.clone())?.sum().into_scalar::<f32>();
                    Ok(String::new())
                })?;
                (timings, table.total_gflop, None)
            }
            Part::Train => {
                // f32 (`train`'s default) unless bf16 is named: auto here is the forward passes' choice.
                let bf16 = brainseg_model::conv::bf16_in_use();
                brainseg_model::conv::use_bf16(
                    config.precision == brainseg_model::conv::Precision::Bf16,
                );
                let input = Tensor::<5>::from_data(images.clone(), &autodiff);
                let target = Tensor::<5>::from_data(targets.clone(), &autodiff);
                let mut optimizer = AdamConfig::new().init();
                let mut current = Some(model.clone());
                let timings = timed(progress, &label, config.warmup, config.iters, || {
                    let network = current.take().expect("put back after each step");
                    let probabilities = sigmoid(network.forward_logits(input.clone())?);
                    let loss =
                        loss::soft_dice_loss(probabilities, target.clone(), loss::SEED_EPSILON);
                    let grads = GradientsParams::from_grads(loss.backward(), &network);
                    current = Some(optimizer.step(LEARNING_RATE, network, grads));
                    Ok(String::new())
                });
                brainseg_model::conv::use_bf16(bf16);
                (timings?, 3.0 * table.total_gflop, None)
            }
            Part::Seed | Part::Sliding | Part::Predict => {
                let inference = scan_config(part, config);
                let tiles = tile_count(config.volume, &inference);
                let plain = model.valid();
                let device = brainseg_model::cpu_device();
                let timings = timed(progress, &label, 0, config.scan_iters, || {
                    let mut predictor = ModelPredictor {
                        model: &plain,
                        device: &device,
                    };
                    predict_probabilities(&mut predictor, image.view(), &inference, |_, _| {})?;
                    Ok(String::new())
                })?;
                (timings, tiles as f64 * table.total_gflop, Some(tiles))
            }
        };
        let median_s = timings.median();
        let peak_rss_gib = peak_memory_gib().filter(|_| reset);
        let load_after = load_average();
        let torch = match &config.torch {
            Some(python) => Some(
                torch::run_torch(python, part, threads, gflop, config, progress)
                    .map_err(|e| e.context(&format!("PyTorch, part {}", part.name())))?,
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
            seconds: timings.seconds,
            ratio: torch.as_ref().map(|t| median_s / t.median_s),
            torch,
            predict: None,
        });
    }
    Ok(results)
}

/// The tiling of a whole-scan part: the patch size as the tile.
fn scan_config(part: Part, config: &BenchConfig) -> InferenceConfig {
    InferenceConfig {
        tile: config.size,
        tiling: if part == Part::Seed {
            Tiling::Notebook
        } else {
            Tiling::Sliding
        },
        overlap: config.overlap,
        batch_size: config.tile_batch,
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

/// A `(C, X, Y, Z)` scan of intensities uniform in [0, 1000): the tiles standardise it as real scans.
fn random_volume(shape: [usize; 4], seed: u64) -> Array4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array4::from_shape_simple_fn(shape, || rng.random_range(0.0..1000.0))
}

/// The parts as a table, PyTorch's columns beside brainseg's when it ran.
pub(super) fn table(
    header: &BenchHeader,
    results: &[PartResult],
    load_at_end: Option<f64>,
) -> String {
    let mut out = String::new();
    let [x, y, z] = header.size;
    let _ = writeln!(out, "CPU: {}", header.cpu.describe());
    // The predict part runs its own model and tiles (named on its own line below).
    let model = if results.iter().all(|r| r.part == Part::Predict) {
        String::new()
    } else {
        format!(
            "seed U-Net ({} params), patch 4x{x}x{y}x{z}, ",
            header.params
        )
    };
    let _ = writeln!(
        out,
        "{model}{} thread(s), {} convolution, {} forward products{}, load {} at start",
        header.threads,
        header.convolution,
        header.precision,
        if results.iter().any(|r| r.part == Part::Train) {
            format!(", {} training products", header.train_precision)
        } else {
            String::new()
        },
        one_decimal(header.load_at_start)
    );
    let torch = results.iter().any(|r| r.torch.is_some());
    let _ = write!(
        out,
        "{:<24} {:>10} {:>8} {:>9} {:>11}",
        "part", "seconds", "GFLOP/s", "peak GiB", "load"
    );
    if torch {
        let _ = write!(
            out,
            " {:>10} {:>8} {:>9} {:>11} {:>16}",
            "PyTorch s", "GFLOP/s", "peak GiB", "load", "brainseg/PyTorch"
        );
    }
    out.push('\n');
    let load = |before, after| format!("{}-{}", one_decimal(before), one_decimal(after));
    for r in results {
        let what = match (r.part, r.tiles) {
            (Part::Predict, Some(tiles)) => format!("predict tiles ({tiles})"),
            (_, Some(tiles)) => format!("{} scan ({tiles} tiles)", r.part.name()),
            (_, None) => format!("{} per patch", r.part.name()),
        };
        let _ = write!(
            out,
            "{what:<24} {:>10.3} {:>8.1} {:>9} {:>11}",
            r.median_s,
            r.gflop_per_s,
            two_decimals(r.peak_rss_gib),
            load(r.load_before, r.load_after)
        );
        if let (Some(t), Some(ratio)) = (&r.torch, r.ratio) {
            let _ = write!(
                out,
                " {:>10.3} {:>8.1} {:>9} {:>11} {ratio:>16.2}",
                t.median_s,
                t.gflop_per_s,
                two_decimals(t.peak_rss_gib),
                load(t.load_before, t.load_after)
            );
        }
        out.push('\n');
        if let Some(p) = &r.predict {
            let _ = writeln!(
                out,
                "predict {} with the {}: whole command (read, tiles, decode, write) {:.3} s, peak {} GiB",
                p.case,
                p.model,
                p.command_s,
                two_decimals(p.command_peak_rss_gib)
            );
            if let Some(a) = &p.agreement {
                let _ = writeln!(
                    out,
                    "PyTorch's probabilities: largest difference {:.2e}; {} of {} voxels labelled otherwise",
                    a.max_abs_difference, a.voxels_differing, a.voxels
                );
            }
        }
    }
    let _ = writeln!(out, "load at end {}", one_decimal(load_at_end));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_scan_tile_counts_are_the_issues() {
        // 240x240x155 in 160x160x16 tiles. Seed grid: x, y in {0, 160}, z in {0, 16, ..., 144}:
        // 2 * 2 * 10. Sliding, overlap 0.5: x, y ceil(80 / 80) + 1 = 2 starts, z ceil(139 / 8) + 1 = 19.
        let config = BenchConfig::default();
        assert_eq!(
            (config.size, config.volume),
            ([160, 160, 16], [240, 240, 155])
        );
        assert_eq!(
            tile_count(config.volume, &scan_config(Part::Seed, &config)),
            40
        );
        assert_eq!(
            tile_count(config.volume, &scan_config(Part::Sliding, &config)),
            76
        );
    }
}
