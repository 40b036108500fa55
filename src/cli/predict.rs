//! `brainseg predict`: whole scans in, label maps (and optionally probability maps) out.
use super::progress;
use crate::cli::model_io::{load_model, ModelPredictor};
use anyhow::{bail, Context, Result};
use brainseg_infer::{decode_labels, predict_probabilities, remove_small_components, Tiling};
use brainseg_volume::{write_label, write_probabilities, Dataset, LabelNumbering};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Labels {
    /// 0 background, 1 edema, 2 non-enhancing tumour, 3 enhancing tumour (MSD Task01).
    Msd,
    /// 0 background, 1 necrotic/non-enhancing core, 2 edema, 4 enhancing tumour (BraTS).
    Brats,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TilingArg {
    /// The notebook's grid of non-overlapping tiles (fast).
    Seed,
    /// Overlapping sliding window with Gaussian weighting (nnU-Net, MONAI; more accurate).
    Sliding,
}

#[derive(clap::Args)]
pub struct Args {
    /// A BraTS case folder, a 4-D NIfTI (FLAIR, T1w, T1Gd, T2w), or a dataset folder (MSD or raw BraTS).
    #[arg(short, long)]
    pub input: PathBuf,
    /// Output folder: <case>.nii.gz label maps (and <case>_probabilities.nii.gz with --probabilities).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Model weights (.safetensors from `brainseg train`); default: the bundled model trained on BraTS.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// How the scan is tiled.
    #[arg(long, value_enum, default_value = "sliding")]
    pub tiling: TilingArg,
    /// Fraction of a tile shared with its neighbour (sliding tiling).
    #[arg(long, default_value_t = 0.5)]
    pub overlap: f64,
    /// Mirroring test-time augmentation: average the 8 flips of the 3 axes (8x slower).
    #[arg(long)]
    pub tta: bool,
    /// A voxel belongs to a class when its probability is above this.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Label numbering of the written maps.
    #[arg(long, value_enum, default_value = "msd")]
    pub labels: Labels,
    /// Also write the per-channel probability maps (f32, 4-D).
    #[arg(long)]
    pub probabilities: bool,
    /// Remove connected components smaller than this many voxels (per class or region; 0 keeps all).
    #[arg(long, default_value_t = 0)]
    pub min_component: usize,
    /// Tiles per model call.
    #[arg(long, default_value_t = 2)]
    pub batch_size: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: super::Backend,
}

pub fn run(args: Args) -> Result<()> {
    if !(0.0..1.0).contains(&args.threshold) {
        bail!("--threshold {} must be in [0, 1)", args.threshold);
    }
    let device = super::device(args.backend)?;
    let loaded = load_model(args.model.as_deref(), &device)?;
    let dataset = Dataset::open(&args.input)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the output folder", args.out.display()))?;
    let mut config = loaded.inference.clone();
    config.tiling = match args.tiling {
        TilingArg::Seed => Tiling::Seed,
        TilingArg::Sliding => Tiling::Sliding,
    };
    config.overlap = args.overlap;
    config.mirror = args.tta;
    config.batch_size = args.batch_size;
    config.validate()?;

    eprintln!(
        "model: {} ({}), tiles {:?}, {:?} tiling",
        loaded.name,
        loaded.describe(),
        config.tile,
        config.tiling
    );
    let cases = progress::bar(dataset.cases.len() as u64, "cases");
    let mut failures = vec![];
    let mut rows = vec![];
    for case_ref in &dataset.cases {
        cases.set_message(case_ref.id.clone());
        let started = Instant::now();
        let outcome = (|| -> Result<(usize, f64)> {
            let case = case_ref.load()?;
            let (labels, probs) = segment(
                &case,
                &loaded,
                &config,
                args.threshold,
                args.min_component,
                &device,
            )?;
            let tumour = labels.iter().filter(|&&v| v > 0).count();
            let numbering = match args.labels {
                Labels::Msd => LabelNumbering::Msd,
                Labels::Brats => LabelNumbering::Brats,
            };
            let on_disk = labels.mapv(|v| numbering.from_msd(v));
            write_label(
                &args.out.join(format!("{}.nii.gz", case.id)),
                &on_disk,
                &case.geometry,
            )?;
            if args.probabilities {
                write_probabilities(
                    &args.out.join(format!("{}_probabilities.nii.gz", case.id)),
                    &probs,
                    &case.geometry,
                )?;
            }
            let [sx, sy, sz] = case.geometry.spacing();
            Ok((tumour, tumour as f64 * (sx * sy * sz) as f64 / 1000.0))
        })();
        match outcome {
            Ok((voxels, ml)) => rows.push((
                case_ref.id.clone(),
                voxels,
                ml,
                started.elapsed().as_secs_f64(),
            )),
            Err(error) => {
                cases.suspend(|| eprintln!("error: case {}: {error:#}", case_ref.id));
                failures.push(case_ref.id.clone());
            }
        }
        cases.inc(1);
    }
    cases.finish_and_clear();
    println!(
        "{:<28} {:>14} {:>12} {:>10}",
        "case", "tumour voxels", "volume (ml)", "seconds"
    );
    for (id, voxels, ml, seconds) in &rows {
        println!("{id:<28} {voxels:>14} {ml:>12.2} {seconds:>10.1}");
    }
    println!(
        "wrote {} label map(s) to {} ({} numbering); peak memory {}",
        rows.len(),
        args.out.display(),
        match args.labels {
            Labels::Msd => "MSD",
            Labels::Brats => "BraTS",
        },
        super::peak_memory()
    );
    if !failures.is_empty() {
        bail!(
            "{} of {} case(s) failed: {}",
            failures.len(),
            dataset.cases.len(),
            failures.join(", ")
        );
    }
    Ok(())
}

/// Segment one case: probabilities by tiling, then labels (MSD numbering), small components removed.
pub fn segment(
    case: &brainseg_volume::Case,
    loaded: &super::model_io::LoadedModel,
    config: &brainseg_infer::InferenceConfig,
    threshold: f32,
    min_component: usize,
    device: &brainseg_model::Device,
) -> Result<(ndarray::Array3<u8>, ndarray::Array4<f32>)> {
    let channels = case.image.shape()[0];
    if channels != loaded.model.config().in_channels {
        bail!(
            "case {}: {channels} channels, the model expects {}",
            case.id,
            loaded.model.config().in_channels
        );
    }
    let mut predictor = ModelPredictor {
        model: &loaded.model,
        device,
    };
    let tiles = progress::bar(0, "tiles");
    let probs = predict_probabilities(&mut predictor, case.image.view(), config, |done, total| {
        tiles.set_length(total as u64);
        tiles.set_position(done as u64);
    })?;
    tiles.finish_and_clear();
    let mut labels = decode_labels(probs.view(), loaded.targets, threshold)?;
    if min_component > 0 {
        remove_small_components(&mut labels, min_component, loaded.targets);
    }
    Ok((labels, probs))
}
