//! The files of a run folder, named once. `brainseg train` writes them; prediction, reports and
//! the demo read them.
use std::path::{Path, PathBuf};

/// A run folder: everything needed to watch, resume or reuse a run.
#[derive(Debug, Clone)]
pub struct RunLayout {
    pub root: PathBuf,
}

impl RunLayout {
    pub fn new(root: impl Into<PathBuf>) -> RunLayout {
        RunLayout { root: root.into() }
    }
    /// The whole recipe ([`crate::TrainConfig`]).
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// Train/validation case ids (editable before the first epoch).
    pub fn split(&self) -> PathBuf {
        self.root.join("split.json")
    }
    /// One row per epoch.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    /// Loss and validation Dice per epoch, drawn.
    pub fn curves(&self) -> PathBuf {
        self.root.join("curves.png")
    }
    /// The model of the epoch with the best [`crate::trainer::smoothed_dice`] (a [`crate::model_file`]).
    pub fn best_model(&self) -> PathBuf {
        self.root.join("best.safetensors")
    }
    /// The model of the last epoch (a [`crate::model_file`]; nnU-Net's `checkpoint_final`): unlike
    /// the best one, not chosen on the validation cases, so it scores them without bias.
    pub fn last_model(&self) -> PathBuf {
        self.root.join("last.safetensors")
    }
    /// The last epoch's weights, optimiser state and progress.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    /// The checkpoint being written; swapped in when complete.
    pub fn checkpoint_tmp(&self) -> PathBuf {
        self.root.join("checkpoint.tmp")
    }
    /// The previous checkpoint, during the swap.
    pub fn checkpoint_old(&self) -> PathBuf {
        self.root.join("checkpoint.old")
    }
    /// Decoded cases, memory-mapped.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn path(&self) -> &Path {
        &self.root
    }
}
