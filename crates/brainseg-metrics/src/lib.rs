//! brainseg-metrics
