//! Intensity standardisation. Statistics are computed in f64 with the population standard deviation
//! (as numpy's `np.std`), so a constant region has a standard deviation of exactly zero.
use ndarray::{s, Array3, Array4, Axis, Zip};

/// How images are standardised before they reach a model. Training and inference must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Standardization {
    /// The seed's: each patch (or inference tile), per channel and per z-slice: subtract the mean,
    /// divide by the standard deviation where it is not zero.
    #[default]
    #[cfg_attr(feature = "clap", value(name = "notebook", alias = "seed"))]
    #[serde(alias = "seed_slices")]
    NotebookSlices,
    /// Whole volume, per channel, over brain voxels (non-zero in any channel, as nnU-Net's non-zero
    /// mask): subtract the mean, divide by the standard deviation where it is not zero. Voxels
    /// outside the brain stay 0.
    #[cfg_attr(feature = "clap", value(name = "zscore"))]
    ZScoreBrain,
    /// Intensities are used as they are (already normalised data, tests).
    None,
}

impl Standardization {
    /// True when the statistics come from each patch or tile rather than from the whole volume.
    pub fn per_patch(self) -> bool {
        matches!(self, Standardization::NotebookSlices)
    }

    /// Standardise a `(C, X, Y, Z)` image or patch in place.
    pub fn apply(self, image: &mut Array4<f32>) {
        match self {
            Standardization::NotebookSlices => standardize_slices(image),
            Standardization::ZScoreBrain => zscore_brain(image),
            Standardization::None => {}
        }
    }
}

/// The seed's `standardize`: for each channel and z-slice, subtract the mean and divide by the
/// standard deviation unless it is zero (a constant slice becomes all zeros).
pub fn standardize_slices(image: &mut Array4<f32>) {
    for c in 0..image.len_of(Axis(0)) {
        for z in 0..image.len_of(Axis(3)) {
            let mut slice = image.slice_mut(s![c, .., .., z]);
            let (mean, std) = mean_std(slice.iter().copied());
            slice.mapv_inplace(|v| standard_score(v, mean, std));
        }
    }
}

/// Per-volume z-scoring over the brain: per channel, statistics over voxels that are non-zero in any
/// channel; those voxels become `(v - mean) / std` (or `v - mean` when std is 0), the rest stay 0.
pub fn zscore_brain(image: &mut Array4<f32>) {
    let (_, x, y, z) = image.dim();
    let mut brain = Array3::<bool>::from_elem((x, y, z), false);
    for channel in image.axis_iter(Axis(0)) {
        Zip::from(&mut brain)
            .and(&channel)
            .for_each(|b, &v| *b |= v != 0.0);
    }
    for mut channel in image.axis_iter_mut(Axis(0)) {
        let (mean, std) = mean_std(
            channel
                .iter()
                .zip(brain.iter())
                .filter(|(_, &b)| b)
                .map(|(&v, _)| v),
        );
        Zip::from(&mut channel).and(&brain).for_each(|v, &inside| {
            *v = if inside {
                standard_score(*v, mean, std)
            } else {
                0.0
            };
        });
    }
}

/// Population mean and standard deviation in f64 (two passes for accuracy); (0, 0) when empty.
fn mean_std(values: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
    let (n, sum) = values
        .clone()
        .fold((0usize, 0.0f64), |(n, s), v| (n + 1, s + v as f64));
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    let squares: f64 = values.map(|v| (v as f64 - mean).powi(2)).sum();
    (mean, (squares / n as f64).sqrt())
}

fn standard_score(v: f32, mean: f64, std: f64) -> f32 {
    let centred = v as f64 - mean;
    (if std > 0.0 { centred / std } else { centred }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_slices_by_hand_with_a_constant_slice() {
        // One channel, 2x2 slices, z = 0 varying, z = 1 constant 7.
        // z = 0: values 1, 2, 3, 6 -> mean 3, deviations -2, -1, 0, 3, variance (4+1+0+9)/4 = 3.5.
        let mut image = Array4::<f32>::zeros((1, 2, 2, 2));
        for (i, v) in [1.0, 2.0, 3.0, 6.0].into_iter().enumerate() {
            image[[0, i / 2, i % 2, 0]] = v;
            image[[0, i / 2, i % 2, 1]] = 7.0;
        }
        standardize_slices(&mut image);
        let s = 3.5f64.sqrt();
        for (i, d) in [-2.0, -1.0, 0.0, 3.0].into_iter().enumerate() {
            assert!((image[[0, i / 2, i % 2, 0]] as f64 - d / s).abs() < 1e-6);
            assert_eq!(
                image[[0, i / 2, i % 2, 1]],
                0.0,
                "constant slice becomes zeros"
            );
        }
    }

    #[test]
    fn seed_slices_are_per_channel() {
        // Channel 1 is channel 0 times 10 plus 5: standardised values must be identical.
        let mut image = Array4::<f32>::zeros((2, 3, 1, 1));
        for (i, v) in [1.0f32, 4.0, 10.0].into_iter().enumerate() {
            image[[0, i, 0, 0]] = v;
            image[[1, i, 0, 0]] = 10.0 * v + 5.0;
        }
        standardize_slices(&mut image);
        // mean 5, deviations -4 -1 5, variance 42/3 = 14.
        let expected = [-4.0 / 14f32.sqrt(), -1.0 / 14f32.sqrt(), 5.0 / 14f32.sqrt()];
        for i in 0..3 {
            assert!((image[[0, i, 0, 0]] - expected[i]).abs() < 1e-6);
            assert!((image[[1, i, 0, 0]] - expected[i]).abs() < 1e-5);
        }
    }

    #[test]
    fn zscore_over_brain_by_hand() {
        // Four voxels; voxel 3 is background in both channels, voxel 2 is zero only in channel 0
        // (it is brain because channel 1 is non-zero there).
        let mut image = Array4::<f32>::zeros((2, 4, 1, 1));
        let c0 = [2.0, 4.0, 0.0, 0.0];
        let c1 = [5.0, 5.0, 5.0, 0.0];
        for i in 0..4 {
            image[[0, i, 0, 0]] = c0[i];
            image[[1, i, 0, 0]] = c1[i];
        }
        zscore_brain(&mut image);
        // Channel 0 over brain {2, 4, 0}: mean 2, variance (0 + 4 + 4)/3 = 8/3.
        let s = (8.0f32 / 3.0).sqrt();
        let expected0 = [0.0, 2.0 / s, -2.0 / s, 0.0];
        for i in 0..4 {
            assert!(
                (image[[0, i, 0, 0]] - expected0[i]).abs() < 1e-6,
                "voxel {i}"
            );
        }
        // Channel 1 is constant 5 over the brain: centred to 0, background stays 0.
        assert!(image.index_axis(Axis(0), 1).iter().all(|&v| v == 0.0));
    }
}
