//! brainseg-infer
