//! Training's error: one line naming the file, case or setting and the problem.
use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub enum Error {
    /// A file could not be read or written, or holds bad data (names the file).
    File(brainseg_volume::Error),
    /// The run cannot start or go on: settings, data or a diverging loss.
    Run(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn at(path: &Path, problem: impl Into<String>) -> Error {
        Error::File(brainseg_volume::Error::at(path, problem))
    }
    pub fn run(problem: impl Into<String>) -> Error {
        Error::Run(problem.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File(e) => e.fmt(f),
            Error::Run(problem) => f.write_str(problem),
        }
    }
}

impl std::error::Error for Error {}

impl From<brainseg_volume::Error> for Error {
    fn from(e: brainseg_volume::Error) -> Error {
        Error::File(e)
    }
}

impl From<brainseg_infer::Error> for Error {
    fn from(e: brainseg_infer::Error) -> Error {
        Error::Run(e.to_string())
    }
}

impl From<brainseg_transforms::Error> for Error {
    fn from(e: brainseg_transforms::Error) -> Error {
        Error::Run(e.to_string())
    }
}

impl From<brainseg_model::Error> for Error {
    fn from(e: brainseg_model::Error) -> Error {
        match e {
            brainseg_model::Error::File(e) => Error::File(e),
            brainseg_model::Error::Invalid(problem) => Error::Run(problem),
        }
    }
}
