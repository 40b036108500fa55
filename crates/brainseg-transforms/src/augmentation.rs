//! nnU-Net's training augmentation (the `3d_fullres` recipe of `nnUNetTrainer.get_training_transforms`
//! in nnU-Net v2, built on batchgeneratorsv2), for one patch at a time, plus the seed's flips and
//! intensity jitter so that old runs keep their meaning.
//!
//! The transforms run in nnU-Net's order, each with its own probability:
//!
//! | step | nnU-Net default |
//! |------|-----------------|
//! | spatial: rotation | p 0.2; when it fires every axis gets an angle U(-30°, 30°) |
//! | spatial: scaling | p 0.2 (drawn independently of the rotation); one isotropic factor U(0.7, 1.4) |
//! | Gaussian noise | p 0.1; σ ~ U(0, 0.1) (nnU-Net calls it `noise_variance` but passes it to `np.random.normal` as the standard deviation); one noise field added to every channel (`synchronize_channels=True`) |
//! | Gaussian blur | p 0.2; each channel with p 0.5; σ ~ U(0.5, 1) per channel and per axis |
//! | multiplicative brightness | p 0.15; per channel a factor from `BGContrast(0.75, 1.25)` |
//! | contrast | p 0.15; per channel `BGContrast(0.75, 1.25)` about the channel mean, clamped to the channel's former range |
//! | low resolution | p 0.25; each channel with p 0.5; zoom U(0.5, 1), the same on every axis |
//! | gamma, inverted image | p 0.1; per channel γ from `BGContrast(0.7, 1.5)`, mean and std retained |
//! | gamma | p 0.3; as above, not inverted |
//! | mirroring | every axis with p 0.5 |
//!
//! `BGContrast(lo, hi)` draws from U(lo, 1) or U(1, hi) with probability 1/2 each, so that shrinking
//! and enlarging are equally likely.
//!
//! Differences from nnU-Net, by design:
//! - The spatial transform works on the patch itself: the rotation and scaling are about the patch
//!   centre, and positions that fall outside the patch read 0 (the image) or background (the target).
//!   nnU-Net instead crops a larger region first, so its corners are filled with image data. Zero is
//!   what nnU-Net's `grid_sample` pads with outside the volume, and is the brain-masked background
//!   value after z-scoring.
//! - Images are interpolated trilinearly. That is what nnU-Net v2 does (`grid_sample` with
//!   `mode="bilinear"` on 5-D tensors); nnU-Net v1 (batchgenerators) used cubic splines (order 3).
//! - Targets (0/1 channels) are sampled at the nearest voxel, so they stay 0/1 and the BraTS regions
//!   stay nested; nnU-Net v2 interpolates each label's indicator linearly and thresholds it.
//! - Rotation and scaling are in voxel units about the voxel grid axes (BraTS is 1 mm isotropic);
//!   nnU-Net applies the matrix in coordinates normalised to [-1, 1] per axis.
//! - A transform whose probability is 0 draws no random numbers at all, which is what lets
//!   [`AugmentationConfig::basic`] reproduce [`crate::augment()`] bit for bit.
//!
//! Every random number comes from the caller's RNG, in a fixed order, so a seed fixes the result.
use ndarray::{Array4, ArrayViewMut3, Axis};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::augment::{mirror, scale_and_shift, AugmentConfig};
use crate::resample::{
    affine_resample, gaussian_blur, rotation_scale_matrix, simulate_low_resolution,
};

/// Rotation and scaling about the patch centre (images trilinear, targets nearest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpatialAugmentation {
    /// Probability that the patch is rotated; when it is, each axis gets its own angle.
    pub p_rotation: f64,
    /// The angle about X, Y and Z is drawn from U(-max, max) degrees.
    pub max_rotation_degrees: [f64; 3],
    /// Probability that the patch is scaled (drawn independently of the rotation).
    pub p_scale: f64,
    /// One isotropic factor from U(low, high). Above 1 the patch shows a larger region (structures
    /// shrink), as in nnU-Net.
    pub scale_range: [f64; 2],
}

impl Default for SpatialAugmentation {
    fn default() -> Self {
        SpatialAugmentation {
            p_rotation: 0.2,
            max_rotation_degrees: [30.0; 3],
            p_scale: 0.2,
            scale_range: [0.7, 1.4],
        }
    }
}

/// Additive Gaussian noise: one field, added to every channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoiseAugmentation {
    pub p: f64,
    /// The noise's standard deviation is drawn from U(low, high).
    pub std_range: [f64; 2],
}

