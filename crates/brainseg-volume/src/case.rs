//! A case: four co-registered modalities and an optional label map in MSD numbering.
use crate::Geometry;
use ndarray::{Array3, Array4};
use std::path::PathBuf;

/// Channel order used everywhere inside brainseg.
pub const MODALITIES: [&str; 4] = ["FLAIR", "T1w", "T1Gd", "T2w"];
/// Names of the label classes 1..=3 in MSD numbering.
pub const CLASS_NAMES: [&str; 3] = ["edema", "non-enhancing tumour", "enhancing tumour"];

#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    /// `(4, X, Y, Z)` in canonical orientation, channel order [`MODALITIES`].
    pub image: Array4<f32>,
    /// MSD numbering 0..=3, canonical orientation.
    pub label: Option<Array3<u8>>,
    pub geometry: Geometry,
    /// Files the case was read from (for messages).
    pub sources: Vec<PathBuf>,
}

/// Label numbering on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LabelNumbering {
    /// 0 background, 1 edema, 2 non-enhancing tumour, 3 enhancing tumour.
    Msd,
    /// 0 background, 1 necrotic/non-enhancing core, 2 edema, 4 enhancing tumour.
    Brats,
}

impl LabelNumbering {
    /// MSD label -> this numbering.
    pub fn from_msd(self, _msd: u8) -> u8 { todo!() }
    /// This numbering -> MSD label; None for a value outside the known set.
    pub fn to_msd(self, _value: u8) -> Option<u8> { todo!() }
}
