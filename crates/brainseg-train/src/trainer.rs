//! A training run in stages: start (a new run or the newest complete checkpoint), then per epoch
//! the steps, validation (Dice from brainseg-metrics), the best model, the checkpoint and the log
//! (`metrics.csv`, `curves.png`). Progress goes out as [`TrainEvent`]s; nothing here prints.
use crate::checkpoint;
use crate::config::{LossKind, TrainConfig};
use crate::data::{open_volumes, Batch, PatchSource};
use crate::error::{Error, Result};
use crate::model_file;
use crate::run_layout::RunLayout;
use brainseg_core::{Class, Region};
use brainseg_infer::{decode_labels, InferenceConfig};
use brainseg_metrics::Counts;
use brainseg_model::checkpoint::StorageDtype;
use brainseg_model::{loss, Device, UNet3d};
use brainseg_visualize::{training_curves, Series};
use brainseg_volume::{write_atomic, Dataset, Split};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Tensor, TensorData};
use ndarray::{Array5, Axis};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

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
    /// Mean of the defined region Dice values; its moving average ([`smoothed_dice`]) chooses the best model.
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

/// How far a run is; saved in each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunProgress {
    pub epochs_done: usize,
    /// The epoch of `best.safetensors`: the highest [`smoothed_dice`] so far (checkpoints from
    /// before it existed start it afresh).
    #[serde(default)]
    pub best_epoch: Option<usize>,
    pub history: Vec<EpochRecord>,
}

impl RunProgress {
    /// After an epoch's record is pushed: whether that epoch is the new best by [`smoothed_dice`]
    /// (strictly higher, so the earlier epoch keeps a tie); if so it is remembered.
    fn take_if_best(&mut self) -> bool {
        let best = self
            .best_epoch
            .and_then(|epoch| smoothed_dice_at(&self.history, epoch))
            .unwrap_or(f64::NEG_INFINITY);
        let improved = smoothed_dice(&self.history) > best;
        if improved {
            self.best_epoch = self.history.last().map(|record| record.epoch);
        }
        improved
    }
}

/// nnU-Net's choice of the best epoch: an exponential moving average (0.9 of the previous, 0.1 of the new) of
/// the validation mean Dice over the epochs, so that a few validation patches' luck does not pick the model.
pub fn smoothed_dice(history: &[EpochRecord]) -> f64 {
    history
        .iter()
        .map(|record| record.dice_mean)
        .reduce(|average, dice| 0.9 * average + 0.1 * dice)
        .unwrap_or(f64::NEG_INFINITY)
}

/// [`smoothed_dice`] as it stood after this epoch (None if the history lacks it).
pub fn smoothed_dice_at(history: &[EpochRecord], epoch: usize) -> Option<f64> {
    let at = history.iter().position(|record| record.epoch == epoch)?;
    Some(smoothed_dice(&history[..=at]))
}

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

/// Validation of one epoch: the mean soft Dice loss and, pooled over the validation patches,
/// hard-Dice confusion counts per class (edema, non-enhancing, enhancing) and per region (WT, TC, ET).
pub struct Validation {
    pub loss: f64,
    pub classes: [Counts; 3],
    pub regions: [Counts; 3],
}

impl Validation {
    /// Mean of the defined region Dice values; its moving average ([`smoothed_dice`]) chooses the best model.
    pub fn mean_region_dice(&self) -> f64 {
        let defined: Vec<f64> = self.regions.iter().filter_map(Counts::dice).collect();
        match defined.len() {
            0 => 0.0,
            n => defined.iter().sum::<f64>() / n as f64,
        }
    }
}

/// A run being trained.
pub struct Trainer {
    pub config: TrainConfig,
    pub layout: RunLayout,
    device: Device,
    source: Arc<PatchSource>,
    valid_batches: Vec<Batch>,
    model: UNet3d,
    optimizer: ModuleOptimizer,
    pub progress: RunProgress,
}

