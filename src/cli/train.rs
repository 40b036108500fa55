//! `brainseg train`: train a U-Net on a dataset or on the notebook's patch files; `--resume`
//! continues a run. A run starts from a recipe (`--recipe`); each flag given overrides one setting.
use super::progress::Reporter;
use super::Compute;
use anyhow::{bail, Result};
use brainseg_core::Targets;
use brainseg_model::conv::Precision;
use brainseg_model::{Normalisation, Upsampling};
use brainseg_pipeline::training_device;
use brainseg_train::trainer::train_within;
use brainseg_train::{Fold, LossKind, Optimizer, Recipe, RunLayout, Schedule, TrainConfig};
use brainseg_transforms::{AugmentationConfig, AugmentationPreset, Standardization};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (MSD or raw BraTS), or a notebook patch folder holding config.json + train/ + valid/.
    #[arg(short, long, alias = "data", required_unless_present = "resume")]
    pub input: Option<PathBuf>,
    /// Run folder to create (config, split, metrics.csv, curves.png, checkpoints, best.safetensors,
    /// last.safetensors).
    #[arg(short, long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint (all other options come from its config.json).
    #[arg(long, conflicts_with_all = ["input", "out"])]
    pub resume: Option<PathBuf>,
    /// Where every setting not given below comes from.
    #[arg(long, value_enum, default_value_t)]
    pub recipe: Recipe,
    /// Patch size x,y,z (each divisible by 2^(depth-1)) [recipe cpu: 128,128,32; notebook: 160,160,16].
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub patch: Option<Vec<usize>>,
    /// Patches per step [recipe].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Epochs in total [recipe: 10]; with --resume, extends a finished run to this many.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Steps per epoch [recipe: 20].
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// Validation patches drawn from each validation case [recipe: 4].
    #[arg(long)]
    pub valid_patches: Option<usize>,
    /// Optimiser [recipe cpu, notebook: adam; nnunet: sgd-nesterov].
    #[arg(long, value_enum)]
    pub optimizer: Option<Optimizer>,
    /// Learning-rate schedule over the epochs [recipe cpu, notebook: constant; nnunet: poly].
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    /// Initial learning rate [recipe cpu: 1e-3; notebook: 1e-5; nnunet: 0.01].
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Random seed of the split (unless --split), the weights (unless --init-weights), the patches
    /// and the augmentation [0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fraction of cases used for training; the rest validate (split.json in the run folder can be edited) [0.8].
    #[arg(long)]
    pub train_fraction: Option<f64>,
    /// Cross-validation: the number of folds (with --fold); the folds are fixed by --seed and
    /// written to the run's split.json.
    #[arg(long, requires = "fold")]
    pub folds: Option<usize>,
    /// Which fold (0-based) this run trains; the others' cases train it, its own validate it.
    #[arg(long, requires = "folds")]
    pub fold: Option<usize>,
    /// Use this split (a split.json of another run, or {"train": [ids], "valid": [ids]} written by
    /// hand) instead of drawing one; it is copied into the run folder.
    #[arg(long, value_name = "SPLIT_JSON", conflicts_with_all = ["folds", "train_fraction"])]
    pub split: Option<PathBuf>,
    /// Start from this model file's weights instead of random ones (fine-tuning, e.g. the bundled
    /// model; the network options must match the file's). The optimiser starts fresh.
    #[arg(long, value_name = "MODEL")]
    pub init_weights: Option<PathBuf>,
    /// U-Net depth (levels) [4].
    #[arg(long)]
    pub depth: Option<usize>,
    /// Filters of the first level, doubling per level [recipe cpu: 16; notebook: 32].
    #[arg(long)]
    pub base_filters: Option<usize>,
    /// Decoder upsampling [nearest].
    #[arg(long, value_enum)]
    pub upsampling: Option<Upsampling>,
    /// Normalisation after each convolution [none].
    #[arg(long, value_enum)]
    pub norm: Option<Normalisation>,
    /// What the outputs mean [recipe cpu: regions; notebook: classes].
    #[arg(long, value_enum)]
    pub targets: Option<Targets>,
    /// Loss [recipe cpu: dice-bce; notebook: soft-dice].
    #[arg(long, value_enum)]
    pub loss: Option<LossKind>,
    /// Intensity standardisation [recipe cpu: zscore; notebook: notebook].
    #[arg(long, value_enum)]
    pub standardization: Option<Standardization>,
    /// Share of patches centred on a tumour voxel (nnU-Net oversampling; 0 = the notebook's sampler only)
    /// [recipe cpu: 0.5; notebook: 0.33].
    #[arg(long)]
    pub foreground_share: Option<f64>,
    /// The notebook's acceptance rule: a random patch is kept when its background fraction is below this [0.95].
    #[arg(long)]
    pub background_threshold: Option<f64>,
    /// Data augmentation: off, basic (flips, intensity scale and shift) or nnunet (nnU-Net's
    /// 3d_fullres set: rotation, scaling, noise, blur, brightness, contrast, low resolution, gamma,
    /// mirroring) [recipe cpu and notebook: basic].
    #[arg(long)]
    pub augmentation: Option<AugmentationPreset>,
    /// Same as --augmentation off.
    #[arg(long, conflicts_with = "augmentation")]
    pub no_augment: bool,
    /// Batches prepared ahead by the background sampler [2].
    #[arg(long)]
    pub queue: Option<usize>,
    /// Stop cleanly within this many seconds (counted from the start, data caching included):
    /// an epoch is begun only when it is expected to end in time (the last epoch's length), so
    /// the run ends after a complete checkpoint; `--resume` continues it.
    #[arg(long, value_name = "SECONDS")]
    pub time_limit: Option<f64>,
    /// What the convolutions multiply in: f32 (the default, exact) or bf16 products with f32 sums
    /// (forward passes and input gradients; needs AVX512_BF16; weights and weight gradients stay
    /// f32); auto: bf16 where the CPU has it. The run records the one chosen.
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    #[command(flatten)]
    pub compute: Compute,
}

