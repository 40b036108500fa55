//! `brainseg train`: train a U-Net on a dataset or on the seed's patch files; `--resume` continues a run.
use anyhow::{bail, Result};
use brainseg_model::{Normalisation, Targets, UNet3dConfig, Upsampling};
use brainseg_train::{train, LossKind, SamplingConfig, TrainConfig, TrainEvent};
use brainseg_transforms::{AugmentConfig, PatchConfig, Standardization};
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum NormArg {
    None,
    Batch,
    Instance,
}
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum UpArg {
    Nearest,
    Transposed,
}
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TargetArg {
    /// The seed's: one sigmoid channel per class (edema, non-enhancing, enhancing).
    Classes,
    /// BraTS regions WT, TC, ET (nnU-Net's region-based training).
    Regions,
}
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LossArg {
    /// The seed's soft Dice loss.
    SoftDice,
    /// Soft Dice + binary cross-entropy.
    DiceBce,
}
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum StdArg {
    /// The seed's: per patch, per channel and z-slice.
    Seed,
    /// Per volume and channel over brain (non-zero) voxels, as nnU-Net.
    Zscore,
}

#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (MSD or raw BraTS), or a seed patch folder holding config.json + train/ + valid/.
    #[arg(long, required_unless_present = "resume")]
    pub data: Option<PathBuf>,
    /// Run folder to create (config, split, metrics.csv, curves.png, checkpoints, best.safetensors).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint (all other options come from its config.json).
    #[arg(long, conflicts_with_all = ["data", "out"])]
    pub resume: Option<PathBuf>,
    /// Patch size x,y,z (each divisible by 2^(depth-1)).
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "160,160,16")]
    pub patch: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    pub batch_size: usize,
    /// Epochs in total [default: 10]; with --resume, extends a finished run to this many.
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 20)]
    pub steps_per_epoch: usize,
    /// Validation patches drawn from each validation case.
    #[arg(long, default_value_t = 4)]
    pub valid_patches: usize,
    #[arg(long, default_value_t = 1e-5)]
    pub learning_rate: f64,
    /// Seed for the split, the weights, the patches and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of cases used for training; the rest validate (split.json in the run folder can be edited).
    #[arg(long, default_value_t = 0.8)]
    pub train_fraction: f64,
    /// U-Net depth (levels).
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Filters of the first level (doubling per level).
    #[arg(long, default_value_t = 32)]
    pub base_filters: usize,
    #[arg(long, value_enum, default_value = "nearest")]
    pub upsampling: UpArg,
    #[arg(long, value_enum, default_value = "none")]
    pub norm: NormArg,
    #[arg(long, value_enum, default_value = "classes")]
    pub targets: TargetArg,
    #[arg(long, value_enum, default_value = "soft-dice")]
    pub loss: LossArg,
    #[arg(long, value_enum, default_value = "seed")]
    pub standardization: StdArg,
    /// Share of patches centred on a tumour voxel (nnU-Net oversampling; 0 = the seed's sampler only).
    #[arg(long, default_value_t = 0.33)]
    pub foreground_share: f64,
    /// The seed's acceptance rule: a random patch is kept when its background fraction is below this.
    #[arg(long, default_value_t = 0.95)]
    pub background_threshold: f64,
    /// Turn off augmentation (flips, intensity scale and shift).
    #[arg(long)]
    pub no_augment: bool,
    /// Batches prepared ahead by the background sampler.
    #[arg(long, default_value_t = 2)]
    pub queue: usize,
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: super::Backend,
}