impl Trainer {
    /// A new run in `out` (`config` given; `out` must not hold a run) or the run in `out`
    /// continued from its newest complete checkpoint. A new run that fails to start leaves
    /// nothing behind, so a plain retry works.
    pub fn start(
        config: Option<TrainConfig>,
        out: &Path,
        device: &Device,
        on_event: &mut (dyn FnMut(TrainEvent) + Send),
    ) -> Result<Trainer> {
        let layout = RunLayout::new(out);
        let Some(config) = config else {
            return Self::resume(layout, device, on_event);
        };
        if layout.config().exists() {
            return Err(Error::at(
                out,
                "already holds a run; resume it or choose another folder",
            ));
        }
        let folder_existed = out.exists();
        let split_existed = layout.split().exists();
        // Never "auto" in a run's record: it would mean another precision on another CPU.
        let config = TrainConfig {
            precision: config.precision.resolved(),
            ..config
        };
        let started = (|| {
            fs::create_dir_all(out)
                .map_err(|e| Error::at(out, format!("cannot create the run folder: {e}")))?;
            // A given split must be the one the folder already holds, if it holds one (checked
            // here, at the start only: a resume must not need the original file).
            if let (true, Some(file)) = (split_existed, &config.split_file) {
                if Split::load(file)? != Split::load(&layout.split())? {
                    return Err(Error::at(
                        &layout.split(),
                        format!(
                            "is already in the run folder and differs from {}",
                            file.display()
                        ),
                    ));
                }
            }
            let json = serde_json::to_vec_pretty(&config).expect("configs serialise");
            write_atomic(layout.config(), &json)?;
            Self::prepare(config, layout.clone(), device, None, on_event)
        })();
        if started.is_err() {
            // Only what this call made: the folder if it made it, else the run's own files (a
            // split.json that was there before, the user's, stays).
            if folder_existed {
                let _ = fs::remove_file(layout.config());
                if !split_existed {
                    let _ = fs::remove_file(layout.split());
                }
                let _ = fs::remove_dir_all(layout.cache());
            } else {
                let _ = fs::remove_dir_all(out);
            }
        }
        started
    }

    fn resume(
        layout: RunLayout,
        device: &Device,
        on_event: &mut (dyn FnMut(TrainEvent) + Send),
    ) -> Result<Trainer> {
        let config = read_config(&layout)?;
        let restored = checkpoint::restore(
            &layout,
            &config.model,
            config.seed,
            || config.optimizer.init(),
            device,
        )?;
        Self::prepare(config, layout, device, restored, on_event)
    }

    /// Checks the configuration, opens the data and builds (or restores) the model.
    fn prepare(
        config: TrainConfig,
        layout: RunLayout,
        device: &Device,
        restored: Option<checkpoint::Restored>,
        on_event: &mut (dyn FnMut(TrainEvent) + Send),
    ) -> Result<Trainer> {
        config.model.validate()?;
        config.precision.apply().map_err(|_| {
            Error::at(
                &layout.config(),
                "the run multiplies in bf16 (\"precision\"), and this CPU has no AVX512_BF16",
            )
        })?;
        if config.model.targets != config.sampling.patch.targets {
            return Err(Error::at(
                &layout.config(),
                "model.targets and sampling.patch.targets disagree",
            ));
        }
        let [x, y, z] = config.sampling.patch.size;
        config
            .model
            .check_input([config.model.in_channels, x, y, z])?;
        let (model, optimizer, progress) = match restored {
            Some(r) => (r.model, r.optimizer, r.progress),
            None => (
                match &config.init_weights {
                    Some(file) => brainseg_model::checkpoint::load_checkpoint(
                        file,
                        Some(&config.model),
                        device,
                    )?,
                    None => UNet3d::new(&config.model, config.seed, device)?,
                },
                config.optimizer.init(),
                RunProgress {
                    epochs_done: 0,
                    best_epoch: None,
                    history: vec![],
                },
            ),
        };
        // The model first: a refused starting point is reported before the data is decoded.
        let source = Arc::new(open_data(&config, &layout, on_event)?);
        let valid_batches = source.validation_batches(
            &config.sampling,
            config.seed,
            config.valid_patches_per_case,
        )?;
        Ok(Trainer {
            config,
            layout,
            device: device.clone(),
            source,
            valid_batches,
            model,
            optimizer,
            progress,
        })
    }

