//! brainseg-train
