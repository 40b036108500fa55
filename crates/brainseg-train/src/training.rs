//! The training loop: Adam (the seed) or nnU-Net's SGD with Nesterov momentum on a UNet3d, a
//! constant or poly learning rate, deep supervision when the model has it, one validation pass
//! per epoch, atomic checkpoints, exact resume.
use crate::data::{open_volumes, Batch, PatchSource, SamplingConfig};
use anyhow::{bail, Context, Result};
use brainseg_infer::{decode_labels, InferenceConfig, CHECKPOINT_METADATA_KEY};
use brainseg_model::checkpoint::{self, StorageDtype};
use brainseg_model::{loss, Device, UNet3d, UNet3dConfig};
use brainseg_visualize::{training_curves, Series};
use brainseg_volume::{Dataset, Split};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::store::ModuleRecord;
use burn::tensor::{Tensor, TensorData};
use ndarray::{Array5, Axis};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The loss a model is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LossKind {
    /// The seed's soft Dice loss (squared denominators).
    SoftDice,
    /// Soft Dice + binary cross-entropy on logits, as nnU-Net (Dice + CE).
    DiceBce,
}

/// The optimiser a model is trained with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Optimizer {
    /// burn's Adam with its defaults (beta 0.9/0.999, eps 1e-5, no weight decay): the seed's.
    #[default]
    Adam,
    /// nnU-Net's: SGD, Nesterov momentum [`SGD_MOMENTUM`], no dampening, weight decay
    /// [`SGD_WEIGHT_DECAY`] (L2, added to the gradient as PyTorch's `SGD(weight_decay=...)`).
    SgdNesterov,
}

/// Momentum of [`Optimizer::SgdNesterov`] (nnU-Net's `configure_optimizers`).
pub const SGD_MOMENTUM: f64 = 0.99;
/// Weight decay of [`Optimizer::SgdNesterov`] (nnU-Net's `weight_decay`).
pub const SGD_WEIGHT_DECAY: f32 = 3e-5;
/// nnU-Net's initial learning rate for SGD.
pub const NNUNET_LEARNING_RATE: f64 = 0.01;

impl Optimizer {
    /// A fresh optimiser (no state yet). Its state is saved and restored by
    /// [`ModuleOptimizer::save`] / [`ModuleOptimizer::load`] for every kind (Adam's moments,
    /// SGD's velocities).
    pub fn init(self) -> ModuleOptimizer {
        match self {
            Optimizer::Adam => AdamConfig::new().init(),
            Optimizer::SgdNesterov => SgdConfig::new()
                .with_momentum(Some(MomentumConfig {
                    momentum: SGD_MOMENTUM,
                    dampening: 0.0,
                    nesterov: true,
                }))
                .with_weight_decay(Some(WeightDecayConfig {
                    penalty: SGD_WEIGHT_DECAY,
                }))
                .init(),
        }
    }
}

/// How the learning rate changes over the epochs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Schedule {
    /// `learning_rate` throughout (the seed).
    #[default]
    Constant,
    /// nnU-Net's `PolyLRScheduler`, stepped once per epoch:
    /// `learning_rate * (1 - epoch / epochs)^0.9` for the 0-based epoch.
    Poly,
}

/// Exponent of [`Schedule::Poly`].
pub const POLY_EXPONENT: f64 = 0.9;

impl Schedule {
    /// The learning rate of 0-based epoch `epoch` of `epochs` starting from `initial`.
    /// A run extended with `--resume --epochs N` re-stretches the poly decay over the new total.
    pub fn learning_rate(self, initial: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => initial,
            Schedule::Poly => {
                let progress = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                initial * (1.0 - progress).powf(POLY_EXPONENT)
            }
        }
    }
}

/// Everything that describes a run; saved as `config.json` in the run directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub model: UNet3dConfig,
    pub sampling: SamplingConfig,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// Validation patches drawn once from each validation case (seed patches: every validation file).
    pub valid_patches_per_case: usize,
    /// The initial learning rate (the only one with [`Schedule::Constant`]).
    pub learning_rate: f64,
    pub loss: LossKind,
    /// Absent from older config.json files: Adam.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Absent from older config.json files: constant.
    #[serde(default)]
    pub schedule: Schedule,
    pub seed: u64,
    pub train_fraction: f64,
    /// Batches prepared ahead of the model by the background sampler.
    pub queue_depth: usize,
}

