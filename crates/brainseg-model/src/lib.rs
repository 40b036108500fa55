//! brainseg-model