impl Default for NoiseAugmentation {
    fn default() -> Self {
        NoiseAugmentation {
            p: 0.1,
            std_range: [0.0, 0.1],
        }
    }
}

/// Separable Gaussian blur, each channel on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlurAugmentation {
    pub p: f64,
    /// Once the transform fires, each channel is blurred with this probability.
    pub p_per_channel: f64,
    /// σ (voxels), drawn per channel and per axis from U(low, high).
    pub sigma_range: [f64; 2],
}

impl Default for BlurAugmentation {
    fn default() -> Self {
        BlurAugmentation {
            p: 0.2,
            p_per_channel: 0.5,
            sigma_range: [0.5, 1.0],
        }
    }
}

/// Multiply each channel by a factor drawn `BGContrast`-style from `multiplier_range`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrightnessAugmentation {
    pub p: f64,
    pub multiplier_range: [f64; 2],
}

impl Default for BrightnessAugmentation {
    fn default() -> Self {
        BrightnessAugmentation {
            p: 0.15,
            multiplier_range: [0.75, 1.25],
        }
    }
}

/// Scale each channel about its mean by a factor drawn `BGContrast`-style from `factor_range`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContrastAugmentation {
    pub p: f64,
    pub factor_range: [f64; 2],
    /// Clamp the result to the channel's range before the transform.
    pub preserve_range: bool,
}

impl Default for ContrastAugmentation {
    fn default() -> Self {
        ContrastAugmentation {
            p: 0.15,
            factor_range: [0.75, 1.25],
            preserve_range: true,
        }
    }
}

/// Downsample a channel (nearest) by a zoom factor and upsample it back (linear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LowResolutionAugmentation {
    pub p: f64,
    pub p_per_channel: f64,
    /// Zoom drawn per channel from U(low, high), the same on every axis.
    pub zoom_range: [f64; 2],
}

impl Default for LowResolutionAugmentation {
    fn default() -> Self {
        LowResolutionAugmentation {
            p: 0.25,
            p_per_channel: 0.5,
            zoom_range: [0.5, 1.0],
        }
    }
}

/// `v -> min + range * ((v - min) / range)^γ` per channel, γ drawn `BGContrast`-style. In JSON all
/// four fields are required (no per-field defaults: the plain and inverted variants differ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaAugmentation {
    pub p: f64,
    pub gamma_range: [f64; 2],
    /// Apply to the negated image (then negate back): stretches the bright end instead.
    pub invert: bool,
    /// Restore the channel's mean and (sample) standard deviation afterwards.
    pub retain_stats: bool,
}

impl Default for GammaAugmentation {
    /// nnU-Net's plain (not inverted) gamma.
    fn default() -> Self {
        GammaAugmentation {
            p: 0.3,
            gamma_range: [0.7, 1.5],
            invert: false,
            retain_stats: true,
        }
    }
}

impl GammaAugmentation {
    /// nnU-Net's gamma on the inverted image.
    pub fn inverted() -> Self {
        GammaAugmentation {
            p: 0.1,
            invert: true,
            ..Self::default()
        }
    }
}

/// Reverse spatial axes of the image and target together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorAugmentation {
    /// Axes X, Y, Z that may be reversed.
    pub axes: [bool; 3],
    /// Each allowed axis is reversed with this probability.
    pub p_per_axis: f64,
}

impl Default for MirrorAugmentation {
    fn default() -> Self {
        MirrorAugmentation {
            axes: [true; 3],
            p_per_axis: 0.5,
        }
    }
}

/// The whole augmentation of a training patch. `Default` is nnU-Net's `3d_fullres` recipe;
/// [`AugmentationConfig::basic`] is the seed's (brainseg's behaviour before this existed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentationConfig {
    pub spatial: SpatialAugmentation,
    pub noise: NoiseAugmentation,
    pub blur: BlurAugmentation,
    pub brightness: BrightnessAugmentation,
    pub contrast: ContrastAugmentation,
    pub low_resolution: LowResolutionAugmentation,
    pub gamma_inverted: GammaAugmentation,
    pub gamma: GammaAugmentation,
    pub mirror: MirrorAugmentation,
    /// The seed's per-channel intensity scale and shift, applied last (its `flip` field is ignored:
    /// flips are `mirror`). Off in nnU-Net's recipe.
    pub seed_jitter: AugmentConfig,
}