/// One epoch's numbers: a row of `metrics.csv`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_loss: f64,
    /// Dice per class on thresholded predictions, pooled over validation patches (None: class absent).
    pub dice_edema: Option<f64>,
    pub dice_non_enhancing: Option<f64>,
    pub dice_enhancing: Option<f64>,
    pub dice_wt: Option<f64>,
    pub dice_tc: Option<f64>,
    pub dice_et: Option<f64>,
    /// Mean of the defined region Dice values: the number the best model is chosen by.
    pub dice_mean: f64,
    pub seconds: f64,
}

/// What the loop reports while it runs (the CLI draws progress bars from these).
pub enum TrainEvent<'a> {
    CaseCached {
        id: &'a str,
        done: usize,
        total: usize,
    },
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
    },
    Validating {
        epoch: usize,
    },
    Epoch(&'a EpochRecord),
}

#[derive(Serialize, Deserialize)]
struct Progress {
    epochs_done: usize,
    best_dice: f64,
    history: Vec<EpochRecord>,
}

const CHECKPOINT: &str = "checkpoint";

fn to_tensor(array: &Array5<f32>, device: &Device) -> Tensor<5> {
    let shape = array.shape().to_vec();
    let data = TensorData::new(
        array
            .as_standard_layout()
            .iter()
            .copied()
            .collect::<Vec<f32>>(),
        shape,
    );
    Tensor::from_data(data, device)
}

/// nnU-Net's `3d_fullres` recipe on `base`: the network of
/// [`UNet3dConfig::with_nnunet_recipe`] (instance norm, leaky ReLU, strided convolutions,
/// transposed convolutions, deep supervision, regions), SGD with Nesterov momentum at
/// [`NNUNET_LEARNING_RATE`], the poly schedule, Dice + BCE on region targets. Data, sizes, epochs,
/// sampling (but its targets) and seed stay `base`'s.
pub fn nnunet_recipe(base: TrainConfig) -> TrainConfig {
    let mut config = TrainConfig {
        model: base.model.clone().with_nnunet_recipe(),
        learning_rate: NNUNET_LEARNING_RATE,
        loss: LossKind::DiceBce,
        optimizer: Optimizer::SgdNesterov,
        schedule: Schedule::Poly,
        ..base
    };
    config.sampling.patch.targets = brainseg_transforms::Targets::Regions;
    config
}

/// The training loss of one batch: `kind` on the full-resolution logits or, when the model has
/// deep supervision, [`loss::deep_supervision_loss`] of `kind` over its outputs.
pub fn training_loss(
    kind: LossKind,
    model: &UNet3d,
    images: Tensor<5>,
    targets: Tensor<5>,
) -> Result<Tensor<1>> {
    let loss_of = |logits: Tensor<5>, targets: Tensor<5>| match kind {
        LossKind::SoftDice => loss::soft_dice_loss(
            burn::tensor::activation::sigmoid(logits),
            targets,
            loss::SEED_EPSILON,
        ),
        LossKind::DiceBce => loss::dice_bce_loss(logits, targets, loss::SEED_EPSILON, 1.0),
    };
    Ok(if model.config().deep_supervision {
        let outputs = model.forward_deep_supervision(images)?;
        loss::deep_supervision_loss(outputs, targets, loss_of)
    } else {
        loss_of(model.forward_logits(images)?, targets)
    })
}

fn compute_loss(
    kind: LossKind,
    model: &UNet3d,
    batch: &Batch,
    device: &Device,
) -> Result<Tensor<1>> {
    let images = to_tensor(&batch.images, device);
    let targets = to_tensor(&batch.targets, device);
    training_loss(kind, model, images, targets)
}

/// Voxel counts for pooled Dice: |pred ∩ truth|, |pred|, |truth|.
#[derive(Default, Clone, Copy)]
struct Overlap {
    both: u64,
    pred: u64,
    truth: u64,
}

