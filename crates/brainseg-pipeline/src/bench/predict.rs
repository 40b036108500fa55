//! `bench --parts predict`: a real case segmented as `brainseg predict` does by default (the
//! bundled model or `--model`, its tile, standardisation and sliding window, cropped to the head),
//! beside PyTorch running the same weights on the same input with the same crop,
//! standardisation and tiles (`scripts/torch_whole_scan.py --case-raw`).
//!
//! Two brainseg times: the whole `predict` of the case (reading the NIfTI files, tiling, label
//! decoding, writing the label map, as the command runs it) and the probabilities alone (crop,
//! standardisation, tiles), which is the work PyTorch does and what the ratio compares. Both
//! sides' probabilities are compared voxel by voxel, so the ratio is known to be like for like.
use super::timing::{load_average, peak_memory_gib, reset_peak_memory, timed};
use super::{torch, BenchConfig, Part, PartResult};
use crate::input::open_cases;
use crate::layout::PredictionLayout;
use crate::model::{EnsemblePredictor, LoadedModel};
use crate::segment::{predict_cases, LabelOptions, PredictOptions};
use crate::{Error, Progress, Result};
use brainseg_core::LabelNumbering;
use brainseg_infer::predict_probabilities;
use ndarray::Array4;
use serde::Serialize;
use std::path::Path;

/// How brainseg's and PyTorch's probabilities of the same case compare.
#[derive(Debug, Serialize)]
pub struct Agreement {
    pub max_abs_difference: f64,
    /// Voxels where some channel falls on the other side of 0.5.
    pub voxels_differing: usize,
    pub voxels: usize,
}

/// The predict part's own figures, beside the common ones of [`PartResult`].
#[derive(Debug, Serialize)]
pub struct PredictFigures {
    /// The case and the model.
    pub case: String,
    pub model: String,
    /// Seconds of the whole `predict` (read, tile, decode, write), median of the timed runs.
    pub command_s: f64,
    /// Peak memory of the process over the whole `predict`.
    pub command_peak_rss_gib: Option<f64>,
    pub agreement: Option<Agreement>,
}

pub(super) fn time_predict(
    config: &BenchConfig,
    threads: usize,
    progress: &mut dyn Progress,
) -> Result<PartResult> {
    let device = brainseg_model::cpu_device();
    let model = LoadedModel::load(config.model.as_deref(), &device)?;
    let sources = open_cases(&config.case, None)?;
    let [source] = sources.as_slice() else {
        return Err(Error::invalid(format!(
            "{}: --case must be one case, found {}",
            config.case.display(),
            sources.len()
        )));
    };
    // As `predict`: the batch size is the command's (`--tile-batch`), not the model file's.
    let mut inference = model.inference.clone();
    inference.batch_size = config.tile_batch;
    let options = PredictOptions {
        inference,
        labels: LabelOptions::default(),
        numbering: LabelNumbering::Brats,
        probabilities: false,
    };
    let work = tempfile::tempdir().map_err(|e| Error::invalid(format!("temporary folder: {e}")))?;
    let out = PredictionLayout::new(work.path().join("predictions"));

    // The whole command, as a user runs it.
    let reset = reset_peak_memory();
    let command = timed(
        progress,
        "[bench] predict command",
        0,
        config.scan_iters,
        || {
            let outcome = predict_cases(
                sources.as_slice(),
                &model,
                &options,
                &out,
                &device,
                &mut crate::Silent,
            )?;
            match outcome.failed.into_iter().next() {
                Some((_, error)) => Err(error),
                None => Ok(String::new()),
            }
        },
    )?;
    let command_peak_rss_gib = peak_memory_gib().filter(|_| reset);

    // The probabilities alone: what PyTorch does too.
    let case = source.load()?;
    let load_before = load_average();
    let mut tiles = 0;
    let mut probabilities = Array4::zeros((0, 0, 0, 0));
    let timings = timed(
        progress,
        "[bench] predict tiles",
        0,
        config.scan_iters,
        || {
            let mut predictor = EnsemblePredictor {
                networks: &model.networks,
                device: &device,
            };
            probabilities = predict_probabilities(
                &mut predictor,
                case.image.view(),
                &options.inference,
                |_, total| tiles = total,
            )?;
            Ok(format!("{tiles} tiles"))
        },
    )?;
    let load_after = load_average();
    let network = model.config();
    let [tx, ty, tz] = options.inference.tile;
    let tile_gflop = brainseg_model::summary(network, [network.in_channels, tx, ty, tz])
        .map_err(|e| Error::invalid(format!("the model's tile: {e}")))?
        .total_gflop;
    let gflop = tiles as f64 * tile_gflop * model.networks.len() as f64;
    let median_s = timings.median();

    let (torch, agreement) = match &config.torch {
        Some(python) => {
            let (result, agreement) = torch_beside(
                python,
                &case.image,
                &probabilities,
                &model,
                config,
                threads,
                gflop,
                work.path(),
                progress,
            )?;
            (Some(result), Some(agreement))
        }
        None => (None, None),
    };
    Ok(PartResult {
        part: Part::Predict,
        median_s,
        gflop,
        gflop_per_s: gflop / median_s,
        tiles: Some(tiles),
        peak_rss_gib: command_peak_rss_gib,
        load_before,
        load_after,
        seconds: timings.seconds,
        ratio: torch.as_ref().map(|t| median_s / t.median_s),
        torch,
        predict: Some(PredictFigures {
            case: source.id().to_string(),
            model: model.name.clone(),
            command_s: command.median(),
            command_peak_rss_gib,
            agreement,
        }),
    })
}