impl Default for AugmentationConfig {
    fn default() -> Self {
        AugmentationConfig {
            spatial: SpatialAugmentation::default(),
            noise: NoiseAugmentation::default(),
            blur: BlurAugmentation::default(),
            brightness: BrightnessAugmentation::default(),
            contrast: ContrastAugmentation::default(),
            low_resolution: LowResolutionAugmentation::default(),
            gamma_inverted: GammaAugmentation::inverted(),
            gamma: GammaAugmentation::default(),
            mirror: MirrorAugmentation::default(),
            seed_jitter: AugmentConfig::off(),
        }
    }
}

/// The named augmentation recipes (for a command line's `--augmentation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentationPreset {
    /// No augmentation.
    Off,
    /// The seed's: flips on every axis with p 1/2, per-channel intensity scale and shift.
    Basic,
    /// nnU-Net's `3d_fullres` recipe (see the module docs).
    Nnunet,
}

impl AugmentationPreset {
    pub const ALL: [AugmentationPreset; 3] = [
        AugmentationPreset::Off,
        AugmentationPreset::Basic,
        AugmentationPreset::Nnunet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AugmentationPreset::Off => "off",
            AugmentationPreset::Basic => "basic",
            AugmentationPreset::Nnunet => "nnunet",
        }
    }
}

impl std::fmt::Display for AugmentationPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AugmentationPreset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "none" => Ok(AugmentationPreset::Off),
            "basic" | "seed" => Ok(AugmentationPreset::Basic),
            "nnunet" | "nnu-net" => Ok(AugmentationPreset::Nnunet),
            _ => Err(format!(
                "unknown augmentation {s:?} (expected one of: off, basic, nnunet)"
            )),
        }
    }
}

impl AugmentationConfig {
    /// nnU-Net's recipe (the same as `Default`).
    pub fn nnunet() -> Self {
        Self::default()
    }

    /// Nothing at all: [`augment_patch`] leaves the patch alone and draws nothing.
    pub fn off() -> Self {
        AugmentationConfig {
            spatial: SpatialAugmentation {
                p_rotation: 0.0,
                p_scale: 0.0,
                ..SpatialAugmentation::default()
            },
            noise: NoiseAugmentation {
                p: 0.0,
                ..NoiseAugmentation::default()
            },
            blur: BlurAugmentation {
                p: 0.0,
                ..BlurAugmentation::default()
            },
            brightness: BrightnessAugmentation {
                p: 0.0,
                ..BrightnessAugmentation::default()
            },
            contrast: ContrastAugmentation {
                p: 0.0,
                ..ContrastAugmentation::default()
            },
            low_resolution: LowResolutionAugmentation {
                p: 0.0,
                ..LowResolutionAugmentation::default()
            },
            gamma_inverted: GammaAugmentation {
                p: 0.0,
                ..GammaAugmentation::inverted()
            },
            gamma: GammaAugmentation {
                p: 0.0,
                ..GammaAugmentation::default()
            },
            mirror: MirrorAugmentation {
                p_per_axis: 0.0,
                ..MirrorAugmentation::default()
            },
            seed_jitter: AugmentConfig::off(),
        }
    }

    /// The seed's augmentation, `AugmentConfig::default()`: same random numbers, same patches as
    /// [`crate::augment()`].
    pub fn basic() -> Self {
        Self::from_legacy(&AugmentConfig::default())
    }

    /// The pipeline equivalent of an old [`AugmentConfig`] (bit for bit the same patches as
    /// [`crate::augment()`] with it, given the same RNG).
    pub fn from_legacy(legacy: &AugmentConfig) -> Self {
        let off = Self::off();
        AugmentationConfig {
            mirror: if legacy.flip {
                MirrorAugmentation {
                    axes: [true; 3],
                    p_per_axis: 0.5,
                }
            } else {
                off.mirror.clone()
            },
            seed_jitter: AugmentConfig {
                flip: false,
                ..legacy.clone()
            },
            ..off
        }
    }

    pub fn preset(preset: AugmentationPreset) -> Self {
        match preset {
            AugmentationPreset::Off => Self::off(),
            AugmentationPreset::Basic => Self::basic(),
            AugmentationPreset::Nnunet => Self::nnunet(),
        }
    }
}

/// What [`augment_patch`] did. `None` means the transform did not fire; per-channel vectors hold
/// `None` for channels it skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    pub rotation_degrees: Option<[f64; 3]>,
    pub scale: Option<f64>,
    pub noise_std: Option<f64>,
    pub blur_sigmas: Option<Vec<Option<[f64; 3]>>>,
    pub brightness: Option<Vec<f64>>,
    pub contrast: Option<Vec<f64>>,
    pub low_resolution_zoom: Option<Vec<Option<f64>>>,
    pub gamma_inverted: Option<Vec<f64>>,
    pub gamma: Option<Vec<f64>>,
    pub mirrored: [bool; 3],
    /// The seed's per-channel factors (1 when off) and offsets (0 when off).
    pub jitter_scale: Vec<f32>,
    pub jitter_shift: Vec<f32>,
}

