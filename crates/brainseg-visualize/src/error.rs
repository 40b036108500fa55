//! One error type for bad input: names the file when there is one, and the problem, printed as one line.
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Error {
    /// The file at fault, when there is one.
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", path.display(), self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

impl std::error::Error for Error {}
