//! One error type for bad input: always names the file and the problem, printed as one line.
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Error {
    /// The file or folder at fault, when there is one.
    pub path: Option<PathBuf>,
    /// What is wrong, in words a user understands.
    pub problem: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn at(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error {
            path: Some(path.as_ref().to_path_buf()),
            problem: problem.into(),
        }
    }
    pub fn msg(problem: impl Into<String>) -> Self {
        Error {
            path: None,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}: {}", p.display(), self.problem),
            None => write!(f, "{}", self.problem),
        }
    }
}

impl std::error::Error for Error {}
