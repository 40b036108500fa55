//! The whole pipeline on data it makes itself (or on a given dataset), in a few minutes on a CPU:
//! synthetic dataset -> training -> sliding-window prediction of a held-out case -> evaluation ->
//! pictures -> HTML report.
use crate::layout::PredictionLayout;
use crate::model::LoadedModel;
use crate::pictures::{draw_case, PictureOptions};
use crate::progress::Progress;
use crate::report::{viewer_section, ReportOptions};
use crate::segment::{segment_case, LabelOptions};
use crate::{device, Backend, Error, Result};
use brainseg_core::{LabelNumbering, Targets};
use brainseg_infer::{InferenceConfig, Tiling};
use brainseg_metrics::{CaseMetrics, CaseRow, Summary};
use brainseg_model::{Normalisation, UNet3dConfig, Upsampling};
use brainseg_train::{
    train, LossKind, Optimizer, RunLayout, SamplingConfig, Schedule, TrainConfig,
};
use brainseg_transforms::{AugmentationConfig, PatchConfig, Standardization};
use brainseg_visualize::write_atomic;
use brainseg_volume::synthetic::{write_dataset, write_named_dataset, SyntheticConfig};
use brainseg_volume::{write_label, Dataset};
use std::path::{Path, PathBuf};

/// What the demo does. `Default` is the command's default.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Output folder: data/, heldout/, run/, predictions/, report.html.
    pub out: PathBuf,
    /// A dataset to use instead of synthetic cases (the held-out case is its first validation case).
    pub data: Option<PathBuf>,
    /// Synthetic training cases (one more is made and held out).
    pub cases: usize,
    /// Synthetic volume shape.
    pub shape: [usize; 3],
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// Patch (and tile) size; each side divisible by 4.
    pub patch: [usize; 3],
    pub base_filters: usize,
    /// Seed of every random choice: the synthetic cases, the split, the weights, the patches.
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            out: PathBuf::from("brainseg-demo"),
            data: None,
            cases: 8,
            shape: [96, 96, 64],
            epochs: 10,
            steps_per_epoch: 12,
            patch: [64, 64, 32],
            base_filters: 8,
            seed: 0,
        }
    }
}

impl DemoConfig {
    /// The small region-based recipe the demo trains (Dice + BCE, z-scored volumes, foreground
    /// oversampling).
    pub fn train_config(&self, data: &Path) -> TrainConfig {
        let model = UNet3dConfig {
            depth: 3,
            base_filters: self.base_filters,
            upsampling: Upsampling::Nearest,
            normalisation: Normalisation::None,
            targets: Targets::Regions,
            ..UNet3dConfig::default()
        };
        TrainConfig {
            data: data.to_path_buf(),
            model,
            sampling: SamplingConfig {
                patch: PatchConfig {
                    size: self.patch,
                    background_threshold: 0.95,
                    foreground_share: 0.5,
                    targets: Targets::Regions,
                    ..PatchConfig::default()
                },
                standardization: Standardization::ZScoreBrain,
                augmentation: AugmentationConfig::basic(),
                batch_size: 2,
            },
            epochs: self.epochs,
            steps_per_epoch: self.steps_per_epoch,
            valid_patches_per_case: 2,
            learning_rate: 3e-3,
            loss: LossKind::DiceBce,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Constant,
            seed: self.seed,
            train_fraction: 0.8,
            cross_validation: None,
            split_file: None,
            init_weights: None,
            queue_depth: 2,
            precision: brainseg_model::conv::Precision::F32,
        }
    }
}

/// Where the demo put things, and how the held-out case scored.
pub struct DemoOutcome {
    pub data: PathBuf,
    pub run: RunLayout,
    pub heldout: String,
    pub metrics: CaseMetrics,
    pub label_map: PathBuf,
    pub pictures: PathBuf,
    pub report: PathBuf,
}

