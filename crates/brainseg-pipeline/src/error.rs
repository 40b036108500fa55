//! The pipeline's error: what went wrong, in one line naming the file or case and the problem.
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Bad input or a failed read or write, from the stage crates (names the file).
    Input(brainseg_volume::Error),
    /// A metric that cannot be computed on the given label maps.
    Metrics(brainseg_metrics::Error),
    /// Training refused or failed.
    Training(String),
    /// Settings or inputs the pipeline refuses.
    Invalid(String),
    /// A picture or report that cannot be drawn or written.
    Pictures(brainseg_visualize::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(problem: impl Into<String>) -> Error {
        Error::Invalid(problem.into())
    }
    /// The same error with `context` ("case X") in front.
    pub fn context(self, context: &str) -> Error {
        Error::Invalid(format!("{context}: {self}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(e) => e.fmt(f),
            Error::Metrics(e) => e.fmt(f),
            Error::Pictures(e) => e.fmt(f),
            Error::Training(problem) | Error::Invalid(problem) => f.write_str(problem),
        }
    }
}

impl std::error::Error for Error {}

impl From<brainseg_volume::Error> for Error {
    fn from(e: brainseg_volume::Error) -> Error {
        Error::Input(e)
    }
}

impl From<brainseg_metrics::Error> for Error {
    fn from(e: brainseg_metrics::Error) -> Error {
        Error::Metrics(e)
    }
}

impl From<brainseg_transforms::Error> for Error {
    fn from(e: brainseg_transforms::Error) -> Error {
        Error::Invalid(e.to_string())
    }
}

impl From<brainseg_visualize::Error> for Error {
    fn from(e: brainseg_visualize::Error) -> Error {
        Error::Pictures(e)
    }
}

impl From<brainseg_infer::Error> for Error {
    fn from(e: brainseg_infer::Error) -> Error {
        Error::Invalid(e.to_string())
    }
}

impl From<brainseg_model::Error> for Error {
    fn from(e: brainseg_model::Error) -> Error {
        match e {
            brainseg_model::Error::File(e) => Error::Input(e),
            brainseg_model::Error::Invalid(problem) => Error::Invalid(problem),
        }
    }
}

impl From<brainseg_viewer::Error> for Error {
    fn from(e: brainseg_viewer::Error) -> Error {
        match e {
            brainseg_viewer::Error::File(e) => Error::Input(e),
            brainseg_viewer::Error::Pictures(e) => Error::Pictures(e),
            brainseg_viewer::Error::Invalid(problem) => Error::Invalid(problem),
        }
    }
}

impl From<brainseg_dicom::Error> for Error {
    fn from(e: brainseg_dicom::Error) -> Error {
        match e {
            brainseg_dicom::Error::File(e) => Error::Input(e),
            brainseg_dicom::Error::Invalid(problem) => Error::Invalid(problem),
        }
    }
}