/// The recipe with every given flag applied, checked before the run folder is made (a refused
/// start must leave nothing that blocks the retry).
pub fn config_from(args: &Args) -> Result<TrainConfig> {
    let Some(data) = args.input.clone() else {
        bail!("--input is required")
    };
    if !data.exists() {
        bail!("{}: path does not exist", data.display());
    }
    let mut c = args.recipe.config(data);
    if let Some(patch) = &args.patch {
        c.sampling.patch.size = super::three(patch, "--patch")?;
    }
    set(&mut c.sampling.batch_size, args.batch_size);
    set(&mut c.epochs, args.epochs);
    set(&mut c.steps_per_epoch, args.steps_per_epoch);
    set(&mut c.valid_patches_per_case, args.valid_patches);
    set(&mut c.learning_rate, args.learning_rate);
    set(&mut c.optimizer, args.optimizer);
    set(&mut c.schedule, args.schedule);
    set(&mut c.seed, args.seed);
    set(&mut c.train_fraction, args.train_fraction);
    if let (Some(folds), Some(fold)) = (args.folds, args.fold) {
        c.cross_validation = Some(Fold { folds, fold });
    }
    // Absolute, so that the run's record names the files from anywhere.
    let absolute = |path: &PathBuf| std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
    c.split_file = args.split.as_ref().map(absolute);
    c.init_weights = args.init_weights.as_ref().map(absolute);
    set(&mut c.model.depth, args.depth);
    set(&mut c.model.base_filters, args.base_filters);
    set(&mut c.model.upsampling, args.upsampling);
    set(&mut c.model.normalisation, args.norm);
    if let Some(targets) = args.targets {
        c.model.targets = targets;
        c.sampling.patch.targets = targets;
    }
    set(&mut c.loss, args.loss);
    set(&mut c.sampling.standardization, args.standardization);
    set(
        &mut c.sampling.patch.foreground_share,
        args.foreground_share,
    );
    set(
        &mut c.sampling.patch.background_threshold,
        args.background_threshold,
    );
    if let Some(preset) = args.augmentation {
        c.sampling.augmentation = AugmentationConfig::preset(preset);
    }
    if args.no_augment {
        c.sampling.augmentation = AugmentationConfig::off();
    }
    set(&mut c.queue_depth, args.queue);
    match (args.compute.backend, args.precision) {
        (_, None) => {}
        (brainseg_pipeline::Backend::Cpu, Some(precision)) => c.precision = precision.resolved(),
        // cuDNN's convolutions are f32 here; bf16 is the CPU kernels'.
        (_, Some(Precision::Bf16)) => bail!("--precision bf16 is for the CPU backend"),
        (_, Some(_)) => c.precision = Precision::F32,
    }
    c.model.validate()?;
    let [x, y, z] = c.sampling.patch.size;
    c.model.check_input([c.model.in_channels, x, y, z])?;
    if c.sampling.batch_size == 0 || c.epochs == 0 || c.steps_per_epoch == 0 {
        bail!("--batch-size, --epochs and --steps-per-epoch must be at least 1");
    }
    if !(c.learning_rate > 0.0 && c.learning_rate.is_finite()) {
        bail!("--learning-rate must be a positive number");
    }
    Ok(c)
}