pub fn config_from(args: &Args) -> Result<TrainConfig> {
    let Some(data) = args.data.clone() else {
        bail!("--data is required")
    };
    if !data.exists() {
        bail!("{}: path does not exist", data.display());
    }
    let patch: [usize; 3] = args
        .patch
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--patch needs 3 sizes"))?;
    let targets = match args.targets {
        TargetArg::Classes => Targets::Classes,
        TargetArg::Regions => Targets::Regions,
    };
    let model = UNet3dConfig {
        depth: args.depth,
        base_filters: args.base_filters,
        upsampling: match args.upsampling {
            UpArg::Nearest => Upsampling::Nearest,
            UpArg::Transposed => Upsampling::TransposedConv,
        },
        normalisation: match args.norm {
            NormArg::None => Normalisation::None,
            NormArg::Batch => Normalisation::Batch,
            NormArg::Instance => Normalisation::Instance,
        },
        targets,
        ..UNet3dConfig::default()
    };
    // Checked before the run folder is made: a refused start must not leave a config.json that blocks the retry.
    model.validate()?;
    model.check_input([model.in_channels, patch[0], patch[1], patch[2]])?;
    let sampling = SamplingConfig {
        patch: PatchConfig {
            size: patch,
            background_threshold: args.background_threshold,
            foreground_share: args.foreground_share,
            targets: match targets {
                Targets::Classes => brainseg_transforms::Targets::Classes,
                Targets::Regions => brainseg_transforms::Targets::Regions,
            },
            ..PatchConfig::default()
        },
        standardization: match args.standardization {
            StdArg::Seed => Standardization::SeedSlices,
            StdArg::Zscore => Standardization::ZScoreBrain,
        },
        augment: if args.no_augment {
            AugmentConfig::off()
        } else {
            AugmentConfig::default()
        },
        batch_size: args.batch_size,
    };
    let epochs = args.epochs.unwrap_or(10);
    if args.batch_size == 0 || epochs == 0 || args.steps_per_epoch == 0 {
        bail!("--batch-size, --epochs and --steps-per-epoch must be at least 1");
    }
    if !(args.learning_rate > 0.0 && args.learning_rate.is_finite()) {
        bail!("--learning-rate must be a positive number");
    }
    Ok(TrainConfig {
        data,
        model,
        sampling,
        epochs,
        steps_per_epoch: args.steps_per_epoch,
        valid_patches_per_case: args.valid_patches,
        learning_rate: args.learning_rate,
        loss: match args.loss {
            LossArg::SoftDice => LossKind::SoftDice,
            LossArg::DiceBce => LossKind::DiceBce,
        },
        optimizer: brainseg_train::Optimizer::Adam,
        schedule: brainseg_train::Schedule::Constant,
        seed: args.seed,
        train_fraction: args.train_fraction,
        queue_depth: args.queue,
    })
}

/// Run training with progress bars; used by `train` and `demo`. Returns the run's whole history and how
/// many of its epochs this call trained (0 when a resumed run was already finished).
pub fn run_training(
    config: Option<TrainConfig>,
    out: &std::path::Path,
    backend: super::Backend,
) -> Result<(Vec<brainseg_train::EpochRecord>, usize)> {
    let device = super::training_device(backend)?;
    let cache_bar = super::progress::bar(0, "decoding");
    let step_bar = super::progress::bar(0, "epoch");
    step_bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    let mut trained = 0;
    let history = train(config, out, &device, |event| match event {
        TrainEvent::CaseCached { id, done, total } => {
            cache_bar.set_length(total as u64);
            cache_bar.set_position(done as u64);
            cache_bar.set_message(id.to_string());
            if done == total {
                cache_bar.finish_and_clear();
            }
        }
        TrainEvent::Step {
            epoch,
            step,
            steps,
            loss,
        } => {
            if step == 1 {
                step_bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                step_bar.reset();
                step_bar.set_length(steps as u64);
                step_bar.set_prefix(format!("epoch {epoch}"));
            }
            step_bar.set_position(step as u64);
            step_bar.set_message(format!("loss {loss:.4}"));
        }
        TrainEvent::Validating { .. } => step_bar.set_message("validating".to_string()),
        TrainEvent::Epoch(r) => {
            trained += 1;
            step_bar.finish_and_clear();
            let f = |v: Option<f64>| {
                v.map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "  -  ".into())
            };
            eprintln!(
                "epoch {:>3}: train loss {:.4}  valid loss {:.4}  Dice ed/ne/en {}/{}/{}  WT/TC/ET {}/{}/{}  ({:.0} s)",
                r.epoch, r.train_loss, r.valid_loss, f(r.dice_edema), f(r.dice_non_enhancing), f(r.dice_enhancing), f(r.dice_wt), f(r.dice_tc), f(r.dice_et), r.seconds
            );
        }
    })?;
    Ok((history, trained))
}

pub fn run(args: Args) -> Result<()> {
    let (config, out) = match &args.resume {
        Some(run) => {
            if let Some(epochs) = args.epochs {
                brainseg_train::training::set_epochs(run, epochs)?;
            }
            (None, run.clone())
        }
        None => (
            Some(config_from(&args)?),
            args.out.clone().expect("required by clap"),
        ),
    };
    let (history, trained) = run_training(config, &out, args.backend)?;
    match history
        .iter()
        .max_by(|a, b| a.dice_mean.total_cmp(&b.dice_mean))
    {
        Some(best) if trained > 0 => println!(
            "best epoch {} (mean region Dice {:.3}); model: {}",
            best.epoch,
            best.dice_mean,
            out.join("best.safetensors").display()
        ),
        _ => println!(
            "nothing left to train in {}: all {} epochs are done (--epochs N continues it)",
            out.display(),
            history.len()
        ),
    }
    println!(
        "metrics: {}  curves: {}",
        out.join("metrics.csv").display(),
        out.join("curves.png").display()
    );
    Ok(())
}
