//! brainseg-train: the data pipeline and the training loop (`brainseg train`).
//!
//! A run directory holds everything needed to watch, resume or reuse a run:
//! `config.json` (the whole recipe), `split.json` (editable train/validation ids), `metrics.csv`
//! and `curves.png` (one row/point per epoch), `best.safetensors` (best validation Dice),
//! `checkpoint/` (last epoch: weights, optimizer state, progress) and `cache/` (decoded cases).
pub mod data;
pub mod model_file;
pub mod recipe;
pub mod run_layout;
pub mod training;

pub use data::{Batch, PatchSource, SamplingConfig};
pub use model_file::ModelFile;
pub use recipe::Recipe;
pub use run_layout::RunLayout;
pub use training::{
    nnunet_recipe, train, training_loss, EpochRecord, LossKind, Optimizer, Schedule, TrainConfig,
    TrainEvent,
};