/// True with probability `p`; never draws when `p <= 0` (or NaN).
fn fires<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p.min(1.0))
}

/// U(low, high) from one draw; `low == high` gives `low`.
fn uniform<R: Rng + ?Sized>(rng: &mut R, [low, high]: [f64; 2]) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// batchgeneratorsv2's `BGContrast`: with probability 1/2 (and when `low < 1`) U(low, 1), else
/// U(max(low, 1), high). Always two draws.
fn bg_contrast<R: Rng + ?Sized>(rng: &mut R, [low, high]: [f64; 2]) -> f64 {
    let below = rng.random::<f64>() < 0.5;
    if below && low < 1.0 {
        uniform(rng, [low, 1.0])
    } else {
        uniform(rng, [low.max(1.0), high])
    }
}

/// Which of `channels` channels a per-channel probability selects (one draw each unless `p >= 1`).
fn pick_channels<R: Rng + ?Sized>(rng: &mut R, channels: usize, p: f64) -> Vec<bool> {
    (0..channels).map(|_| p >= 1.0 || fires(rng, p)).collect()
}

/// Augment a `(C, X, Y, Z)` image and its `(K, X, Y, Z)` 0/1 target in place (both end in standard
/// layout). Deterministic given the RNG's state.
pub fn augment_patch<R: Rng + ?Sized>(
    image: &mut Array4<f32>,
    target: &mut Array4<f32>,
    config: &AugmentationConfig,
    rng: &mut R,
) -> Applied {
    let channels = image.len_of(Axis(0));
    let mut applied = Applied::default();

    // Spatial.
    let s = &config.spatial;
    let rotate = fires(rng, s.p_rotation);
    let scale = fires(rng, s.p_scale);
    if rotate {
        let angles = s.max_rotation_degrees.map(|m| uniform(rng, [-m, m]));
        applied.rotation_degrees = Some(angles);
    }
    if scale {
        applied.scale = Some(uniform(rng, s.scale_range));
    }
    if rotate || scale {
        let angles = applied
            .rotation_degrees
            .unwrap_or([0.0; 3])
            .map(f64::to_radians);
        let matrix = rotation_scale_matrix(angles, applied.scale.unwrap_or(1.0));
        affine_resample(image, target, &matrix);
    }

    // Noise: one field for all channels.
    if fires(rng, config.noise.p) {
        let std = uniform(rng, config.noise.std_range);
        applied.noise_std = Some(std);
        add_shared_noise(image, std, rng);
    }

    // Blur.
    if fires(rng, config.blur.p) {
        let picked = pick_channels(rng, channels, config.blur.p_per_channel);
        let sigmas: Vec<Option<[f64; 3]>> = picked
            .iter()
            .map(|&on| on.then(|| [(); 3].map(|_| uniform(rng, config.blur.sigma_range))))
            .collect();
        for (channel, sigma) in image.axis_iter_mut(Axis(0)).zip(&sigmas) {
            if let Some(sigma) = sigma {
                gaussian_blur(channel, *sigma);
            }
        }
        applied.blur_sigmas = Some(sigmas);
    }

    // Brightness.
    if fires(rng, config.brightness.p) {
        let factors: Vec<f64> = (0..channels)
            .map(|_| bg_contrast(rng, config.brightness.multiplier_range))
            .collect();
        for (mut channel, &f) in image.axis_iter_mut(Axis(0)).zip(&factors) {
            let f = f as f32;
            channel.mapv_inplace(|v| v * f);
        }
        applied.brightness = Some(factors);
    }

    // Contrast.
    if fires(rng, config.contrast.p) {
        let factors: Vec<f64> = (0..channels)
            .map(|_| bg_contrast(rng, config.contrast.factor_range))
            .collect();
        for (channel, &f) in image.axis_iter_mut(Axis(0)).zip(&factors) {
            contrast(channel, f, config.contrast.preserve_range);
        }
        applied.contrast = Some(factors);
    }

    // Low resolution.
    if fires(rng, config.low_resolution.p) {
        let picked = pick_channels(rng, channels, config.low_resolution.p_per_channel);
        let zooms: Vec<Option<f64>> = picked
            .iter()
            .map(|&on| on.then(|| uniform(rng, config.low_resolution.zoom_range)))
            .collect();
        for (channel, zoom) in image.axis_iter_mut(Axis(0)).zip(&zooms) {
            if let Some(zoom) = zoom {
                simulate_low_resolution(channel, *zoom);
            }
        }
        applied.low_resolution_zoom = Some(zooms);
    }

    // Gamma on the inverted image, then plain gamma.
    for (g, slot) in [
        (&config.gamma_inverted, &mut applied.gamma_inverted),
        (&config.gamma, &mut applied.gamma),
    ] {
        if fires(rng, g.p) {
            let gammas: Vec<f64> = (0..channels)
                .map(|_| bg_contrast(rng, g.gamma_range))
                .collect();
            for (channel, &gamma) in image.axis_iter_mut(Axis(0)).zip(&gammas) {
                gamma_channel(channel, gamma, g.invert, g.retain_stats);
            }
            *slot = Some(gammas);
        }
    }

    // Mirroring, then the seed's intensity jitter (the seed's order).
    let m = &config.mirror;
    for axis in 0..3 {
        applied.mirrored[axis] = m.axes[axis] && fires(rng, m.p_per_axis);
    }
    mirror(image, target, applied.mirrored);
    let (jitter_scale, jitter_shift) = scale_and_shift(image, &config.seed_jitter, rng);
    applied.jitter_scale = jitter_scale;
    applied.jitter_shift = jitter_shift;
    applied
}

