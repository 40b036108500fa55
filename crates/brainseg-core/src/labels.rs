//! Modalities, tumour classes and the two label numberings files use.

/// Channel order used everywhere inside brainseg.
pub const MODALITIES: [&str; 4] = ["FLAIR", "T1w", "T1Gd", "T2w"];

/// A tumour class: its MSD label is its place in [`Class::ALL`] plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// MSD 1 (BraTS 2): peritumoural edema.
    Edema,
    /// MSD 2 (BraTS 1): necrotic and non-enhancing tumour core.
    NonEnhancing,
    /// MSD 3 (BraTS 4; 3 in BraTS 2023): GD-enhancing tumour.
    Enhancing,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Edema, Class::NonEnhancing, Class::Enhancing];

    /// The class of an MSD label (None for background and unknown values).
    pub fn from_msd(label: u8) -> Option<Class> {
        Class::ALL.get((label as usize).checked_sub(1)?).copied()
    }

    pub fn msd_label(self) -> u8 {
        self as u8 + 1
    }

    /// The name people read, in pictures, legends and tables.
    pub const fn name(self) -> &'static str {
        match self {
            Class::Edema => "edema",
            Class::NonEnhancing => "non-enhancing tumour",
            Class::Enhancing => "enhancing tumour",
        }
    }

    /// The short name in metric keys and file columns (`edema_dice`, `non_enhancing_sensitivity`).
    pub const fn key(self) -> &'static str {
        match self {
            Class::Edema => "edema",
            Class::NonEnhancing => "non_enhancing",
            Class::Enhancing => "enhancing",
        }
    }

    /// The short name in table headers.
    pub const fn short_name(self) -> &'static str {
        match self {
            Class::Edema => "edema",
            Class::NonEnhancing => "non-enhancing",
            Class::Enhancing => "enhancing",
        }
    }
}

/// How a label file numbers the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LabelNumbering {
    /// 0 background, 1 edema, 2 non-enhancing tumour, 3 enhancing tumour (MSD Task01).
    Msd,
    /// 0 background, 1 necrotic/non-enhancing core, 2 edema, 4 enhancing tumour (BraTS).
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

    /// What a label map written in this numbering says in its NIfTI header's 80-byte description,
    /// so that it tells its own numbering wherever it is copied.
    pub const fn header_description(self) -> &'static str {
        match self {
            LabelNumbering::Msd => {
                "brainseg labels, MSD numbering: 1 edema, 2 non-enhancing, 3 enhancing"
            }
            LabelNumbering::Brats => {
                "brainseg labels, BraTS numbering: 1 necrotic core, 2 edema, 4 enhancing"
            }
        }
    }

    /// The numbering a header description written by [`Self::header_description`] names.
    pub fn from_header_description(description: &str) -> Option<LabelNumbering> {
        [LabelNumbering::Msd, LabelNumbering::Brats]
            .into_iter()
            .find(|n| description.trim_end_matches('\0') == n.header_description())
    }

    /// "MSD" or "BraTS", as people write them.
    pub const fn name(self) -> &'static str {
        match self {
            LabelNumbering::Msd => "MSD",
            LabelNumbering::Brats => "BraTS",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_descriptions_fit_nifti_and_name_their_numbering() {
        use super::LabelNumbering::{Brats, Msd};
        for n in [Msd, Brats] {
            // NIfTI-1's descrip is 80 bytes, NUL-terminated.
            assert!(n.header_description().len() < 80);
            let padded = format!("{:\0<80}", n.header_description());
            assert_eq!(
                super::LabelNumbering::from_header_description(&padded),
                Some(n)
            );
        }
        assert_eq!(
            super::LabelNumbering::from_header_description("FSL5.0"),
            None
        );
        assert_eq!(super::LabelNumbering::from_header_description(""), None);
    }

    use super::Class;
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

    #[test]
    fn classes_follow_msd_labels() {
        assert_eq!(Class::from_msd(0), None);
        assert_eq!(Class::from_msd(2), Some(Class::NonEnhancing));
        assert_eq!(Class::from_msd(4), None);
        assert_eq!(Class::ALL.map(Class::msd_label), [1, 2, 3]);
    }
}
