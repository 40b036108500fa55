//! Label maps given by the user (predictions, ground truth), read into MSD numbering.
use crate::{Error, Result};
use brainseg_core::LabelNumbering;
use brainseg_volume::{read_label, Geometry};
use ndarray::Array3;
use std::path::Path;

/// Reads a label map stored in `numbering` and converts it to MSD numbering; with `shape`, the map
/// must have that shape.
pub fn read_label_msd(
    path: &Path,
    numbering: LabelNumbering,
    shape: Option<&[usize]>,
) -> Result<(Array3<u8>, Geometry)> {
    let (mut labels, geometry) = read_label(path)?;
    if let Some(shape) = shape.filter(|&s| s != labels.shape()) {
        return Err(Error::invalid(format!(
            "{}: label shape {:?} does not match the image's {:?}",
            path.display(),
            labels.shape(),
            shape
        )));
    }
    for v in labels.iter_mut() {
        *v = numbering.to_msd(*v).ok_or_else(|| {
            Error::invalid(format!(
                "{}: label value {} is not a {} label ({})",
                path.display(),
                *v,
                numbering.name(),
                numbering.known_values()
            ))
        })?;
    }
    Ok((labels, geometry))
}