/// Add N(0, std²) noise to every voxel, the same field to every channel.
fn add_shared_noise<R: Rng + ?Sized>(image: &mut Array4<f32>, std: f64, rng: &mut R) {
    let (_, x, y, z) = image.dim();
    let n = x * y * z;
    let mut field = Vec::with_capacity(n + 1);
    while field.len() < n {
        // Box-Muller: two independent standard normals from two uniforms.
        let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        field.push((r * c) as f32);
        field.push((r * s) as f32);
    }
    for mut channel in image.axis_iter_mut(Axis(0)) {
        // Row-major order of the channel matches the field's.
        for (v, &e) in channel.iter_mut().zip(&field) {
            *v += e;
        }
    }
}

/// Scale one channel about its mean by `factor`; with `preserve_range`, clamp to its former range.
pub fn contrast(mut channel: ArrayViewMut3<f32>, factor: f64, preserve_range: bool) {
    if channel.is_empty() {
        return;
    }
    let mean = channel.iter().map(|&v| v as f64).sum::<f64>() / channel.len() as f64;
    let (lo, hi) = min_max(channel.iter().copied());
    channel.mapv_inplace(|v| {
        let out = ((v as f64 - mean) * factor + mean) as f32;
        if preserve_range {
            out.clamp(lo, hi)
        } else {
            out
        }
    });
}

/// nnU-Net's gamma on one channel: optionally negate; map through the channel's [min, max] to
/// `min + range * ((v - min) / range)^γ` (range floored at 1e-7); optionally restore the mean and the
/// sample standard deviation (n - 1, as `torch.std`); negate back.
pub fn gamma_channel(
    mut channel: ArrayViewMut3<f32>,
    gamma: f64,
    invert: bool,
    retain_stats: bool,
) {
    if channel.is_empty() {
        return;
    }
    if invert {
        channel.mapv_inplace(|v| -v);
    }
    let before = retain_stats.then(|| mean_std(channel.iter().copied()));
    let (lo, hi) = min_max(channel.iter().copied());
    let (lo, range) = (lo as f64, hi as f64 - lo as f64);
    let denom = range.max(1e-7);
    channel.mapv_inplace(|v| (((v as f64 - lo) / denom).powf(gamma) * range + lo) as f32);
    if let Some((mean, std)) = before {
        let (mean_now, std_now) = mean_std(channel.iter().copied());
        let ratio = std / std_now.max(1e-7);
        channel.mapv_inplace(|v| ((v as f64 - mean_now) * ratio + mean) as f32);
    }
    if invert {
        channel.mapv_inplace(|v| -v);
    }
}

fn min_max(values: impl Iterator<Item = f32>) -> (f32, f32) {
    values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// Mean and sample standard deviation (n - 1; 0 for fewer than two values).
fn mean_std(values: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
    let (n, sum) = values
        .clone()
        .fold((0usize, 0.0f64), |(n, s), v| (n + 1, s + v as f64));
    let mean = sum / n.max(1) as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let ss: f64 = values.map(|v| (v as f64 - mean).powi(2)).sum();
    (mean, (ss / (n - 1) as f64).sqrt())
}

#[cfg(test)]
mod tests;
