//! The pipeline's one error type (file and problem on one line), and the shape check pictures need.
pub use brainseg_volume::{Error, Result};

/// Fails unless two arrays that describe the same voxels have the same shape.
pub(crate) fn check_same_shape(what: &str, first: &[usize], second: &[usize]) -> Result<()> {
    if first == second {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "{what}: shapes {first:?} and {second:?} differ"
        )))
    }
}
