//! Training targets from MSD label maps (0 background, 1 edema, 2 non-enhancing, 3 enhancing).
//!
//! The seed trains on per-class one-hot channels without background; BraTS-style systems train
//! sigmoid outputs on the nested regions WT = {1,2,3}, TC = {2,3}, ET = {3}, which is what the
//! challenge scores.
use brainseg_volume::case::CLASS_NAMES;
use ndarray::{Array4, ArrayView3, Axis, Zip};

/// Names of the region channels, in channel order.
pub const REGION_NAMES: [&str; 3] = ["whole tumour", "tumour core", "enhancing tumour"];

/// What a model's three output channels mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// The seed's: channel c is MSD class c + 1 (edema, non-enhancing, enhancing).
    #[default]
    Classes,
    /// BraTS regions: channel 0 WT = {1,2,3}, 1 TC = {2,3}, 2 ET = {3}.
    Regions,
}

impl Targets {
    /// `(3, X, Y, Z)` 0/1 target channels for an MSD label map.
    pub fn encode(self, label: ArrayView3<u8>) -> Array4<f32> {
        match self {
            Targets::Classes => one_hot_classes(label),
            Targets::Regions => region_targets(label),
        }
    }

    /// Human-readable name of each channel.
    pub fn channel_names(self) -> [&'static str; 3] {
        match self {
            Targets::Classes => CLASS_NAMES,
            Targets::Regions => REGION_NAMES,
        }
    }
}

/// The seed's target: one-hot over MSD classes 1..=3, background dropped. Values above 3 set no channel.
pub fn one_hot_classes(label: ArrayView3<u8>) -> Array4<f32> {
    encode_with(label, |channel, value| value as usize == channel + 1)
}

/// BraTS region channels WT = {1,2,3}, TC = {2,3}, ET = {3} (MSD numbering in, 0/1 out).
pub fn region_targets(label: ArrayView3<u8>) -> Array4<f32> {
    // Region c holds the labels >= c + 1 among 1..=3: WT >= 1, TC >= 2, ET >= 3.
    encode_with(label, |channel, value| {
        (1..=3).contains(&value) && value as usize > channel
    })
}

fn encode_with(label: ArrayView3<u8>, member: impl Fn(usize, u8) -> bool) -> Array4<f32> {
    let (x, y, z) = label.dim();
    let mut target = Array4::<f32>::zeros((3, x, y, z));
    for (channel, mut plane) in target.axis_iter_mut(Axis(0)).enumerate() {
        Zip::from(&mut plane)
            .and(&label)
            .for_each(|t, &value| *t = member(channel, value) as u8 as f32);
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn labels_0_to_4() -> Array3<u8> {
        Array3::from_shape_vec((5, 1, 1), vec![0, 1, 2, 3, 4]).unwrap()
    }

    #[test]
    fn classes_are_one_hot_without_background() {
        let t = one_hot_classes(labels_0_to_4().view());
        let got: Vec<Vec<f32>> = (0..3)
            .map(|c| t.index_axis(Axis(0), c).iter().copied().collect())
            .collect();
        assert_eq!(got[0], vec![0., 1., 0., 0., 0.]);
        assert_eq!(got[1], vec![0., 0., 1., 0., 0.]);
        assert_eq!(got[2], vec![0., 0., 0., 1., 0.]);
    }

    #[test]
    fn regions_are_nested() {
        let t = Targets::Regions.encode(labels_0_to_4().view());
        let got: Vec<Vec<f32>> = (0..3)
            .map(|c| t.index_axis(Axis(0), c).iter().copied().collect())
            .collect();
        assert_eq!(got[0], vec![0., 1., 1., 1., 0.], "WT = 1,2,3");
        assert_eq!(got[1], vec![0., 0., 1., 1., 0.], "TC = 2,3");
        assert_eq!(got[2], vec![0., 0., 0., 1., 0.], "ET = 3");
    }
}
