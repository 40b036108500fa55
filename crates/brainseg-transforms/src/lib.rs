//! brainseg-transforms
