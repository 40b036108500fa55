//! On-the-fly augmentation of a patch and its target: random flips along each spatial axis (the same
//! flip for both), and per-channel intensity scale and shift (image only). Deterministic given the RNG.
use ndarray::{Array4, Axis};
use rand::Rng;

/// Which augmentations run, and how strong they are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Flip each spatial axis independently with probability 1/2.
    pub flip: bool,
    /// Multiply each channel by a factor drawn from U(1 - scale_range, 1 + scale_range).
    pub scale: bool,
    pub scale_range: f32,
    /// Add to each channel U(-shift_range, shift_range) times the channel's standard deviation in the patch.
    pub shift: bool,
    pub shift_range: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            flip: true,
            scale: true,
            scale_range: 0.1,
            shift: true,
            shift_range: 0.1,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all.
    pub fn off() -> Self {
        AugmentConfig {
            flip: false,
            scale: false,
            shift: false,
            ..Self::default()
        }
    }
}

/// What [`augment`] did (for logs and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    /// Spatial axes X, Y, Z that were reversed.
    pub flipped: [bool; 3],
    /// Per-channel multiplicative factor (1 when scaling is off).
    pub scale: Vec<f32>,
    /// Per-channel additive offset in intensity units (0 when shifting is off).
    pub shift: Vec<f32>,
}

/// Augment a `(C, X, Y, Z)` image and its `(K, X, Y, Z)` target in place. Random numbers are drawn in
/// a fixed order (flips, then scales, then shifts), only for the enabled parts.
pub fn augment<R: Rng + ?Sized>(
    image: &mut Array4<f32>,
    target: &mut Array4<f32>,
    config: &AugmentConfig,
    rng: &mut R,
) -> Augmentation {
    let mut flipped = [false; 3];
    if config.flip {
        for flip in flipped.iter_mut() {
            *flip = rng.random_bool(0.5);
        }
        mirror(image, target, flipped);
    }
    let (scale, shift) = scale_and_shift(image, config, rng);
    Augmentation {
        flipped,
        scale,
        shift,
    }
}

/// Reverse the chosen spatial axes of both arrays; the results are in standard layout.
pub(crate) fn mirror(image: &mut Array4<f32>, target: &mut Array4<f32>, axes: [bool; 3]) {
    for (axis, _) in axes.iter().enumerate().filter(|(_, &f)| f) {
        image.invert_axis(Axis(axis + 1));
        target.invert_axis(Axis(axis + 1));
    }
    if axes.iter().any(|&f| f) {
        // invert_axis only negates strides; downstream code expects standard layout.
        *image = image.as_standard_layout().into_owned();
        *target = target.as_standard_layout().into_owned();
    }
}

/// The seed's per-channel intensity scale and shift (the `scale*` and `shift*` fields of `config`;
/// `flip` is ignored here). Draws every channel's factor, then every channel's shift, only for the
/// enabled parts. Returns the factors (1 when off) and the offsets (0 when off).
pub(crate) fn scale_and_shift<R: Rng + ?Sized>(
    image: &mut Array4<f32>,
    config: &AugmentConfig,
    rng: &mut R,
) -> (Vec<f32>, Vec<f32>) {
    let channels = image.len_of(Axis(0));
    let scale: Vec<f32> = (0..channels)
        .map(|_| {
            if config.scale {
                1.0 + uniform_symmetric(rng, config.scale_range)
            } else {
                1.0
            }
        })
        .collect();
    let shift_units: Vec<f32> = (0..channels)
        .map(|_| {
            if config.shift {
                uniform_symmetric(rng, config.shift_range)
            } else {
                0.0
            }
        })
        .collect();
    let mut shift = vec![0.0f32; channels];
    for (c, mut channel) in image.axis_iter_mut(Axis(0)).enumerate() {
        if config.scale {
            channel.mapv_inplace(|v| v * scale[c]);
        }
        if config.shift {
            shift[c] = shift_units[c] * population_std(channel.iter().copied()) as f32;
            channel.mapv_inplace(|v| v + shift[c]);
        }
    }
    (scale, shift)
}

/// U(-range, range); 0 without drawing when the range is empty.
fn uniform_symmetric<R: Rng + ?Sized>(rng: &mut R, range: f32) -> f32 {
    if range > 0.0 {
        rng.random_range(-range..range)
    } else {
        0.0
    }
}

fn population_std(values: impl Iterator<Item = f32> + Clone) -> f64 {
    let (n, sum) = values
        .clone()
        .fold((0usize, 0.0f64), |(n, s), v| (n + 1, s + v as f64));
    if n == 0 {
        return 0.0;
    }
    let mean = sum / n as f64;
    (values.map(|v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Image channel 0 encodes each voxel's position, the target channel the same number: a flip
    /// that differs between them would break the equality.
    fn position_coded(shape: (usize, usize, usize)) -> (Array4<f32>, Array4<f32>) {
        let (x, y, z) = shape;
        let code =
            Array4::from_shape_fn((1, x, y, z), |(_, i, j, k)| (i * 100 + j * 10 + k) as f32);
        (code.clone(), code)
    }

    #[test]
    fn flips_move_image_and_target_together() {
        let config = AugmentConfig::off();
        let config = AugmentConfig {
            flip: true,
            ..config
        };
        let mut seen = [[false; 2]; 3];
        for seed in 0..16 {
            let (mut image, mut target) = position_coded((4, 3, 2));
            let done = augment(
                &mut image,
                &mut target,
                &config,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            assert_eq!(image, target);
            assert!(image.is_standard_layout() && target.is_standard_layout());
            // Voxel (0,0,0) now holds the code of the mirrored position.
            let expect = |axis: usize, len: usize| if done.flipped[axis] { len - 1 } else { 0 };
            let code = (expect(0, 4) * 100 + expect(1, 3) * 10 + expect(2, 2)) as f32;
            assert_eq!(image[[0, 0, 0, 0]], code);
            for axis in 0..3 {
                seen[axis][done.flipped[axis] as usize] = true;
            }
        }
        assert!(
            seen.iter().all(|s| s[0] && s[1]),
            "every axis is flipped sometimes and kept sometimes"
        );
    }

    #[test]
    fn scale_and_shift_stay_in_range_and_spare_the_target() {
        let config = AugmentConfig {
            flip: false,
            ..AugmentConfig::default()
        };
        // Channel values 0 and 2 -> population std 1 (before scaling).
        let mut image = Array4::from_shape_fn((2, 2, 1, 1), |(_, i, _, _)| 2.0 * i as f32);
        let mut target = Array4::<f32>::ones((3, 2, 1, 1));
        let done = augment(
            &mut image,
            &mut target,
            &config,
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        assert_eq!(target, Array4::<f32>::ones((3, 2, 1, 1)));
        for c in 0..2 {
            let s = done.scale[c];
            assert!((0.9..1.1).contains(&s));
            // The std after scaling is s, so the shift is at most 0.1 * s.
            assert!(done.shift[c].abs() <= 0.1 * s + 1e-6);
            assert!((image[[c, 0, 0, 0]] - done.shift[c]).abs() < 1e-6);
            assert!((image[[c, 1, 0, 0]] - (2.0 * s + done.shift[c])).abs() < 1e-6);
        }
        assert_ne!(
            done.scale[0], done.scale[1],
            "factors are drawn per channel"
        );
    }

    #[test]
    fn same_seed_same_augmentation() {
        let run = |seed| {
            let (mut image, mut target) = position_coded((5, 4, 3));
            let done = augment(
                &mut image,
                &mut target,
                &AugmentConfig::default(),
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            (image, done)
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11).1, run(12).1);
    }
}
