//! `brainseg predict`: whole scans in, label maps (and optionally probability maps) out.
use super::progress::Reporter;
use super::Compute;
use anyhow::{bail, Result};
use brainseg_core::LabelNumbering;
use brainseg_infer::Tiling;
use brainseg_model::conv::Precision;
use brainseg_pipeline::cohort::Part;
use brainseg_pipeline::input::open_cases;
use brainseg_pipeline::layout::PredictionLayout;
use brainseg_pipeline::model::LoadedModel;
use brainseg_pipeline::segment::{check_options, predict_part};
use brainseg_pipeline::segment::{LabelOptions, PredictOptions, RunOptions};
use brainseg_pipeline::{device, Progress};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A BraTS case folder, a 4-D NIfTI (FLAIR, T1w, T1Gd, T2w), a dataset folder (MSD or raw
    /// BraTS), or a DICOM study folder (its four series resampled onto the T1Gd series' grid).
    #[arg(short, long)]
    pub input: PathBuf,
    /// The DICOM series for each modality by series number, when their descriptions do not say
    /// (`brainseg info <study>` lists them): flair=N,t1=N,t1ce=N,t2=N.
    #[arg(long, value_parser = brainseg_pipeline::input::parse_series)]
    pub series: Option<[i64; 4]>,
    /// Output folder: <case>.nii.gz label maps (and <case>_probabilities.nii.gz with --probabilities).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Model file (.safetensors from `brainseg train`); given several times, or as a folder of
    /// model files or fold runs, an ensemble averaging their probabilities [default: the bundled
    /// model trained on BraTS].
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// How the scan is tiled.
    #[arg(long, value_enum, default_value_t)]
    pub tiling: Tiling,
    /// Fraction of a tile shared with its neighbour (sliding tiling).
    #[arg(long, default_value_t = brainseg_infer::InferenceConfig::default().overlap)]
    pub overlap: f64,
    /// Mirroring test-time augmentation: average the 8 flips of the 3 axes (8x slower).
    #[arg(long)]
    pub tta: bool,
    /// A voxel belongs to a class (or region) when its probability is above this.
    #[arg(long, default_value_t = LabelOptions::default().threshold)]
    pub threshold: f32,
    /// Label numbering of the written maps.
    #[arg(long, value_enum, default_value_t = LabelNumbering::Msd)]
    pub labels: LabelNumbering,
    /// Also write the probability maps (f32, 4-D; channels in the model's output order: WT, TC, ET
    /// for region models, edema, non-enhancing, enhancing for per-class models).
    #[arg(long)]
    pub probabilities: bool,
    /// Remove connected components smaller than this many voxels (per class or region; 0 keeps all).
    #[arg(long, default_value_t = LabelOptions::default().min_component)]
    pub min_component: usize,
    /// Enhancing tumour smaller than this many voxels becomes necrosis (nnU-Net's BraTS
    /// post-processing) [default: the model's own, chosen by cross-validation; 0 = off].
    #[arg(long)]
    pub min_enhancing: Option<usize>,
    /// Keep only the largest connected tumour (true/false) [default: the model's own, by CV]
    #[arg(long, value_name = "BOOL")]
    pub keep_largest: Option<bool>,
    /// Tiles per model call.
    #[arg(long, default_value_t = brainseg_infer::InferenceConfig::default().batch_size)]
    pub batch_size: usize,
    /// Only part K of N (1-based) of the cases, split by sorted case id (case i goes to part
    /// (i mod N) + 1), for array jobs: cases done before are skipped, the part records into
    /// predictions.part-K-of-N.json and writes manifest.part-K-of-N.jsonl (`brainseg cohort status`).
    #[arg(long, value_name = "K/N", value_parser = parse_part)]
    pub part: Option<Part>,
    /// With --part: segment the part's cases again even when they are done.
    #[arg(long, requires = "part")]
    pub overwrite: bool,
    /// What the CPU convolutions multiply in: auto is bf16 where the CPU has AVX512_BF16 (about
    /// 0.5% off f32 per layer; labels agree on >99.9% of voxels), f32 the exact path.
    #[arg(long, value_enum, default_value_t)]
    pub precision: Precision,
    #[command(flatten)]
    pub compute: Compute,
}

fn parse_part(text: &str) -> Result<Part, String> {
    text.parse()
        .map_err(|e: brainseg_pipeline::Error| e.to_string())
}

pub fn run(args: Args) -> Result<()> {
    let labels = LabelOptions {
        threshold: args.threshold,
        min_component: args.min_component,
    };
    labels.validate()?;
    let device = device(args.compute.apply())?;
    let precision = args.precision.apply().map_err(anyhow::Error::msg)?;
    let model = LoadedModel::load_ensemble(&args.model, &device)?;
    let cases = open_cases(&args.input, args.series)?;
    let mut inference = model.inference.clone();
    inference.tiling = args.tiling;
    inference.overlap = args.overlap;
    inference.mirror = args.tta;
    inference.batch_size = args.batch_size;
    inference.min_enhancing_voxels = args.min_enhancing.unwrap_or(inference.min_enhancing_voxels);
    inference.keep_largest_tumour = args.keep_largest.unwrap_or(inference.keep_largest_tumour);
    let options = PredictOptions {
        inference,
        labels,
        numbering: args.labels,
        probabilities: args.probabilities,
    };
    let out = PredictionLayout::new(&args.out);
    check_options(&cases, &options, &out)?;
    let mut progress = Reporter::new();
    let [x, y, z] = options.inference.tile;
    let tiling = options.inference.tiling.description();
    progress.stage(&format!(
        "model: {} ({}); {x}x{y}x{z} tiles in {tiling}; {precision} products",
        model.name,
        model.describe(),
    ));
    let run = RunOptions {
        part: args.part,
        overwrite: args.overwrite,
    };
    let outcome = predict_part(&cases, &model, &options, &run, &out, &device, &mut progress)?;
    drop(progress);
    println!(
        "{:<28} {:>14} {:>12} {:>10}",
        "case", "tumour voxels", "volume (ml)", "seconds"
    );
    for case in &outcome.written {
        println!(
            "{:<28} {:>14} {:>12.2} {:>10.1}",
            case.case, case.tumour_voxels, case.tumour_ml, case.seconds
        );
    }
    println!(
        "wrote {} label map(s) to {} ({} numbering); peak memory {}",
        outcome.written.len(),
        args.out.display(),
        args.labels.name(),
        brainseg_pipeline::bench::timing::peak_memory_gib()
            .map_or("unknown".into(), |g| format!("{g:.2} GiB"))
    );
    if let Some(part) = args.part {
        println!(
            "part {part}: {} case(s), {} skipped (done before)",
            outcome.written.len() + outcome.skipped.len() + outcome.failed.len(),
            outcome.skipped.len()
        );
    }
    if !outcome.failed.is_empty() {
        let ids: Vec<&str> = outcome.failed.iter().map(|(id, _)| id.as_str()).collect();
        bail!(
            "{} of {} case(s) failed: {}",
            ids.len(),
            outcome.written.len() + outcome.skipped.len() + ids.len(),
            ids.join(", ")
        );
    }
    Ok(())
}
