//! brainseg-visualize