    /// Trains, validates, saves and logs epoch `epoch` (1-based).
    pub fn epoch(
        &mut self,
        epoch: usize,
        on_event: &mut (dyn FnMut(TrainEvent) + Send),
    ) -> Result<EpochRecord> {
        let started = Instant::now();
        let config = &self.config;
        let steps = self
            .source
            .batches_per_epoch(config.sampling.batch_size, config.steps_per_epoch);
        let batches = self.source.epoch_batches(
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
        for step in 1..=steps {
            let batch = batches
                .recv()
                .map_err(|_| Error::run("the patch sampler stopped"))??;
            let loss = self.step(&batch, learning_rate)?;
            if !loss.is_finite() {
                return Err(Error::run(format!(
                    "epoch {epoch} step {step}: the loss is {loss}; lower the learning rate"
                )));
            }
            loss_sum += loss;
            on_event(TrainEvent::Step {
                epoch,
                step,
                steps,
                loss,
            });
        }
        on_event(TrainEvent::Validating { epoch });
        let validation = self.validate()?;
        let dice = |c: &Counts| c.dice();
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / steps.max(1) as f64,
            valid_loss: validation.loss,
            dice_edema: dice(&validation.classes[0]),
            dice_non_enhancing: dice(&validation.classes[1]),
            dice_enhancing: dice(&validation.classes[2]),
            dice_wt: dice(&validation.regions[0]),
            dice_tc: dice(&validation.regions[1]),
            dice_et: dice(&validation.regions[2]),
            dice_mean: validation.mean_region_dice(),
            seconds: started.elapsed().as_secs_f64(),
        };
        self.progress.history.push(record.clone());
        if self.progress.take_if_best() {
            self.save_model(&self.layout.best_model())?;
        }
        self.save_model(&self.layout.last_model())?;
        self.progress.epochs_done = epoch;
        checkpoint::save(&self.layout, &self.model, &self.optimizer, &self.progress)?;
        self.log()?;
        on_event(TrainEvent::Epoch(&record));
        Ok(record)
    }

    /// One optimiser step on `batch`; returns its loss.
    fn step(&mut self, batch: &Batch, learning_rate: f64) -> Result<f64> {
        let images = to_tensor(&batch.images, &self.device);
        let targets = to_tensor(&batch.targets, &self.device);
        let loss = training_loss(self.config.loss, &self.model, images, targets)?;
        let value = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optimizer
            .step(learning_rate, self.model.clone(), grads);
        Ok(value)
    }

    /// The model on the validation patches.
    pub fn validate(&self) -> Result<Validation> {
        let targets = self.config.sampling.patch.targets;
        let plain = self.device.clone().without_autodiff();
        let mut validation = Validation {
            loss: 0.0,
            classes: [Counts::default(); 3],
            regions: [Counts::default(); 3],
        };
        for batch in &self.valid_batches {
            let probs = brainseg_model::predict::predict_batch(
                &self.model,
                batch.images.view(),
                &self.device,
            )?;
            let (p, t) = (to_tensor(&probs, &plain), to_tensor(&batch.targets, &plain));
            validation.loss +=
                loss::soft_dice_loss(p, t, loss::SEED_EPSILON).into_scalar::<f32>() as f64;
            for b in 0..probs.shape()[0] {
                let pred = decode_labels(probs.index_axis(Axis(0), b), targets, 0.5)?;
                let truth = decode_labels(batch.targets.index_axis(Axis(0), b), targets, 0.5)?;
                for (&p, &t) in pred.iter().zip(truth.iter()) {
                    for (counts, class) in validation.classes.iter_mut().zip(Class::ALL) {
                        let label = class.msd_label();
                        counts.add(p == label, t == label);
                    }
                    for (counts, region) in validation.regions.iter_mut().zip(Region::ALL) {
                        counts.add(region.contains(p), region.contains(t));
                    }
                }
            }
        }
        validation.loss /= self.valid_batches.len().max(1) as f64;
        Ok(validation)
    }

