//! The viewer's own error: a file it cannot read or write (naming the file), a fallback picture
//! it cannot draw, or a viewer that cannot be built or served (no NiiVue bundle, a busy port).
use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub enum Error {
    File(brainseg_volume::Error),
    Pictures(brainseg_visualize::Error),
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File(e) => e.fmt(f),
            Error::Pictures(e) => e.fmt(f),
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

impl From<brainseg_visualize::Error> for Error {
    fn from(e: brainseg_visualize::Error) -> Error {
        Error::Pictures(e)
    }
}
