//! brainseg-train: the data pipeline and the training loop (`brainseg train`).
//!
//! A run starts from a [`Recipe`] (or a [`TrainConfig`] of its own) and is driven by a
//! [`Trainer`] in stages (start or resume, then per epoch: steps, validation, best model,
//! checkpoint, log). Its folder ([`RunLayout`]) holds everything needed to watch, resume or reuse
//! it: `config.json` (the whole recipe), `split.json` (editable train/validation ids),
//! `metrics.csv` and `curves.png` (one row/point per epoch), `best.safetensors` and
//! `last.safetensors` ([`model_file`]s of the epoch with the best moving-average validation Dice,
//! as nnU-Net chooses, and of the last one), `checkpoint/` (last epoch: weights, optimiser
//! state, progress) and `cache/` (decoded cases).
pub mod cache;
mod checkpoint;
pub mod config;
pub mod data;
mod error;
pub mod model_file;
pub mod recipe;
pub mod run_layout;
pub mod trainer;

pub use config::{nnunet_recipe, Fold, LossKind, Optimizer, Schedule, TrainConfig};
pub use data::{Batch, PatchSource, SamplingConfig};
pub use error::{Error, Result};
pub use model_file::ModelFile;
pub use recipe::Recipe;
pub use run_layout::RunLayout;
pub use trainer::{
    set_epochs, smoothed_dice, smoothed_dice_at, train, training_loss, EpochRecord, TrainEvent,
    Trainer, Validation,
};
