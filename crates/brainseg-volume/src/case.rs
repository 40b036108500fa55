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
    /// MSD label -> this numbering (BraTS writes enhancing tumour as 4, as BraTS 2017-2021 do).
    /// Values outside 0..=3 are returned unchanged.
    pub fn from_msd(self, msd: u8) -> u8 {
        match (self, msd) {
            (LabelNumbering::Brats, 1) => 2,
            (LabelNumbering::Brats, 2) => 1,
            (LabelNumbering::Brats, 3) => 4,
            (_, v) => v,
        }
    }

    /// This numbering -> MSD label; None for a value outside the known set.
    /// BraTS 2023 files (`-seg`) mark enhancing tumour 3 instead of 4; both map to MSD 3.
    pub fn to_msd(self, value: u8) -> Option<u8> {
        match (self, value) {
            (LabelNumbering::Msd, 0..=3) => Some(value),
            (LabelNumbering::Brats, 0) => Some(0),
            (LabelNumbering::Brats, 1) => Some(2),
            (LabelNumbering::Brats, 2) => Some(1),
            (LabelNumbering::Brats, 3 | 4) => Some(3),
            _ => None,
        }
    }

    /// The values a label file in this numbering may hold, for messages.
    pub fn known_values(self) -> &'static str {
        match self {
            LabelNumbering::Msd => "0, 1, 2, 3",
            LabelNumbering::Brats => "0, 1, 2, 4 (or 3 for enhancing tumour, as BraTS 2023)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LabelNumbering::{Brats, Msd};

    #[test]
    fn brats_msd_mapping() {
        assert_eq!(
            [0, 1, 2, 4].map(|v| Brats.to_msd(v)),
            [Some(0), Some(2), Some(1), Some(3)]
        );
        assert_eq!(Brats.to_msd(5), None);
        assert_eq!(Msd.to_msd(4), None);
        assert_eq!([0, 1, 2, 3].map(|v| Brats.from_msd(v)), [0, 2, 1, 4]);
        for v in 0..=3 {
            assert_eq!(Msd.to_msd(Msd.from_msd(v)), Some(v));
            assert_eq!(Brats.to_msd(Brats.from_msd(v)), Some(v));
        }
    }
}