/// A flag given overrides the recipe's value.
fn set<T>(field: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *field = value;
    }
}

pub fn run(args: Args) -> Result<()> {
    let time_limit = match args.time_limit {
        Some(s) if s.is_finite() && s >= 0.0 => Some(std::time::Duration::from_secs_f64(s)),
        Some(s) => bail!("--time-limit must be a number of seconds, 0 or more (got {s})"),
        None => None,
    };
    let backend = args.compute.apply();
    let (config, out) = match &args.resume {
        Some(run) => {
            if let Some(epochs) = args.epochs {
                brainseg_train::set_epochs(run, epochs)?;
            }
            (None, run.clone())
        }
        None => (
            Some(config_from(&args)?),
            args.out.clone().expect("required by clap"),
        ),
    };
    let device = training_device(backend)?;
    let mut progress = Reporter::new();
    let outcome = train_within(config, &out, &device, time_limit, |event| {
        brainseg_pipeline::Progress::training(&mut progress, &event)
    })?;
    drop(progress);
    let (history, trained) = (outcome.history, outcome.trained);
    if let Some(stop) = &outcome.stopped {
        let estimate = stop
            .next_epoch_estimate
            .map(|e| format!("; the next would take about {e:.0} s"))
            .unwrap_or_default();
        println!(
            "time limit: stopped after epoch {} of {} ({trained} this call, {:.0} s of {:.0} s used{estimate}); \
             continue with: brainseg train --resume {}",
            history.len(),
            outcome.epochs,
            stop.elapsed,
            time_limit.map(|l| l.as_secs_f64()).unwrap_or(0.0),
            out.display()
        );
    }
    let layout = RunLayout::new(&out);
    let best = outcome.best_epoch.and_then(|epoch| {
        let record = history.iter().find(|record| record.epoch == epoch)?;
        Some((record, brainseg_train::smoothed_dice_at(&history, epoch)?))
    });
    match best {
        Some((record, smoothed)) if trained > 0 => println!(
            "best epoch {} (mean region Dice {:.3}, moving average {:.3}); model: {}",
            record.epoch,
            record.dice_mean,
            smoothed,
            layout.best_model().display()
        ),
        // No epoch had a comparable (non-NaN) Dice: there is no best to name.
        None if trained > 0 => {}
        _ if outcome.stopped.is_some() => {}
        _ => println!(
            "nothing left to train in {}: all {} epochs are done (--epochs N continues it)",
            out.display(),
            history.len()
        ),
    }
    println!(
        "metrics: {}  curves: {}",
        layout.metrics().display(),
        layout.curves().display()
    );
    Ok(())
}