impl Overlap {
    fn dice(self) -> Option<f64> {
        (self.pred + self.truth > 0)
            .then(|| 2.0 * self.both as f64 / (self.pred + self.truth) as f64)
    }
}

fn validate(
    model: &UNet3d,
    batches: &[Batch],
    config: &TrainConfig,
    device: &Device,
) -> Result<(f64, [Overlap; 6])> {
    let mut loss_sum = 0.0;
    let mut overlaps = [Overlap::default(); 6];
    let targets = config.sampling.patch.targets;
    for batch in batches {
        let probs = brainseg_model::predict::predict_batch(model, batch.images.view(), device)?;
        let plain = device.clone().without_autodiff();
        let p = to_tensor(&probs, &plain);
        let t = to_tensor(&batch.targets, &plain);
        loss_sum += loss::soft_dice_loss(p, t, loss::SEED_EPSILON).into_scalar::<f32>() as f64;
        for b in 0..probs.shape()[0] {
            let pred = decode_labels(probs.index_axis(Axis(0), b), targets, 0.5)?;
            let truth = decode_labels(batch.targets.index_axis(Axis(0), b), targets, 0.5)?;
            for (&p, &t) in pred.iter().zip(truth.iter()) {
                // Classes 1..3, then regions WT {1,2,3}, TC {2,3}, ET {3}.
                let class_hits = [p == 1, p == 2, p == 3, p > 0, p >= 2, p == 3];
                let class_truth = [t == 1, t == 2, t == 3, t > 0, t >= 2, t == 3];
                for k in 0..6 {
                    overlaps[k].both += (class_hits[k] && class_truth[k]) as u64;
                    overlaps[k].pred += class_hits[k] as u64;
                    overlaps[k].truth += class_truth[k] as u64;
                }
            }
        }
    }
    Ok((loss_sum / batches.len().max(1) as f64, overlaps))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(brainseg_volume::write_atomic(path, bytes)?)
}

fn metrics_csv(history: &[EpochRecord]) -> String {
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    let mut csv = String::from("epoch,train_loss,valid_loss,dice_edema,dice_non_enhancing,dice_enhancing,dice_wt,dice_tc,dice_et,dice_mean,seconds\n");
    for r in history {
        csv += &format!(
            "{},{:.6},{:.6},{},{},{},{},{},{},{:.6},{:.1}\n",
            r.epoch,
            r.train_loss,
            r.valid_loss,
            opt(r.dice_edema),
            opt(r.dice_non_enhancing),
            opt(r.dice_enhancing),
            opt(r.dice_wt),
            opt(r.dice_tc),
            opt(r.dice_et),
            r.dice_mean,
            r.seconds
        );
    }
    csv
}

fn draw_curves(history: &[EpochRecord], path: &Path) -> Result<()> {
    let series = vec![
        (
            "train loss".to_string(),
            history.iter().map(|r| r.train_loss).collect::<Vec<_>>(),
        ),
        (
            "valid soft Dice loss".to_string(),
            history.iter().map(|r| r.valid_loss).collect(),
        ),
        (
            "valid Dice (mean WT/TC/ET)".to_string(),
            history.iter().map(|r| r.dice_mean).collect(),
        ),
    ];
    let series: Vec<Series> = series
        .into_iter()
        .map(|(name, values)| Series::from_epochs(name, &values))
        .collect();
    write_atomic(
        path,
        &training_curves("Training curves", &series, 900, 500).to_png(),
    )
}