pub fn run(config: &DemoConfig, progress: &mut dyn Progress) -> Result<DemoOutcome> {
    let out = &config.out;
    let run = RunLayout::new(out.join("run"));
    if run.config().exists() {
        return Err(Error::invalid(format!(
            "{}: holds an earlier demo; remove it or choose another --out",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| brainseg_volume::Error::at(out, format!("cannot create: {e}")))?;

    // 1. Data: synthetic cases written as a real MSD dataset, plus one held-out case.
    let (data, heldout_data, heldout) = match &config.data {
        Some(data) => {
            let split = Dataset::open(data)?.split(config.seed, 0.8);
            let id = split.valid.first().cloned().ok_or_else(|| {
                Error::invalid(format!(
                    "{}: the dataset needs at least 2 cases",
                    data.display()
                ))
            })?;
            (data.clone(), data.clone(), id)
        }
        None => {
            let synthetic = SyntheticConfig {
                shape: config.shape,
                ..SyntheticConfig::default()
            };
            let [x, y, z] = config.shape;
            progress.stage(&format!(
                "[1/5] making {} synthetic cases of {x}x{y}x{z} in {}",
                config.cases + 1,
                out.join("data").display()
            ));
            write_dataset(&out.join("data"), config.cases, &synthetic, config.seed)?;
            let heldout = write_named_dataset(
                &out.join("heldout"),
                "heldout",
                1,
                &synthetic,
                config.seed.wrapping_add(1_000_003),
            )?;
            (out.join("data"), out.join("heldout"), heldout[0].clone())
        }
    };

    // 2. Train a small region-based model.
    progress.stage(&format!(
        "[2/5] training a small U-Net on the CPU ({} epochs x {} steps)",
        config.epochs, config.steps_per_epoch
    ));
    let training_device = crate::training_device(Backend::Cpu)?;
    train(
        Some(config.train_config(&data)),
        run.path(),
        &training_device,
        |event| progress.training(&event),
    )
    .map_err(|e| Error::Training(format!("{e:#}")))?;

    // 3. Predict the held-out case with Gaussian sliding windows.
    progress.stage(&format!(
        "[3/5] segmenting held-out case {heldout} with sliding windows"
    ));
    let device = device(Backend::Cpu)?;
    let model = LoadedModel::load(Some(&run.best_model()), &device)?;
    let inference = InferenceConfig {
        tiling: Tiling::Sliding,
        overlap: 0.5,
        ..model.inference.clone()
    };
    let case = Dataset::open(&heldout_data)?
        .case(&heldout)
        .ok_or_else(|| Error::invalid("held-out case vanished"))?
        .load()?;
    let (labels, _) = segment_case(
        &case,
        &model,
        &inference,
        &LabelOptions::default(),
        &device,
        progress,
    )?;
    let predictions = PredictionLayout::new(out.join("predictions"));
    std::fs::create_dir_all(predictions.path()).map_err(|e| {
        brainseg_volume::Error::at(predictions.path(), format!("cannot create: {e}"))
    })?;
    let label_map = predictions.label_map(&heldout);
    write_label(
        &label_map,
        &labels,
        &case.geometry,
        Some(LabelNumbering::Msd),
    )?;
    brainseg_viewer::write_colour_tables(&predictions.colour_tables(), LabelNumbering::Msd)?;

    // 4. Evaluate against the held-out ground truth.
    progress.stage("[4/5] evaluating");
    let truth = case
        .label
        .clone()
        .ok_or_else(|| Error::invalid("the held-out case has no label"))?;
    let metrics = CaseMetrics::compute(labels.view(), truth.view(), case.geometry.spacing())?;
    let summary = Summary::new(vec![CaseRow {
        case: heldout.clone(),
        metrics: metrics.clone(),
    }]);
    let evaluation = PredictionLayout::new(run.path());
    write_atomic(evaluation.evaluation_json(), summary.to_json().as_bytes())?;
    write_atomic(evaluation.evaluation_csv(), summary.to_csv().as_bytes())?;

    // 5. Pictures and the report.
    progress.stage("[5/5] drawing pictures and the report");
    let pictures = evaluation.pictures();
    draw_case(
        &case,
        Some(&truth),
        Some(&labels),
        &pictures,
        &PictureOptions::default(),
    )?;
    let report = out.join("report.html");
    let options = ReportOptions {
        title: "brainseg demo".into(),
        ..ReportOptions::default()
    };
    let mut page = crate::report::build(run.path(), &options)?;
    // The interactive viewer of the held-out case, where NiiVue was built in (npm at build time).
    if brainseg_viewer::niivue_bundle().is_ok() {
        page = page.section(viewer_section(&[(case.clone(), Some(labels.clone()))])?);
    }
    page.write(&report)?;
    Ok(DemoOutcome {
        data,
        run,
        heldout,
        metrics,
        label_map,
        pictures,
        report,
    })
}
