//! Segmentation metrics on plain `ndarray` arrays.
//!
//! Two levels, as the seed notebook and the BraTS challenge score them:
//! - [`patch`]: per-class Dice, soft Dice loss, sensitivity and specificity on probability or one-hot arrays
//!   `(C, X, Y, Z)` (background dropped), exactly the seed's formulas;
//! - [`CaseMetrics`]: a whole case from two label maps `(X, Y, Z)` in MSD numbering (0 background, 1 edema,
//!   2 non-enhancing tumour, 3 enhancing tumour): per-class Dice / sensitivity / specificity and, per BraTS region
//!   (WT, TC, ET), Dice and HD95 in millimetres ([`distance`]), by default in the BraTS/MONAI convention (the
//!   larger of the two directed 95th percentiles), optionally MedPy's pooled one ([`HausdorffConvention`]); every
//!   case, summary, table and file says which.
//!
//! A metric that has no meaning on the given data (a class absent from both arrays) is `None`, never NaN.
//! [`Summary`] aggregates cases and renders them as a text table, CSV or JSON.

mod case;
pub mod distance;
mod error;
pub mod patch;
mod summary;

pub use case::{CaseMetrics, ClassMetrics, RegionMetrics, HD95_ONE_EMPTY_MM};
pub use distance::HausdorffConvention;
pub use error::{Error, Result};
pub use patch::{Counts, SensSpec};
pub use summary::{sens_spec_table, CaseRow, MetricStats, Summary, METRIC_KEYS};

pub use brainseg_core::{Class, Region};