    /// The model as it is now, with the tile size and standardisation prediction must use.
    fn save_model(&self, path: &Path) -> Result<()> {
        let inference = InferenceConfig {
            tile: self.config.sampling.patch.size,
            standardization: self.config.sampling.standardization,
            ..InferenceConfig::default()
        };
        Ok(model_file::save(
            &self.model,
            &inference,
            path,
            StorageDtype::F32,
        )?)
    }

    /// `metrics.csv` and `curves.png`.
    fn log(&self) -> Result<()> {
        let history = &self.progress.history;
        write_atomic(self.layout.metrics(), metrics_csv(history).as_bytes())?;
        let series: Vec<Series> = [
            (
                "train loss",
                history.iter().map(|r| r.train_loss).collect::<Vec<_>>(),
            ),
            (
                "valid soft Dice loss",
                history.iter().map(|r| r.valid_loss).collect(),
            ),
            (
                "valid Dice (mean WT/TC/ET)",
                history.iter().map(|r| r.dice_mean).collect(),
            ),
        ]
        .into_iter()
        .map(|(name, values)| Series::from_epochs(name.to_string(), &values))
        .collect();
        let png = training_curves("Training curves", &series, 900, 500).to_png();
        Ok(write_atomic(self.layout.curves(), &png)?)
    }
}

/// Train from scratch (`config` given; `out` must not hold a run) or continue the run in `out`
/// until its configured epochs are done. Returns the run's whole history.
pub fn train(
    config: Option<TrainConfig>,
    out: &Path,
    device: &Device,
    on_event: impl FnMut(TrainEvent) + Send,
) -> Result<Vec<EpochRecord>> {
    Ok(train_within(config, out, device, None, on_event)?.history)
}

/// Why [`train_within`] stopped before the run's last epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeLimitStop {
    /// Seconds since the call began (starting and caching the data included).
    pub elapsed: f64,
    /// What the next epoch was expected to take (the last epoch's wall time), if known.
    pub next_epoch_estimate: Option<f64>,
}

/// What [`train_within`] did.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The run's whole history (earlier calls' epochs included).
    pub history: Vec<EpochRecord>,
    /// Epochs trained by this call.
    pub trained: usize,
    /// The epoch of `best.safetensors` (None before a first epoch).
    pub best_epoch: Option<usize>,
    /// The run's configured epochs in all.
    pub epochs: usize,
    /// Set when the time limit stopped the run before its last epoch; its checkpoint is complete
    /// and resuming the run continues with the next epoch.
    pub stopped: Option<TimeLimitStop>,
}

/// [`train`] within a time limit counted from this call: an epoch is started only while the
/// time spent so far plus the expected length of the epoch (the last epoch's wall time in this
/// call; after a resume, before one has run here, the last recorded epoch's seconds) stays within
/// `time_limit`; with nothing to estimate from, it is started while time is left. So a run stops
/// between epochs, after a complete checkpoint, and `train(None, out, ..)` continues it. An epoch
/// can still end after the limit when it runs longer than the one before.
pub fn train_within(
    config: Option<TrainConfig>,
    out: &Path,
    device: &Device,
    time_limit: Option<std::time::Duration>,
    on_event: impl FnMut(TrainEvent) + Send,
) -> Result<TrainOutcome> {
    let started = Instant::now();
    train_with_clock(
        config,
        out,
        device,
        time_limit,
        || started.elapsed(),
        on_event,
    )
}

