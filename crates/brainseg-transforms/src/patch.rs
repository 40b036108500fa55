//! Random training patches: the seed's `get_sub_volume` (uniform random corner, accepted when the
//! background fraction is below a threshold) plus nnU-Net's foreground oversampling.
//!
//! Differences from the seed, on purpose:
//! - When no draw qualifies within `max_tries`, the draw with the lowest background fraction is
//!   returned and marked [`PatchOrigin::Fallback`] (the seed printed a message and returned nothing).
//! - Along an axis where the volume is shorter than the patch, the patch starts at 0 and the missing
//!   voxels are zeros (image) and background (label); padded voxels count as background.
use crate::Targets;
use crate::{Error, Result};
use ndarray::{s, Array3, Array4, ArrayView3, ArrayView4, Axis};
use rand::Rng;

/// How patches are drawn.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PatchConfig {
    /// Patch shape `[px, py, pz]` in voxels (seed: 160 x 160 x 16).
    pub size: [usize; 3],
    /// Uniform draws before falling back (seed: 1000).
    pub max_tries: usize,
    /// A uniform draw is accepted when its background fraction is below this (seed: 0.95).
    pub background_threshold: f64,
    /// Probability that a patch is centred on a random tumour voxel instead (nnU-Net: 0.33; seed: 0).
    pub foreground_share: f64,
    /// Target encoding of the returned patches.
    pub targets: Targets,
}

impl Default for PatchConfig {
    fn default() -> Self {
        PatchConfig {
            size: [160, 160, 16],
            max_tries: 1000,
            background_threshold: 0.95,
            foreground_share: 0.33,
            targets: Targets::Classes,
        }
    }
}

impl PatchConfig {
    /// Exactly the seed's sampler: no foreground oversampling.
    pub fn seed() -> Self {
        PatchConfig {
            foreground_share: 0.0,
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.size.contains(&0) {
            return Err(Error::msg(format!(
                "patch size {:?} has a zero side",
                self.size
            )));
        }
        if self.max_tries == 0 {
            return Err(Error::msg("patch sampling needs max_tries >= 1"));
        }
        if !(self.background_threshold > 0.0 && self.background_threshold <= 1.0) {
            return Err(Error::msg(format!(
                "background threshold {} must be in (0, 1]",
                self.background_threshold
            )));
        }
        if !(0.0..=1.0).contains(&self.foreground_share) {
            return Err(Error::msg(format!(
                "foreground share {} must be in [0, 1]",
                self.foreground_share
            )));
        }
        Ok(())
    }
}

/// How a patch was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PatchOrigin {
    /// Centred on a random tumour voxel (clamped into the volume); the background threshold does not apply.
    Foreground,
    /// Uniform random corner that met the background threshold on draw number `tries`.
    Uniform { tries: usize },
    /// No uniform draw met the threshold in `tries` draws: the draw with the lowest background fraction.
    Fallback { tries: usize },
}

/// One training sample.
#[derive(Debug, Clone)]
pub struct Patch {
    /// `(C, px, py, pz)` image, not standardised.
    pub image: Array4<f32>,
    /// `(3, px, py, pz)` 0/1 target in the configured [`Targets`] encoding.
    pub target: Array4<f32>,
    /// Corner of the patch in the volume (voxel indices).
    pub corner: [usize; 3],
    /// Fraction of the patch's voxels that are background (label 0 or padding).
    pub background_fraction: f64,
    pub origin: PatchOrigin,
}

/// Draw one patch from a `(C, X, Y, Z)` image and its `(X, Y, Z)` MSD label map.
///
/// With probability `foreground_share` (and when the label has tumour) the patch is centred on a
/// uniformly chosen tumour voxel; otherwise the seed's rejection sampling runs.
pub fn sample_patch<R: Rng + ?Sized>(
    image: ArrayView4<f32>,
    label: ArrayView3<u8>,
    config: &PatchConfig,
    rng: &mut R,
) -> Result<Patch> {
    let ones = vec![1.0; image.len_of(Axis(0))];
    sample_scaled_patch(image, &ones, label, config, rng)
}

