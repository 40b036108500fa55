//! Probabilities to MSD labels (0 background, 1 edema, 2 non-enhancing, 3 enhancing).
use crate::{Error, Result};
use brainseg_transforms::Targets;
use ndarray::{Array3, ArrayView4, Axis, Zip};

/// Decode `(K, X, Y, Z)` sigmoid probabilities into an MSD label map.
///
/// - [`Targets::Classes`] (the seed's output): channel c is class c + 1; each voxel gets the class with
///   the highest probability among those above `threshold` (ties: the lower class), else background.
///   Any K from 1 to 255 works.
/// - [`Targets::Regions`] (WT, TC, ET; K = 3): 3 if p_ET > t, else 2 if p_TC > t, else 1 if p_WT > t, else 0.
pub fn decode_labels(
    probabilities: ArrayView4<f32>,
    targets: Targets,
    threshold: f32,
) -> Result<Array3<u8>> {
    let channels = probabilities.len_of(Axis(0));
    let (_, x, y, z) = probabilities.dim();
    let mut labels = Array3::<u8>::zeros((x, y, z));
    match targets {
        Targets::Classes => {
            if channels == 0 || channels > 255 {
                return Err(Error::msg(format!(
                    "cannot decode {channels} class channels (need 1 to 255)"
                )));
            }
            let mut best = Array3::from_elem((x, y, z), threshold);
            for (channel, plane) in probabilities.axis_iter(Axis(0)).enumerate() {
                Zip::from(&mut labels)
                    .and(&mut best)
                    .and(&plane)
                    .for_each(|label, best, &p| {
                        if p > *best {
                            *best = p;
                            *label = channel as u8 + 1;
                        }
                    });
            }
        }
        Targets::Regions => {
            if channels != 3 {
                return Err(Error::msg(format!(
                    "region decoding needs 3 channels (WT, TC, ET), got {channels}"
                )));
            }
            // Later (inner) regions override earlier ones: WT -> 1, TC -> 2, ET -> 3.
            for (region, plane) in probabilities.axis_iter(Axis(0)).enumerate() {
                Zip::from(&mut labels).and(&plane).for_each(|label, &p| {
                    if p > threshold {
                        *label = region as u8 + 1;
                    }
                });
            }
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    /// One voxel per row of `rows`, each row holding the 3 channel probabilities.
    fn voxels(rows: &[[f32; 3]]) -> Array4<f32> {
        Array4::from_shape_fn((3, rows.len(), 1, 1), |(c, i, _, _)| rows[i][c])
    }

    #[test]
    fn classes_take_the_most_probable_above_threshold() {
        let p = voxels(&[
            [0.1, 0.2, 0.3], // nothing above 0.5 -> 0
            [0.9, 0.6, 0.1], // 1
            [0.6, 0.7, 0.1], // 2
            [0.1, 0.1, 0.8], // 3
            [0.5, 0.5, 0.5], // not strictly above -> 0
            [0.7, 0.7, 0.2], // tie -> lower class 1
        ]);
        let labels = decode_labels(p.view(), Targets::Classes, 0.5).unwrap();
        assert_eq!(
            labels.iter().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 0, 1]
        );
        let low = decode_labels(p.view(), Targets::Classes, 0.25).unwrap();
        assert_eq!(low[[0, 0, 0]], 3);
    }

    #[test]
    fn regions_nest_et_over_tc_over_wt() {
        let p = voxels(&[
            [0.4, 0.4, 0.4], // 0
            [0.9, 0.2, 0.1], // WT only -> edema 1
            [0.9, 0.8, 0.1], // TC -> 2
            [0.9, 0.8, 0.7], // ET -> 3
            [0.1, 0.1, 0.7], // ET alone still 3
            [0.1, 0.6, 0.2], // TC without WT -> 2
        ]);
        let labels = decode_labels(p.view(), Targets::Regions, 0.5).unwrap();
        assert_eq!(
            labels.iter().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 3, 2]
        );
    }

    #[test]
    fn wrong_channel_count_is_an_error() {
        let two = Array4::<f32>::zeros((2, 1, 1, 1));
        assert!(decode_labels(two.view(), Targets::Regions, 0.5).is_err());
        assert_eq!(
            decode_labels(two.view(), Targets::Classes, 0.5).unwrap()[[0, 0, 0]],
            0
        );
    }
}