/// [`train_within`] with the time since the call's start read from `elapsed`.
fn train_with_clock(
    config: Option<TrainConfig>,
    out: &Path,
    device: &Device,
    time_limit: Option<std::time::Duration>,
    elapsed: impl Fn() -> std::time::Duration,
    mut on_event: impl FnMut(TrainEvent) + Send,
) -> Result<TrainOutcome> {
    let mut trainer = Trainer::start(config, out, device, &mut on_event)?;
    let mut estimate = trainer
        .progress
        .history
        .last()
        .map(|r| std::time::Duration::from_secs_f64(r.seconds.max(0.0)));
    let mut trained = 0;
    for epoch in trainer.progress.epochs_done + 1..=trainer.config.epochs {
        if let Some(limit) = time_limit {
            let now = elapsed();
            if now >= limit || estimate.is_some_and(|e| now + e > limit) {
                return Ok(TrainOutcome {
                    best_epoch: trainer.progress.best_epoch,
                    history: trainer.progress.history,
                    trained,
                    epochs: trainer.config.epochs,
                    stopped: Some(TimeLimitStop {
                        elapsed: now.as_secs_f64(),
                        next_epoch_estimate: estimate.map(|e| e.as_secs_f64()),
                    }),
                });
            }
        }
        let before = elapsed();
        trainer.epoch(epoch, &mut on_event)?;
        estimate = Some(elapsed().saturating_sub(before));
        trained += 1;
    }
    Ok(TrainOutcome {
        best_epoch: trainer.progress.best_epoch,
        history: trainer.progress.history,
        trained,
        epochs: trainer.config.epochs,
        stopped: None,
    })
}

/// The notebook's patch folders (config.json + train/ + valid/) or a dataset of whole cases,
/// split as the run's `split.json` says (written on the first start).
fn open_data(
    config: &TrainConfig,
    layout: &RunLayout,
    on_event: &mut (dyn FnMut(TrainEvent) + Send),
) -> Result<PatchSource> {
    let notebook_config = config.data.join("config.json");
    if notebook_config.is_file() {
        if let Some(file) = &config.split_file {
            return Err(Error::at(
                file,
                "a split is for datasets of whole cases; the notebook's patch folders split themselves (train/, valid/)",
            ));
        }
        let (train, valid) = brainseg_volume::seed_patches::read_seed_config(&notebook_config)?;
        return Ok(PatchSource::SeedPatches { train, valid });
    }
    let dataset = Dataset::open(&config.data)?;
    let split = if layout.split().exists() {
        let split = Split::load(&layout.split())?;
        dataset.check_split(&split, &layout.split())?;
        split
    } else {
        let split = match (&config.split_file, config.cross_validation) {
            (Some(file), _) => {
                let split = Split::load(file)?;
                dataset.check_split(&split, file)?;
                split
            }
            (None, Some(f)) => dataset.fold_split(config.seed, f.folds, f.fold)?,
            (None, None) => dataset.split(config.seed, config.train_fraction),
        };
        split.save(&layout.split())?;
        split
    };
    let total = split.train.len() + split.valid.len();
    let mut done = 0;
    let cache = crate::cache::shared_dir().unwrap_or_else(|| layout.cache());
    open_volumes(
        &dataset,
        &split,
        &cache,
        config.sampling.standardization,
        |id| {
            done += 1;
            on_event(TrainEvent::CaseCached { id, done, total });
        },
    )
}