/// [`sample_patch`] from an image stored compactly: channel `c`'s intensities are its values
/// times `scales[c]` (e.g. a training cache of int16 values). The same draws as `sample_patch`.
pub fn sample_scaled_patch<T, R>(
    image: ArrayView4<T>,
    scales: &[f32],
    label: ArrayView3<u8>,
    config: &PatchConfig,
    rng: &mut R,
) -> Result<Patch>
where
    T: Copy + Default + Into<f32>,
    R: Rng + ?Sized,
{
    config.validate()?;
    if scales.len() != image.len_of(Axis(0)) {
        return Err(Error::msg(format!(
            "{} scales for {} channels",
            scales.len(),
            image.len_of(Axis(0))
        )));
    }
    let (_, x, y, z) = image.dim();
    if label.dim() != (x, y, z) {
        return Err(Error::msg(format!(
            "label shape {:?} does not match image shape {:?}",
            label.shape(),
            &image.shape()[1..]
        )));
    }
    let dims = [x, y, z];
    let size = config.size;
    let tumour_voxels = label.iter().filter(|&&v| v != 0).count();
    let (corner, origin) = if rng.random_bool(config.foreground_share) && tumour_voxels > 0 {
        let chosen = rng.random_range(0..tumour_voxels);
        let (centre, _) = label
            .indexed_iter()
            .filter(|(_, &v)| v != 0)
            .nth(chosen)
            .expect("counted above");
        let centre = [centre.0, centre.1, centre.2];
        let corner = std::array::from_fn(|a| {
            centre[a]
                .saturating_sub(size[a] / 2)
                .min(dims[a].saturating_sub(size[a]))
        });
        (corner, PatchOrigin::Foreground)
    } else {
        uniform_corner(label, dims, config, rng)
    };
    let label_patch = crop_padded3(label, corner, size);
    Ok(Patch {
        image: crop_scaled4(image, scales, corner, size),
        target: crate::encode_targets(config.targets, label_patch.view()),
        corner,
        background_fraction: background_fraction(label, corner, size),
        origin,
    })
}

/// The seed's rejection loop, keeping the best draw for the fallback.
fn uniform_corner<R: Rng + ?Sized>(
    label: ArrayView3<u8>,
    dims: [usize; 3],
    config: &PatchConfig,
    rng: &mut R,
) -> ([usize; 3], PatchOrigin) {
    let mut best = ([0; 3], f64::INFINITY);
    for tries in 1..=config.max_tries {
        let corner =
            std::array::from_fn(|a| rng.random_range(0..=dims[a].saturating_sub(config.size[a])));
        let fraction = background_fraction(label, corner, config.size);
        if fraction < config.background_threshold {
            return (corner, PatchOrigin::Uniform { tries });
        }
        if fraction < best.1 {
            best = (corner, fraction);
        }
    }
    (
        best.0,
        PatchOrigin::Fallback {
            tries: config.max_tries,
        },
    )
}

/// Background (label 0 or outside the volume) voxels over the patch's voxel count.
fn background_fraction(label: ArrayView3<u8>, corner: [usize; 3], size: [usize; 3]) -> f64 {
    let extent = valid_extent(label.shape(), corner, size);
    let window = label.slice(s![
        corner[0]..corner[0] + extent[0],
        corner[1]..corner[1] + extent[1],
        corner[2]..corner[2] + extent[2]
    ]);
    let tumour = window.iter().filter(|&&v| v != 0).count();
    let total = size.iter().product::<usize>();
    (total - tumour) as f64 / total as f64
}

/// Voxels of a `size` window at `corner` that lie inside a volume of shape `dims`, per axis.
fn valid_extent(dims: &[usize], corner: [usize; 3], size: [usize; 3]) -> [usize; 3] {
    std::array::from_fn(|a| size[a].min(dims[a].saturating_sub(corner[a])))
}

/// Copy a `size` window starting at `corner`; voxels past the volume's end are `T::default()` (zero).
pub fn crop_padded3<T: Clone + Default>(
    volume: ArrayView3<T>,
    corner: [usize; 3],
    size: [usize; 3],
) -> Array3<T> {
    let extent = valid_extent(volume.shape(), corner, size);
    let mut out = Array3::from_elem(size, T::default());
    out.slice_mut(s![..extent[0], ..extent[1], ..extent[2]])
        .assign(&volume.slice(s![
            corner[0]..corner[0] + extent[0],
            corner[1]..corner[1] + extent[1],
            corner[2]..corner[2] + extent[2]
        ]));
    out
}

/// [`crop_padded3`] for every channel of a `(C, X, Y, Z)` image.
pub fn crop_padded4(image: ArrayView4<f32>, corner: [usize; 3], size: [usize; 3]) -> Array4<f32> {
    let ones = vec![1.0; image.len_of(Axis(0))];
    crop_scaled4(image, &ones, corner, size)
}