/// Save weights, optimizer and progress as one unit: written to `checkpoint.tmp/`, then swapped in.
fn save_checkpoint(
    run: &Path,
    model: &UNet3d,
    optim: &ModuleOptimizer,
    progress: &Progress,
) -> Result<()> {
    let tmp = run.join("checkpoint.tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    // burn's own record keeps the parameter ids the optimizer state is keyed by, so resume is exact.
    model
        .clone()
        .into_record()
        .save(tmp.join("model.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: cannot save the model: {e:?}", tmp.display()))?;
    optim
        .save(tmp.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: cannot save optimizer state: {e:?}", tmp.display()))?;
    fs::write(
        tmp.join("progress.json"),
        serde_json::to_vec_pretty(progress)?,
    )?;
    let current = run.join(CHECKPOINT);
    let old = run.join("checkpoint.old");
    let _ = fs::remove_dir_all(&old);
    if current.exists() {
        fs::rename(&current, &old)?;
    }
    fs::rename(&tmp, &current)?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Train from scratch (`resume = false`, `out` must not hold a run) or continue the run in `out`.
pub fn train(
    config: Option<TrainConfig>,
    out: &Path,
    device: &Device,
    mut on_event: impl FnMut(TrainEvent) + Send,
) -> Result<Vec<EpochRecord>> {
    let resuming = config.is_none();
    let config: TrainConfig = match config {
        Some(c) => {
            if out.join("config.json").exists() {
                bail!(
                    "{}: already holds a run; use --resume to continue it or choose another --out",
                    out.display()
                );
            }
            fs::create_dir_all(out)
                .with_context(|| format!("{}: cannot create the run folder", out.display()))?;
            write_atomic(&out.join("config.json"), &serde_json::to_vec_pretty(&c)?)?;
            c
        }
        None => {
            let bytes = fs::read(out.join("config.json")).with_context(|| {
                format!("{}: no run to resume (config.json missing)", out.display())
            })?;
            serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: config.json is not a brainseg run config",
                    out.display()
                )
            })?
        }
    };
    config.model.validate()?;
    let targets_agree = matches!(
        (config.model.targets, config.sampling.patch.targets),
        (
            brainseg_model::Targets::Classes,
            brainseg_transforms::Targets::Classes
        ) | (
            brainseg_model::Targets::Regions,
            brainseg_transforms::Targets::Regions
        )
    );
    if !targets_agree {
        bail!(
            "{}: model.targets and sampling.patch.targets disagree",
            out.join("config.json").display()
        );
    }
    config.model.check_input([
        config.model.in_channels,
        config.sampling.patch.size[0],
        config.sampling.patch.size[1],
        config.sampling.patch.size[2],
    ])?;

    // Data: seed patch folders (config.json + train/ + valid/) or a dataset of whole cases.
    let seed_config = config.data.join("config.json");
    let source = if seed_config.is_file() {
        let (train, valid) = brainseg_volume::seed_patches::read_seed_config(&seed_config)?;
        PatchSource::SeedPatches { train, valid }
    } else {
        let dataset = Dataset::open(&config.data)?;
        let split_path = out.join("split.json");
        let split = if split_path.exists() {
            Split::load(&split_path)?
        } else {
            let split = dataset.split(config.seed, config.train_fraction);
            split.save(&split_path)?;
            split
        };
        let total = split.train.len() + split.valid.len();
        let mut done = 0;
        open_volumes(
            &dataset,
            &split,
            &out.join("cache"),
            config.sampling.standardization,
            |id| {
                done += 1;
                on_event(TrainEvent::CaseCached { id, done, total });
            },
        )?
    };
    let source = Arc::new(source);
    let valid_batches =
        source.validation_batches(&config.sampling, config.seed, config.valid_patches_per_case)?;

    // Model and optimizer: fresh from the seed, or as the last checkpoint left them.
    let mut optim = config.optimizer.init();
    // A kill between the two renames of save_checkpoint leaves only checkpoint.old: use it.
    let last_checkpoint = [out.join(CHECKPOINT), out.join("checkpoint.old")]
        .into_iter()
        .find(|p| p.join("progress.json").is_file());
    let (mut model, mut progress) = if let (true, Some(ckpt)) = (resuming, last_checkpoint) {
        let record = ModuleRecord::load(ckpt.join("model.bpk"))
            .map_err(|e| anyhow::anyhow!("{}: cannot read the model: {e:?}", ckpt.display()))?;
        let model = UNet3d::new(&config.model, config.seed, device)?
            .try_load_record(record)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: checkpoint does not fit the run's model: {e:?}",
                    ckpt.display()
                )
            })?;
        optim = optim.load(ckpt.join("optimizer.bpk")).map_err(|e| {
            anyhow::anyhow!("{}: cannot read optimizer state: {e:?}", ckpt.display())
        })?;
        let progress: Progress = serde_json::from_slice(&fs::read(ckpt.join("progress.json"))?)?;
        (model, progress)
    } else {
        (
            UNet3d::new(&config.model, config.seed, device)?,
            Progress {
                epochs_done: 0,
                best_dice: f64::NEG_INFINITY,
                history: vec![],
            },
        )
    };

    for epoch in progress.epochs_done + 1..=config.epochs {
        let started = Instant::now();
        let steps = source.batches_per_epoch(config.sampling.batch_size, config.steps_per_epoch);
        let batches = source.epoch_batches(
            &config.sampling,
            config.seed,
            epoch as u64,
            config.steps_per_epoch,
            config.queue_depth,
        );
        let learning_rate =
            config
                .schedule
                .learning_rate(config.learning_rate, epoch - 1, config.epochs);
        let mut loss_sum = 0.0;
        for step in 0..steps {
            let batch = batches.recv().context("the sampler thread stopped")??;
            let loss = compute_loss(config.loss, &model, &batch, device)?;
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                bail!(
                    "epoch {epoch} step {}: the loss is {value}; lower the learning rate",
                    step + 1
                );
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(learning_rate, model, grads);
            loss_sum += value;
            on_event(TrainEvent::Step {
                epoch,
                step: step + 1,
                steps,
                loss: value,
            });
        }
        on_event(TrainEvent::Validating { epoch });
        let (valid_loss, o) = validate(&model, &valid_batches, &config, device)?;
        let regions: Vec<f64> = [o[3].dice(), o[4].dice(), o[5].dice()]
            .into_iter()
            .flatten()
            .collect();
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / steps.max(1) as f64,
            valid_loss,
            dice_edema: o[0].dice(),
            dice_non_enhancing: o[1].dice(),
            dice_enhancing: o[2].dice(),
            dice_wt: o[3].dice(),
            dice_tc: o[4].dice(),
            dice_et: o[5].dice(),
            dice_mean: if regions.is_empty() {
                0.0
            } else {
                regions.iter().sum::<f64>() / regions.len() as f64
            },
            seconds: started.elapsed().as_secs_f64(),
        };
        if record.dice_mean > progress.best_dice {
            progress.best_dice = record.dice_mean;
            // The best model carries the tile size and standardisation prediction must use.
            let inference = InferenceConfig {
                tile: config.sampling.patch.size,
                standardization: config.sampling.standardization,
                ..InferenceConfig::default()
            };
            let metadata = serde_json::to_string(&inference)?;
            checkpoint::save_checkpoint_with_metadata(
                &model,
                &out.join("best.safetensors"),
                StorageDtype::F32,
                &[(CHECKPOINT_METADATA_KEY, metadata.as_str())],
            )?;
        }
        progress.history.push(record.clone());
        progress.epochs_done = epoch;
        save_checkpoint(out, &model, &optim, &progress)?;
        write_atomic(
            &out.join("metrics.csv"),
            metrics_csv(&progress.history).as_bytes(),
        )?;
        draw_curves(&progress.history, &out.join("curves.png"))?;
        on_event(TrainEvent::Epoch(&record));
    }
    Ok(progress.history)
}

