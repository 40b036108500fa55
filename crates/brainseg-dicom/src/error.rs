//! DICOM reading's own error: a file or series that cannot be read (naming the file), or a
//! study that cannot make a case (modalities missing, grids that do not meet).
use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub enum Error {
    /// A DICOM file or folder: missing, truncated, without pixels, an unsupported syntax.
    File(brainseg_volume::Error),
    /// A study or series that cannot be used as asked (which series, which grid).
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn at(path: impl AsRef<Path>, problem: impl Into<String>) -> Error {
        Error::File(brainseg_volume::Error::at(path.as_ref(), problem))
    }
    pub fn msg(problem: impl Into<String>) -> Error {
        Error::Invalid(problem.into())
    }
    /// The file it concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::File(e) => e.path.as_deref(),
            Error::Invalid(_) => None,
        }
    }
    /// What is wrong, without the file.
    pub fn problem(&self) -> &str {
        match self {
            Error::File(e) => &e.problem,
            Error::Invalid(problem) => problem,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File(e) => e.fmt(f),
            Error::Invalid(problem) => f.write_str(problem),
        }
    }
}

impl std::error::Error for Error {}

impl From<brainseg_volume::Error> for Error {
    fn from(e: brainseg_volume::Error) -> Error {
        Error::File(e)
    }
}
