//! The BraTS evaluation regions and what a model's output channels mean.
use crate::labels::Class;
use serde::{Deserialize, Serialize};

/// The BraTS evaluation regions: nested unions of the MSD classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Region {
    /// WT: labels 1, 2, 3.
    WholeTumour,
    /// TC: labels 2, 3.
    TumourCore,
    /// ET: label 3.
    EnhancingTumour,
}

impl Region {
    pub const ALL: [Region; 3] = [
        Region::WholeTumour,
        Region::TumourCore,
        Region::EnhancingTumour,
    ];

    /// "WT", "TC" or "ET", as challenge tables write them.
    pub const fn abbreviation(self) -> &'static str {
        match self {
            Region::WholeTumour => "WT",
            Region::TumourCore => "TC",
            Region::EnhancingTumour => "ET",
        }
    }

    /// The name spelled out.
    pub const fn name(self) -> &'static str {
        match self {
            Region::WholeTumour => "whole tumour",
            Region::TumourCore => "tumour core",
            Region::EnhancingTumour => "enhancing tumour",
        }
    }

    /// Whether a voxel with this MSD label belongs to the region.
    pub fn contains(self, label: u8) -> bool {
        match self {
            Region::WholeTumour => (1..=3).contains(&label),
            Region::TumourCore => label == 2 || label == 3,
            Region::EnhancingTumour => label == 3,
        }
    }
}

/// What a model's three output channels mean, so training can encode labels and inference decode them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Targets {
    /// The notebook's: one sigmoid channel per class (edema, non-enhancing, enhancing).
    #[default]
    Classes,
    /// BraTS regions WT, TC, ET (nnU-Net's region-based training).
    Regions,
}

impl Targets {
    /// Name of each output channel, in order.
    pub fn channel_names(self) -> [&'static str; 3] {
        match self {
            Targets::Classes => Class::ALL.map(Class::name),
            Targets::Regions => Region::ALL.map(Region::name),
        }
    }

    /// Abbreviated channel names for table headers.
    pub fn channel_abbreviations(self) -> [&'static str; 3] {
        match self {
            Targets::Classes => Class::ALL.map(Class::short_name),
            Targets::Regions => Region::ALL.map(Region::abbreviation),
        }
    }

    /// Whether a voxel with this MSD label is set in output channel `channel`.
    pub fn channel_contains(self, channel: usize, label: u8) -> bool {
        match self {
            Targets::Classes => Class::from_msd(label).is_some_and(|c| c as usize == channel),
            Targets::Regions => Region::ALL.get(channel).is_some_and(|r| r.contains(label)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Region, Targets};

    #[test]
    fn regions_are_nested_unions_of_classes() {
        let members = |r: Region| (0..=4).filter(|&l| r.contains(l)).collect::<Vec<u8>>();
        assert_eq!(members(Region::WholeTumour), [1, 2, 3]);
        assert_eq!(members(Region::TumourCore), [2, 3]);
        assert_eq!(members(Region::EnhancingTumour), [3]);
    }

    #[test]
    fn channels_of_each_target_kind() {
        // Classes: channel c is MSD label c + 1 only.
        let set = |t: Targets, l: u8| (0..3).map(|c| t.channel_contains(c, l)).collect::<Vec<_>>();
        assert_eq!(set(Targets::Classes, 2), [false, true, false]);
        assert_eq!(set(Targets::Regions, 2), [true, true, false]);
        assert_eq!(set(Targets::Regions, 3), [true, true, true]);
        assert_eq!(set(Targets::Regions, 0), [false, false, false]);
        assert_eq!(set(Targets::Classes, 4), [false, false, false]);
    }

    #[test]
    fn old_config_files_still_read() {
        // Run configs written before this crate existed spell targets in snake case.
        let t: Targets = serde_json::from_str("\"regions\"").unwrap();
        assert_eq!(t, Targets::Regions);
        let r: Region = serde_json::from_str("\"TumourCore\"").unwrap();
        assert_eq!(r, Region::TumourCore);
    }
}