/// Change how many epochs a run has in total (to continue a finished run with `--resume`).
pub fn set_epochs(run: &Path, epochs: usize) -> Result<()> {
    let path = run.join("config.json");
    let bytes = fs::read(&path)
        .with_context(|| format!("{}: no run here (config.json missing)", run.display()))?;
    let mut config: TrainConfig = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a brainseg run config", path.display()))?;
    config.epochs = epochs;
    write_atomic(&path, &serde_json::to_vec_pretty(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainseg_transforms::{AugmentConfig, PatchConfig, Standardization};

    fn config() -> TrainConfig {
        TrainConfig {
            data: PathBuf::from("data"),
            model: UNet3dConfig::default(),
            sampling: SamplingConfig {
                patch: PatchConfig::default(),
                standardization: Standardization::SeedSlices,
                augment: AugmentConfig::default(),
                batch_size: 3,
            },
            epochs: 10,
            steps_per_epoch: 20,
            valid_patches_per_case: 4,
            learning_rate: 1e-5,
            loss: LossKind::SoftDice,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Constant,
            seed: 0,
            train_fraction: 0.8,
            queue_depth: 2,
        }
    }

    #[test]
    fn poly_schedule_by_hand() {
        let lr = |epoch| Schedule::Poly.learning_rate(0.01, epoch, 1000);
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} != {b}");
        // (1 - 0)^0.9 = 1.
        close(lr(0), 0.01);
        // 0.999^0.9 = exp(0.9 ln 0.999) = exp(-0.000900450300...) = 0.999099955...
        close(lr(1), 0.01 * 0.999_099_955_0);
        // 0.5^0.9 = 2^-0.9 = 0.535886731268...
        close(lr(500), 0.01 * 0.535_886_731_268);
        // 0.001^0.9 = 10^-2.7 = 0.001995262315...
        close(lr(999), 0.01 * 0.001_995_262_315);
        // Constant ignores the epoch.
        assert_eq!(Schedule::Constant.learning_rate(0.01, 999, 1000), 0.01);
        // A tiny run: 2 epochs, 0-based 0 and 1: lr0 then lr0 * 0.5^0.9.
        close(Schedule::Poly.learning_rate(1.0, 1, 2), 0.535_886_731_268);
    }

    #[test]
    fn an_old_config_json_trains_as_before() {
        let mut json = serde_json::to_value(config()).unwrap();
        let object = json.as_object_mut().unwrap();
        assert_eq!(object["optimizer"], "adam");
        assert_eq!(object["schedule"], "constant");
        object.remove("optimizer");
        object.remove("schedule");
        let old: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.optimizer, Optimizer::Adam);
        assert_eq!(old.schedule, Schedule::Constant);
        assert_eq!(old.model, UNet3dConfig::default());
    }

    #[test]
    fn nnunet_recipe_sets_every_piece() {
        let base = config();
        let recipe = nnunet_recipe(base.clone());
        assert_eq!(recipe.optimizer, Optimizer::SgdNesterov);
        assert_eq!(recipe.schedule, Schedule::Poly);
        assert_eq!(recipe.learning_rate, 0.01);
        assert_eq!(recipe.loss, LossKind::DiceBce);
        assert_eq!(recipe.model, base.model.clone().with_nnunet_recipe());
        assert_eq!(
            recipe.sampling.patch.targets,
            brainseg_transforms::Targets::Regions
        );
        assert_eq!(recipe.epochs, base.epochs);
        let json = serde_json::to_value(&recipe).unwrap();
        assert_eq!(json["optimizer"], "sgd_nesterov");
        assert_eq!(json["schedule"], "poly");
        assert_eq!(json["model"]["deep_supervision"], true);
    }

    #[test]
    fn sgd_nesterov_steps_as_pytorch_by_hand() {
        // Loss = g * sum(head weights): each weight's gradient is g at every step.
        let device = brainseg_model::cpu_autodiff_device();
        let model = UNet3d::new(
            &UNet3dConfig {
                depth: 1,
                base_filters: 1,
                in_channels: 1,
                out_classes: 1,
                ..UNet3dConfig::default()
            },
            0,
            &device,
        )
        .unwrap();
        let mut optim = Optimizer::SgdNesterov.init();
        let lr = 0.1;
        let grad = 2.0;
        // The head's first weight (it has 2: one per channel of the level-0 block).
        let weight =
            |m: &UNet3d| m.head.weight.val().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
        let mut p = weight(&model);
        let mut model = model;
        let mut velocity = 0.0f64;
        for step in 0..3 {
            let loss = model.head.weight.val().sum() * grad;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            // PyTorch SGD: d = g + wd p; v = d (first step) or mu v + d; update d + mu v.
            let d = grad + SGD_WEIGHT_DECAY as f64 * p;
            velocity = if step == 0 {
                d
            } else {
                SGD_MOMENTUM * velocity + d
            };
            p -= lr * (d + SGD_MOMENTUM * velocity);
            assert!((weight(&model) - p).abs() < 1e-5, "step {step}");
        }
    }
}
