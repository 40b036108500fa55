//! The seed notebook's own patch files: HDF5 with `x` (4, X, Y, Z) float64 and `y` (X, Y, Z, 4) one-hot,
//! listed in a `config.json` {"train": [...], "valid": [...]}.
use crate::Result;
use ndarray::Array4;
use std::path::{Path, PathBuf};

/// One seed patch: `x` is `(4, X, Y, Z)` raw intensities; `y` is `(3, X, Y, Z)` one-hot without background.
#[derive(Debug, Clone)]
pub struct SeedPatch { pub x: Array4<f32>, pub y: Array4<f32> }

pub fn read_seed_patch(_path: &Path) -> Result<SeedPatch> { todo!() }

/// File lists of a seed `config.json`, resolved against `<dir>/train` and `<dir>/valid`.
pub fn read_seed_config(_config: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> { todo!() }
