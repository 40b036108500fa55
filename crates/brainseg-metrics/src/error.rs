//! The one error of this crate: inputs that do not fit together (shapes, label values), said in words.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What is wrong, in words a user understands.
    pub problem: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn new(problem: impl Into<String>) -> Self {
        Error {
            problem: problem.into(),
        }
    }

    /// Fails unless the prediction and the ground truth have the same shape.
    pub(crate) fn check_shapes(prediction: &[usize], truth: &[usize]) -> Result<()> {
        if prediction == truth {
            Ok(())
        } else {
            Err(Error::new(format!(
                "prediction shape {prediction:?} differs from ground-truth shape {truth:?}"
            )))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

impl std::error::Error for Error {}