/// PyTorch on the same case and weights; its probabilities compared with brainseg's.
#[allow(clippy::too_many_arguments)]
fn torch_beside(
    python: &Path,
    image: &Array4<f32>,
    probabilities: &Array4<f32>,
    model: &LoadedModel,
    config: &BenchConfig,
    threads: usize,
    gflop: f64,
    work: &Path,
    progress: &mut dyn Progress,
) -> Result<(torch::TorchResult, Agreement)> {
    if model.networks.len() != 1 {
        return Err(Error::invalid("PyTorch runs one model, not an ensemble"));
    }
    let weights = match &config.model {
        Some(path) => path.clone(),
        None => {
            let path = work.join("bundled.safetensors");
            crate::model::write_bundled(&path)?;
            path
        }
    };
    let raw = |name: &str| work.join(name);
    let bytes: Vec<u8> = image.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(raw("case.f32"), bytes)
        .map_err(|e| Error::invalid(format!("cannot write the case for PyTorch: {e}")))?;
    let [c, x, y, z] = [0, 1, 2, 3].map(|a| image.shape()[a]);
    let inference = &model.inference;
    let [tx, ty, tz] = inference.tile;
    let arguments = vec![
        format!("--case-raw={}", raw("case.f32").display()),
        format!("--case-shape={c}x{x}x{y}x{z}"),
        format!("--weights={}", weights.display()),
        format!("--probabilities-out={}", raw("torch.f32").display()),
        format!("--size={tx}x{ty}x{tz}"),
        format!("--overlap={}", inference.overlap),
        format!("--batch={}", config.tile_batch),
        format!("--iters={}", config.scan_iters),
        format!("--reference={}", config.torch_reference.display()),
        format!("--threads={threads}"),
    ];
    let result = torch::run_script(
        python,
        &config.torch_scan,
        &arguments,
        "scan",
        gflop,
        progress,
    )?;
    let theirs = std::fs::read(raw("torch.f32"))
        .map_err(|e| Error::invalid(format!("PyTorch wrote no probabilities: {e}")))?;
    let theirs: Vec<f32> = theirs
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((result, agreement(probabilities, &theirs)?))
}

/// Compares `(K, X, Y, Z)` probabilities with another run's, in the same order.
fn agreement(ours: &Array4<f32>, theirs: &[f32]) -> Result<Agreement> {
    let channels = ours.shape()[0];
    let ours = ours.as_standard_layout();
    let ours = ours.as_slice().expect("standard layout");
    if ours.len() != theirs.len() || ours.is_empty() {
        return Err(Error::invalid(format!(
            "PyTorch gave {} probabilities, brainseg {}",
            theirs.len(),
            ours.len()
        )));
    }
    let voxels = ours.len() / channels;
    let max_abs_difference = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    let voxels_differing = (0..voxels)
        .filter(|&v| {
            (0..channels).any(|k| (ours[k * voxels + v] > 0.5) != (theirs[k * voxels + v] > 0.5))
        })
        .count();
    Ok(Agreement {
        max_abs_difference,
        voxels_differing,
        voxels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_counts_voxels_labelled_otherwise() {
        // Two channels over three voxels. Voxel 0: channel 1 crosses 0.5 (0.6 vs 0.4); voxel 1:
        // both sides agree though the values differ by 0.3; voxel 2: identical.
        let ours =
            Array4::from_shape_vec((2, 3, 1, 1), vec![0.1, 0.9, 0.0, 0.6, 0.2, 1.0]).unwrap();
        let theirs = [0.1, 0.6, 0.0, 0.4, 0.2, 1.0];
        let a = agreement(&ours, &theirs).unwrap();
        assert_eq!((a.voxels_differing, a.voxels), (1, 3));
        assert!((a.max_abs_difference - 0.3).abs() < 1e-6);
        assert!(agreement(&ours, &theirs[..5]).is_err());
    }
}
