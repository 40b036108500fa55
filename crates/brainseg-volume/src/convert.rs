//! Raw BraTS -> MSD layout (dataset.json, 4-D imagesTr, labelsTr in MSD numbering).
use crate::Result;
use std::path::Path;

/// Convert a dataset folder to the MSD layout under `out`; returns the number of cases written.
pub fn to_msd(_src: &Path, _out: &Path) -> Result<usize> { todo!() }
