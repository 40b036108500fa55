//! The pictures' own error, and the shape check pictures need.
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Inputs that do not fit together (shapes that differ, a PNG that is not an RGB one).
    Invalid(String),
    /// A picture or page could not be written; names the file.
    Write(brainseg_volume::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn msg(problem: impl Into<String>) -> Error {
        Error::Invalid(problem.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(problem) => f.write_str(problem),
            Error::Write(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<brainseg_volume::Error> for Error {
    fn from(e: brainseg_volume::Error) -> Error {
        Error::Write(e)
    }
}

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