fn read_config(layout: &RunLayout) -> Result<TrainConfig> {
    let path = layout.config();
    let bytes = fs::read(&path)
        .map_err(|e| Error::at(layout.path(), format!("no run here (config.json: {e})")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::at(&path, format!("not a brainseg run config: {e}")))
}

/// Change how many epochs a run has in total (to continue a finished run).
pub fn set_epochs(run: &Path, epochs: usize) -> Result<()> {
    let layout = RunLayout::new(run);
    let mut config = read_config(&layout)?;
    config.epochs = epochs;
    let json = serde_json::to_vec_pretty(&config).expect("configs serialise");
    Ok(write_atomic(layout.config(), &json)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Optimizer, Schedule};
    use crate::data::SamplingConfig;
    use brainseg_model::{cpu_autodiff_device, Targets, UNet3dConfig};
    use brainseg_transforms::{AugmentationConfig, PatchConfig, Standardization};
    use brainseg_volume::synthetic::{write_dataset, SyntheticConfig};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    fn record_with_dice(epoch: usize, dice_mean: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.0,
            valid_loss: 0.0,
            dice_edema: None,
            dice_non_enhancing: None,
            dice_enhancing: None,
            dice_wt: None,
            dice_tc: None,
            dice_et: None,
            dice_mean,
            seconds: 0.0,
        }
    }

    #[test]
    fn smoothed_dice_by_hand() {
        let history: Vec<EpochRecord> = [0.5, 1.0, 0.0]
            .iter()
            .enumerate()
            .map(|(i, &dice)| record_with_dice(i + 1, dice))
            .collect();
        // 0.5; then 0.9 * 0.5 + 0.1 * 1.0 = 0.55; then 0.9 * 0.55 + 0.1 * 0.0 = 0.495.
        let expected = [0.5, 0.55, 0.495];
        for (n, want) in expected.iter().enumerate() {
            assert!((smoothed_dice(&history[..=n]) - want).abs() < 1e-12);
        }
        assert_eq!(smoothed_dice(&[]), f64::NEG_INFINITY);
    }

    /// Feeds the Dice values one epoch at a time, as the trainer does; returns the epochs that
    /// became the best on arrival.
    fn bests_on_arrival(dice: &[f64]) -> (RunProgress, Vec<usize>) {
        let mut progress = RunProgress {
            epochs_done: 0,
            best_epoch: None,
            history: vec![],
        };
        let mut bests = vec![];
        for (i, &value) in dice.iter().enumerate() {
            progress.history.push(record_with_dice(i + 1, value));
            if progress.take_if_best() {
                bests.push(i + 1);
            }
        }
        (progress, bests)
    }

    #[test]
    fn best_epoch_follows_the_moving_average_not_one_lucky_epoch() {
        // Raw Dice peaks at epoch 2 (0.9); the averages are 0.5, 0.54, 0.561, 0.5749, 0.58741:
        // steady 0.7s after the spike win, and the last epoch is the best.
        let (progress, bests) = bests_on_arrival(&[0.5, 0.9, 0.75, 0.7, 0.7]);
        assert_eq!(bests, [1, 2, 3, 4, 5]);
        assert_eq!(progress.best_epoch, Some(5));
        assert!((smoothed_dice_at(&progress.history, 5).unwrap() - 0.58741).abs() < 1e-12);
        // One lucky epoch does not win: averages 0.8, 0.74, 0.756, 0.7304, so epoch 1 stays the
        // best although epoch 3 has the highest raw Dice (0.9).
        let (progress, bests) = bests_on_arrival(&[0.8, 0.2, 0.9, 0.5]);
        assert_eq!(bests, [1]);
        assert_eq!(progress.best_epoch, Some(1));
        assert!((smoothed_dice_at(&progress.history, 1).unwrap() - 0.8).abs() < 1e-12);
        // A tie keeps the earlier epoch.
        let (progress, bests) = bests_on_arrival(&[0.5, 0.5]);
        assert_eq!(bests, [1]);
        assert_eq!(progress.best_epoch, Some(1));
    }

    fn tiny(data: &Path, epochs: usize) -> TrainConfig {
        TrainConfig {
            data: data.to_path_buf(),
            model: UNet3dConfig {
                depth: 2,
                base_filters: 2,
                targets: Targets::Regions,
                ..UNet3dConfig::default()
            },
            sampling: SamplingConfig {
                patch: PatchConfig {
                    size: [16, 16, 8],
                    foreground_share: 0.5,
                    targets: brainseg_transforms::Targets::Regions,
                    ..PatchConfig::default()
                },
                standardization: Standardization::ZScoreBrain,
                augmentation: AugmentationConfig::basic(),
                batch_size: 2,
            },
            epochs,
            steps_per_epoch: 2,
            valid_patches_per_case: 1,
            learning_rate: 1e-3,
            loss: LossKind::DiceBce,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Constant,
            seed: 7,
            train_fraction: 0.67,
            cross_validation: None,
            split_file: None,
            init_weights: None,
            queue_depth: 2,
            precision: brainseg_model::conv::Precision::F32,
        }
    }

    /// A tiny network's logits on one fixed 4x16x16x8 input: equal logits, equal weights.
    fn fixed_input_logits(model: &UNet3d, device: &Device) -> Vec<f32> {
        let input: Vec<f32> = (0..4 * 16 * 16 * 8)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let x = Tensor::from_data(TensorData::new(input, [1, 4, 16, 16, 8]), device);
        model
            .forward_logits(x)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    fn dataset(dir: &Path) -> std::path::PathBuf {
        let data = dir.join("data");
        let config = SyntheticConfig {
            shape: [32, 32, 16],
            ..SyntheticConfig::default()
        };
        write_dataset(&data, 3, &config, 1).unwrap();
        data
    }

    /// A clock where every epoch takes 10 s: it stops before the epoch that would end after the
    /// limit, leaves a checkpoint that resumes exactly, and a resumed call continues to the end.
    #[test]
    fn stops_before_an_epoch_that_would_overrun_and_resumes_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let device = cpu_autodiff_device();
        let straight = train(
            Some(tiny(&data, 3)),
            &dir.path().join("straight"),
            &device,
            |_| {},
        )
        .unwrap();

        let run = dir.path().join("limited");
        let millis = Arc::new(AtomicU64::new(0));
        let clock = {
            let millis = millis.clone();
            move || Duration::from_millis(millis.load(Ordering::SeqCst))
        };
        // Epoch 1 starts at 0 s (no estimate yet), epoch 2 at 10 s (10 + 10 <= 25), epoch 3
        // would start at 20 s and end at 30 s > 25 s: not started.
        let limited = train_with_clock(
            Some(tiny(&data, 3)),
            &run,
            &device,
            Some(Duration::from_secs(25)),
            clock,
            |event| {
                if matches!(event, TrainEvent::Epoch(_)) {
                    millis.fetch_add(10_000, Ordering::SeqCst);
                }
            },
        )
        .unwrap();
        assert_eq!(limited.trained, 2);
        assert_eq!(limited.history.len(), 2);
        assert_eq!(
            limited.stopped,
            Some(TimeLimitStop {
                elapsed: 20.0,
                next_epoch_estimate: Some(10.0),
            })
        );
        let layout = RunLayout::new(&run);
        assert!(layout.best_model().is_file());
        // last.safetensors holds the checkpoint's weights (epoch 2's, whichever epoch was best).
        let config = tiny(&data, 3);
        let restored = checkpoint::restore(
            &layout,
            &config.model,
            7,
            || config.optimizer.init(),
            &device,
        )
        .unwrap()
        .expect("a checkpoint");
        let last = brainseg_model::checkpoint::load_checkpoint(&layout.last_model(), None, &device)
            .unwrap();
        assert_eq!(
            fixed_input_logits(&last, &device),
            fixed_input_logits(&restored.model, &device)
        );
        let csv = fs::read_to_string(layout.metrics()).unwrap();
        assert_eq!(csv.lines().count(), 3, "header + 2 epochs:\n{csv}");

        // Resumed without a limit: epoch 3 only, the same numbers as the uninterrupted run.
        let resumed = train_within(None, &run, &device, None, |_| {}).unwrap();
        assert_eq!(resumed.trained, 1);
        assert_eq!(resumed.stopped, None);
        assert_eq!(resumed.history.len(), 3);
        for (a, b) in straight.iter().zip(&resumed.history) {
            assert_eq!(a.epoch, b.epoch);
            assert_eq!(a.train_loss, b.train_loss);
            assert_eq!(a.valid_loss, b.valid_loss);
        }
    }

    /// A limit already spent on starting: no epoch is begun, the run (config, split) stays
    /// resumable and a resumed call trains it from the first epoch.
    #[test]
    fn a_spent_limit_starts_no_epoch_and_the_run_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let device = cpu_autodiff_device();
        let run = dir.path().join("run");
        let none = train_within(
            Some(tiny(&data, 2)),
            &run,
            &device,
            Some(Duration::ZERO),
            |_| {},
        )
        .unwrap();
        assert_eq!(none.trained, 0);
        assert!(none.history.is_empty());
        let stop = none.stopped.expect("stopped by the limit");
        assert_eq!(stop.next_epoch_estimate, None);
        assert!(RunLayout::new(&run).config().is_file());

        // With a real clock and a generous limit, the rest runs to the end.
        let rest =
            train_within(None, &run, &device, Some(Duration::from_secs(3600)), |_| {}).unwrap();
        assert_eq!(rest.trained, 2);
        assert_eq!(rest.stopped, None);
        assert_eq!(
            rest.history.iter().map(|r| r.epoch).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    /// `init_weights` starts the run from the file's weights exactly (not from the seed's random
    /// ones), and a file of another network is refused, naming the file.
    #[test]
    fn a_run_starts_from_the_given_weights() {
        use brainseg_model::checkpoint::load_checkpoint;
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let device = cpu_autodiff_device();
        let source = dir.path().join("source");
        train(Some(tiny(&data, 1)), &source, &device, |_| {}).unwrap();
        let weights = RunLayout::new(&source).best_model();

        let mut config = tiny(&data, 1);
        config.init_weights = Some(weights.clone());
        let trainer = Trainer::start(
            Some(config),
            &dir.path().join("tuned"),
            &device,
            &mut |_| {},
        )
        .unwrap();
        // The same logits as the file's model on a fixed input, and not those of the seed's
        // random weights (the comparison can fail).
        let logits = |model: &UNet3d| fixed_input_logits(model, &device);
        let from_file = load_checkpoint(&weights, None, &device).unwrap();
        let random = UNet3d::new(&tiny(&data, 1).model, 7, &device).unwrap();
        assert_eq!(logits(&trainer.model), logits(&from_file));
        assert_ne!(logits(&trainer.model), logits(&random));

        let mut other = tiny(&data, 1);
        other.model.base_filters = 4;
        other.init_weights = Some(weights.clone());
        let out = dir.path().join("refused");
        let error = Trainer::start(Some(other), &out, &device, &mut |_| {})
            .err()
            .expect("another network's weights are refused")
            .to_string();
        assert!(
            error.contains("best.safetensors") && error.contains("different model"),
            "{error}"
        );
        assert!(!out.exists(), "a refused start leaves nothing behind");
    }

    /// `split_file` replaces the drawn split and is copied into the run.
    #[test]
    fn a_run_uses_the_given_split() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let device = cpu_autodiff_device();
        let drawn_run = dir.path().join("drawn");
        Trainer::start(Some(tiny(&data, 1)), &drawn_run, &device, &mut |_| {}).unwrap();
        let drawn = Split::load(&RunLayout::new(&drawn_run).split()).unwrap();
        // Another split of the same cases: the first training case validates instead.
        let mut cases = drawn.train.clone();
        cases.extend(drawn.valid.clone());
        let given = Split {
            valid: vec![cases[0].clone()],
            train: cases[1..].to_vec(),
        };
        assert_ne!(given, drawn);
        let file = dir.path().join("my_split.json");
        given.save(&file).unwrap();
        let mut config = tiny(&data, 1);
        config.split_file = Some(file.clone());
        let run = dir.path().join("given");
        Trainer::start(Some(config.clone()), &run, &device, &mut |_| {}).unwrap();
        assert_eq!(Split::load(&RunLayout::new(&run).split()).unwrap(), given);
        // The run keeps its own copy: it resumes without the original file.
        fs::remove_file(&file).unwrap();
        Trainer::start(None, &run, &device, &mut |_| {}).unwrap();
        given.save(&file).unwrap();

        // A folder already holding another split.json: refused, and that file stays as it was.
        let folder = dir.path().join("occupied");
        drawn.save(&RunLayout::new(&folder).split()).unwrap();
        let error = Trainer::start(Some(config), &folder, &device, &mut |_| {})
            .err()
            .expect("two different splits")
            .to_string();
        assert!(error.contains("differs from"), "{error}");
        assert_eq!(
            Split::load(&RunLayout::new(&folder).split()).unwrap(),
            drawn
        );
        assert!(!RunLayout::new(&folder).config().exists());

        // A split with a case on both sides is refused, naming the file.
        let both = Split {
            train: cases.clone(),
            valid: vec![cases[0].clone()],
        };
        let file = dir.path().join("both.json");
        both.save(&file).unwrap();
        let mut config = tiny(&data, 1);
        config.split_file = Some(file);
        let error = Trainer::start(Some(config), &dir.path().join("both"), &device, &mut |_| {})
            .err()
            .expect("a case on both sides")
            .to_string();
        assert!(
            error.contains("both.json") && error.contains("in both train and valid"),
            "{error}"
        );
    }
}
