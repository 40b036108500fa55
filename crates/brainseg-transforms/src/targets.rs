//! Training targets from MSD label maps (0 background, 1 edema, 2 non-enhancing, 3 enhancing).
//!
//! The seed trains on per-class one-hot channels without background; BraTS-style systems train
//! sigmoid outputs on the nested regions WT = {1,2,3}, TC = {2,3}, ET = {3}, which is what the
//! challenge scores.
pub use brainseg_core::Targets;
use ndarray::{Array4, ArrayView3, Axis, Zip};

/// `(3, X, Y, Z)` 0/1 target channels for an MSD label map: channel c is set where
/// [`Targets::channel_contains`] says so (values above 3 set no channel).
pub fn encode_targets(targets: Targets, label: ArrayView3<u8>) -> Array4<f32> {
    encode_with(label, |channel, value| {
        targets.channel_contains(channel, value)
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
        let t = encode_targets(Targets::Classes, labels_0_to_4().view());
        let got: Vec<Vec<f32>> = (0..3)
            .map(|c| t.index_axis(Axis(0), c).iter().copied().collect())
            .collect();
        assert_eq!(got[0], vec![0., 1., 0., 0., 0.]);
        assert_eq!(got[1], vec![0., 0., 1., 0., 0.]);
        assert_eq!(got[2], vec![0., 0., 0., 1., 0.]);
    }

    #[test]
    fn regions_are_nested() {
        let t = encode_targets(Targets::Regions, labels_0_to_4().view());
        let got: Vec<Vec<f32>> = (0..3)
            .map(|c| t.index_axis(Axis(0), c).iter().copied().collect())
            .collect();
        assert_eq!(got[0], vec![0., 1., 1., 1., 0.], "WT = 1,2,3");
        assert_eq!(got[1], vec![0., 0., 1., 1., 0.], "TC = 2,3");
        assert_eq!(got[2], vec![0., 0., 0., 1., 0.], "ET = 3");
    }
}
