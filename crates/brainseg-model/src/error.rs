//! The model's own error: a model file that cannot be read or written (naming the file), or a
//! configuration or input the network cannot take.
use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub enum Error {
    /// A model or checkpoint file: missing, unreadable, or holding the wrong tensors.
    File(brainseg_volume::Error),
    /// A configuration the network cannot be built with, an input it cannot take, or a device
    /// that is not there.
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn at(path: &Path, problem: impl Into<String>) -> Error {
        Error::File(brainseg_volume::Error::at(path, problem))
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