/// [`crop_padded4`] of values that are intensities once multiplied by their channel's scale.
fn crop_scaled4<T: Copy + Default + Into<f32>>(
    image: ArrayView4<T>,
    scales: &[f32],
    corner: [usize; 3],
    size: [usize; 3],
) -> Array4<f32> {
    let channels = image.len_of(Axis(0));
    let mut out = Array4::zeros((channels, size[0], size[1], size[2]));
    let channels_in = out.axis_iter_mut(Axis(0)).zip(image.axis_iter(Axis(0)));
    for ((mut target, source), &scale) in channels_in.zip(scales) {
        let values = crop_padded3(source, corner, size);
        target.zip_mut_with(&values, |t, &v| *t = v.into() * scale);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A 40 x 36 x 20 volume with a 10 x 8 x 6 box of mixed tumour labels at (22..32, 10..18, 8..14);
    /// image channel c at voxel (i, j, k) holds a code of c and the position.
    fn toy_case() -> (Array4<f32>, Array3<u8>) {
        let image = Array4::from_shape_fn((4, 40, 36, 20), |(c, i, j, k)| {
            (c * 1_000_000 + i * 10_000 + j * 100 + k) as f32
        });
        let label = Array3::from_shape_fn((40, 36, 20), |(i, j, k)| {
            if (22..32).contains(&i) && (10..18).contains(&j) && (8..14).contains(&k) {
                1 + ((i + j + k) % 3) as u8
            } else {
                0
            }
        });
        (image, label)
    }

    fn independent_background_fraction(
        label: &Array3<u8>,
        corner: [usize; 3],
        size: [usize; 3],
    ) -> f64 {
        let mut background = 0;
        for i in 0..size[0] {
            for j in 0..size[1] {
                for k in 0..size[2] {
                    let v = label
                        .get((corner[0] + i, corner[1] + j, corner[2] + k))
                        .copied()
                        .unwrap_or(0);
                    background += (v == 0) as usize;
                }
            }
        }
        background as f64 / (size[0] * size[1] * size[2]) as f64
    }

    #[test]
    fn accepted_patches_are_under_the_threshold_and_match_the_volume() {
        let (image, label) = toy_case();
        let config = PatchConfig {
            size: [16, 16, 8],
            background_threshold: 0.9,
            ..PatchConfig::seed()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let patch = sample_patch(image.view(), label.view(), &config, &mut rng).unwrap();
            assert!(matches!(patch.origin, PatchOrigin::Uniform { .. }));
            let fraction = independent_background_fraction(&label, patch.corner, config.size);
            assert!(fraction < 0.9, "background fraction {fraction}");
            assert!((patch.background_fraction - fraction).abs() < 1e-12);
            let [cx, cy, cz] = patch.corner;
            assert!(
                cx + 16 <= 40 && cy + 16 <= 36 && cz + 8 <= 20,
                "uniform corners stay inside"
            );
            assert_eq!(patch.image.dim(), (4, 16, 16, 8));
            assert_eq!(patch.target.dim(), (3, 16, 16, 8));
            // Spot-check content: image voxel and one-hot target at patch voxel (5, 6, 7).
            assert_eq!(
                patch.image[[2, 5, 6, 7]],
                image[[2, cx + 5, cy + 6, cz + 7]]
            );
            let class = label[[cx + 5, cy + 6, cz + 7]];
            for c in 0..3 {
                assert_eq!(
                    patch.target[[c, 5, 6, 7]],
                    (class as usize == c + 1) as u8 as f32
                );
            }
        }
    }

    #[test]
    fn impossible_threshold_falls_back_to_the_best_draw() {
        let (image, label) = toy_case();
        // The tumour box has 480 voxels, a 16x16x8 patch 2048: background >= 0.765 always.
        let config = PatchConfig {
            size: [16, 16, 8],
            background_threshold: 0.5,
            max_tries: 200,
            ..PatchConfig::seed()
        };
        let patch = sample_patch(
            image.view(),
            label.view(),
            &config,
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
        assert_eq!(patch.origin, PatchOrigin::Fallback { tries: 200 });
        assert!(
            patch.background_fraction < 1.0,
            "200 draws find some tumour"
        );
        assert!(patch.background_fraction >= 1.0 - 480.0 / 2048.0);
    }

    #[test]
    fn foreground_share_holds_and_oversampled_patches_contain_tumour() {
        let (image, label) = toy_case();
        let config = PatchConfig {
            size: [8, 8, 4],
            foreground_share: 0.33,
            background_threshold: 1.0,
            ..PatchConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        let draws = 2000;
        let mut foreground = 0;
        for _ in 0..draws {
            let patch = sample_patch(image.view(), label.view(), &config, &mut rng).unwrap();
            if patch.origin == PatchOrigin::Foreground {
                foreground += 1;
                // The tumour box is away from the edges, so no clamping: the centre voxel is tumour.
                let [cx, cy, cz] = patch.corner;
                assert_ne!(label[[cx + 4, cy + 4, cz + 2]], 0);
                assert!(patch.target.iter().any(|&t| t == 1.0));
            }
        }
        // Binomial(2000, 0.33): sd 21; allow 4 sd.
        let share = foreground as f64 / draws as f64;
        assert!((share - 0.33).abs() < 0.042, "foreground share {share}");
    }

    #[test]
    fn foreground_patch_near_an_edge_is_clamped_into_the_volume() {
        let image = Array4::<f32>::ones((1, 20, 20, 10));
        let mut label = Array3::<u8>::zeros((20, 20, 10));
        label[[0, 19, 9]] = 3;
        let config = PatchConfig {
            size: [8, 8, 4],
            foreground_share: 1.0,
            ..PatchConfig::default()
        };
        let patch = sample_patch(
            image.view(),
            label.view(),
            &config,
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap();
        assert_eq!(patch.origin, PatchOrigin::Foreground);
        assert_eq!(patch.corner, [0, 12, 6]);
        assert_eq!(patch.target[[2, 0, 7, 3]], 1.0);
    }

    #[test]
    fn small_volume_is_zero_padded_at_the_end() {
        // 6 x 20 x 3 volume, patch 8 x 8 x 4: x and z need padding.
        let image = Array4::from_elem((2, 6, 20, 3), 5.0f32);
        let label = Array3::from_elem((6, 20, 3), 1u8);
        let config = PatchConfig {
            size: [8, 8, 4],
            ..PatchConfig::seed()
        };
        let patch = sample_patch(
            image.view(),
            label.view(),
            &config,
            &mut ChaCha8Rng::seed_from_u64(4),
        )
        .unwrap();
        assert_eq!((patch.corner[0], patch.corner[2]), (0, 0));
        // Inside: 6 * 8 * 3 = 144 voxels of 256 are tumour.
        assert!((patch.background_fraction - (256.0 - 144.0) / 256.0).abs() < 1e-12);
        assert_eq!(patch.image[[1, 5, 7, 2]], 5.0);
        assert_eq!(patch.image[[1, 6, 0, 0]], 0.0);
        assert_eq!(patch.image[[0, 0, 0, 3]], 0.0);
        assert_eq!(patch.target[[0, 6, 0, 0]], 0.0);
        assert_eq!(patch.target[[0, 5, 0, 2]], 1.0);
    }

    #[test]
    fn same_seed_same_patch() {
        let (image, label) = toy_case();
        let config = PatchConfig {
            size: [16, 16, 8],
            ..PatchConfig::default()
        };
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..5)
                .map(|_| {
                    sample_patch(image.view(), label.view(), &config, &mut rng)
                        .unwrap()
                        .corner
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }

    #[test]
    fn scaled_values_give_the_same_draws_and_their_intensities() {
        let (image, label) = toy_case();
        // Channel c stored as small integers with scale c + 0.5: intensity = value * (c + 0.5).
        let values = image.mapv(|v| (v as i64 % 1000) as i16);
        let scales = [0.5, 1.5, 2.5, 3.5];
        let intensities = Array4::from_shape_fn(values.dim(), |(c, i, j, k)| {
            f32::from(values[[c, i, j, k]]) * scales[c]
        });
        let config = PatchConfig {
            size: [16, 16, 8],
            ..PatchConfig::default()
        };
        let (mut a, mut b) = (ChaCha8Rng::seed_from_u64(3), ChaCha8Rng::seed_from_u64(3));
        for _ in 0..4 {
            let plain = sample_patch(intensities.view(), label.view(), &config, &mut a).unwrap();
            let scaled =
                sample_scaled_patch(values.view(), &scales, label.view(), &config, &mut b).unwrap();
            assert_eq!(plain.corner, scaled.corner);
            assert_eq!(plain.image, scaled.image);
            assert_eq!(plain.target, scaled.target);
        }
        let wrong = sample_scaled_patch(values.view(), &[1.0], label.view(), &config, &mut b);
        assert!(wrong.is_err());
    }

    #[test]
    fn bad_input_is_an_error() {
        let image = Array4::<f32>::zeros((4, 10, 10, 10));
        let label = Array3::<u8>::zeros((10, 10, 9));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(sample_patch(
            image.view(),
            label.view(),
            &PatchConfig::default(),
            &mut rng
        )
        .is_err());
        let label = Array3::<u8>::zeros((10, 10, 10));
        let zero_side = PatchConfig {
            size: [0, 4, 4],
            ..PatchConfig::default()
        };
        assert!(sample_patch(image.view(), label.view(), &zero_side, &mut rng).is_err());
        let bad_share = PatchConfig {
            foreground_share: 1.5,
            ..PatchConfig::default()
        };
        assert!(sample_patch(image.view(), label.view(), &bad_share, &mut rng).is_err());
    }
}
