use super::*;
use crate::augment::augment;
use crate::resample::{affine_resample, gaussian_blur, rotation_scale_matrix};
use crate::targets::{encode_targets, Targets};
use ndarray::{arr1, Array3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A patch of noise-like values and its region targets from a random label map.
fn random_patch(seed: u64, c: usize, shape: (usize, usize, usize)) -> (Array4<f32>, Array4<f32>) {
    let mut r = rng(seed);
    let (x, y, z) = shape;
    let image = Array4::from_shape_fn((c, x, y, z), |_| r.random_range(-2.0f32..2.0));
    let label = Array3::from_shape_fn(shape, |_| r.random_range(0u8..4));
    (image, encode_targets(Targets::Regions, label.view()))
}

fn close(a: f32, b: f64, tol: f64) -> bool {
    (a as f64 - b).abs() <= tol
}

// ---- spatial ----

#[test]
fn quarter_turn_about_z_moves_voxels_to_hand_worked_places() {
    // in[i, j] = 1 + 10 i + j on a 3x3 plane. With source = c + Rz(90°)(p - c), c = (1, 1):
    // source x = 2 - y, source y = x, so out[x, y] = in[2 - y, x].
    let plane = |v: [[f32; 3]; 3]| Array4::from_shape_fn((1, 3, 3, 1), |(_, i, j, _)| v[i][j]);
    let input = plane([[1.0, 2.0, 3.0], [11.0, 12.0, 13.0], [21.0, 22.0, 23.0]]);
    let expected = plane([[21.0, 11.0, 1.0], [22.0, 12.0, 2.0], [23.0, 13.0, 3.0]]);
    let (mut image, mut target) = (input.clone(), input.clone());
    let m = rotation_scale_matrix([0.0, 0.0, 90f64.to_radians()], 1.0);
    affine_resample(&mut image, &mut target, &m);
    assert_eq!(target, expected, "nearest is exact");
    for (a, b) in image.iter().zip(expected.iter()) {
        assert!((a - b).abs() < 1e-5, "trilinear {a} vs {b}");
    }
}

#[test]
fn quarter_turn_about_x_rotates_the_y_z_plane() {
    // Rx(90°): source y = 2 - z, source z = y, so out[y, z] = in[2 - z, y].
    let input = Array4::from_shape_fn((1, 1, 3, 3), |(_, _, j, k)| (1 + 10 * j + k) as f32);
    let expected =
        Array4::from_shape_fn((1, 1, 3, 3), |(_, _, j, k)| (1 + 10 * (2 - k) + j) as f32);
    let (mut image, mut target) = (input.clone(), input);
    affine_resample(
        &mut image,
        &mut target,
        &rotation_scale_matrix([90f64.to_radians(), 0.0, 0.0], 1.0),
    );
    assert_eq!(target, expected);
    for (a, b) in image.iter().zip(expected.iter()) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn scale_two_reads_twice_as_far_from_the_centre() {
    // n = 5, centre 2: out[p] = in[2 + 2 (p - 2)] = in[-2], in[0], in[2], in[4], in[6]; outside is 0.
    let input = Array4::from_shape_fn((1, 5, 1, 1), |(_, i, _, _)| (i + 1) as f32);
    let (mut image, mut target) = (input.clone(), input);
    affine_resample(
        &mut image,
        &mut target,
        &rotation_scale_matrix([0.0; 3], 2.0),
    );
    let expected = [0.0, 1.0, 3.0, 5.0, 0.0];
    assert_eq!(image.iter().copied().collect::<Vec<_>>(), expected);
    assert_eq!(target.iter().copied().collect::<Vec<_>>(), expected);
    // Half scale reads in[2 + (p - 2) / 2]: 1.5 and 2.5 interpolate, nearest rounds away from 0.
    let input = Array4::from_shape_fn((1, 5, 1, 1), |(_, i, _, _)| (i * i) as f32);
    let (mut image, mut target) = (input.clone(), input);
    affine_resample(
        &mut image,
        &mut target,
        &rotation_scale_matrix([0.0; 3], 0.5),
    );
    // in = 0 1 4 9 16; positions 1, 1.5, 2, 2.5, 3.
    assert_eq!(
        image.iter().copied().collect::<Vec<_>>(),
        [1.0, 2.5, 4.0, 6.5, 9.0]
    );
    assert_eq!(
        target.iter().copied().collect::<Vec<_>>(),
        [1.0, 4.0, 4.0, 9.0, 9.0]
    );
}

#[test]
fn scale_one_without_rotation_is_the_identity() {
    let config = AugmentationConfig {
        spatial: SpatialAugmentation {
            p_rotation: 1.0,
            max_rotation_degrees: [0.0; 3],
            p_scale: 1.0,
            scale_range: [1.0, 1.0],
        },
        ..AugmentationConfig::off()
    };
    let (image0, target0) = random_patch(1, 4, (8, 7, 5));
    let (mut image, mut target) = (image0.clone(), target0.clone());
    let done = augment_patch(&mut image, &mut target, &config, &mut rng(2));
    assert_eq!(done.scale, Some(1.0));
    assert_eq!(done.rotation_degrees, Some([0.0; 3]));
    assert_eq!(image, image0);
    assert_eq!(target, target0);
}

#[test]
fn targets_stay_binary_and_nested_after_rotation_and_scaling() {
    let config = AugmentationConfig {
        spatial: SpatialAugmentation {
            p_rotation: 1.0,
            p_scale: 1.0,
            ..SpatialAugmentation::default()
        },
        ..AugmentationConfig::off()
    };
    for seed in 0..8 {
        let (mut image, mut target) = random_patch(seed, 2, (12, 10, 6));
        let done = augment_patch(&mut image, &mut target, &config, &mut rng(seed + 100));
        let angles = done.rotation_degrees.unwrap();
        assert!(angles.iter().all(|a| a.abs() <= 30.0));
        assert!((0.7..=1.4).contains(&done.scale.unwrap()));
        assert!(target.iter().all(|&v| v == 0.0 || v == 1.0));
        // Regions WT >= TC >= ET voxelwise: one source voxel feeds all three channels.
        for x in 0..12 {
            for y in 0..10 {
                for z in 0..6 {
                    let t = |c| target[[c, x, y, z]];
                    assert!(t(0) >= t(1) && t(1) >= t(2));
                }
            }
        }
    }
}

// ---- intensity ----

#[test]
fn gamma_two_on_known_values() {
    let run = |gamma, invert, retain| {
        let mut v = arr1(&[0.0f32, 0.5, 1.0])
            .into_shape_with_order((3, 1, 1))
            .unwrap();
        gamma_channel(v.view_mut(), gamma, invert, retain);
        v.iter().copied().collect::<Vec<_>>()
    };
    assert_eq!(run(2.0, false, false), [0.0, 0.25, 1.0]);
    // Inverted: [0, -0.5, -1] has min -1, range 1: ((v + 1)^2 - 1) = [0, -0.75, -1], negated back.
    assert_eq!(run(2.0, true, false), [0.0, 0.75, 1.0]);
    // Retained stats: before mean 1/2, sample std 1/2; after [0, 1/4, 1] mean 5/12, sample std
    // sqrt(39)/12, so out = (v - 5/12) * 6 / sqrt(39) + 1/2.
    let k = 6.0 / 39f64.sqrt();
    let expected = [0.0, 0.25, 1.0].map(|v: f64| (v - 5.0 / 12.0) * k + 0.5);
    let got = run(2.0, false, true);
    for (g, e) in got.iter().zip(expected) {
        assert!(close(*g, e, 1e-6), "{got:?} vs {expected:?}");
    }
}

#[test]
fn contrast_on_known_values() {
    let run = |factor, preserve| {
        let mut v = arr1(&[0.0f32, 1.0, 2.0, 3.0])
            .into_shape_with_order((4, 1, 1))
            .unwrap();
        contrast(v.view_mut(), factor, preserve);
        v.iter().copied().collect::<Vec<_>>()
    };
    // Mean 1.5: 1.5 + 1.2 (v - 1.5) = -0.3, 0.9, 2.1, 3.3; kept in [0, 3] when preserving.
    let check = |got: Vec<f32>, want: [f64; 4]| {
        assert!(
            got.iter().zip(want).all(|(g, w)| close(*g, w, 1e-6)),
            "{got:?} vs {want:?}"
        );
    };
    check(run(1.2, false), [-0.3, 0.9, 2.1, 3.3]);
    check(run(1.2, true), [0.0, 0.9, 2.1, 3.0]);
    check(run(0.8, true), [0.3, 1.1, 1.9, 2.7]);
}

#[test]
fn brightness_multiplies_each_channel() {
    let config = AugmentationConfig {
        brightness: BrightnessAugmentation {
            p: 1.0,
            multiplier_range: [1.2, 1.2],
        },
        ..AugmentationConfig::off()
    };
    let mut image =
        Array4::from_shape_fn((2, 2, 1, 1), |(c, i, _, _)| [[0.5, 2.0], [-1.0, 3.0]][c][i]);
    let mut target = Array4::zeros((3, 2, 1, 1));
    let done = augment_patch(&mut image, &mut target, &config, &mut rng(0));
    assert_eq!(done.brightness, Some(vec![1.2, 1.2]));
    let want = [0.6, 2.4, -1.2, 3.6];
    assert!(
        image.iter().zip(want).all(|(g, w)| close(*g, w, 1e-6)),
        "{image:?}"
    );
}

#[test]
fn bg_contrast_draws_below_and_above_one_equally_often() {
    let mut r = rng(5);
    let draws: Vec<f64> = (0..20_000)
        .map(|_| bg_contrast(&mut r, [0.75, 1.25]))
        .collect();
    assert!(draws.iter().all(|d| (0.75..=1.25).contains(d)));
    let below = draws.iter().filter(|&&d| d < 1.0).count() as f64 / draws.len() as f64;
    assert!((below - 0.5).abs() < 0.015, "{below}");
    // Within each half the draw is uniform: the mean of the lower half is 0.875.
    let lower: Vec<f64> = draws.iter().copied().filter(|&d| d < 1.0).collect();
    let mean = lower.iter().sum::<f64>() / lower.len() as f64;
    assert!((mean - 0.875).abs() < 0.005, "{mean}");
}

#[test]
fn mirroring_a_known_array() {
    let config = AugmentationConfig {
        mirror: MirrorAugmentation {
            axes: [true, false, true],
            p_per_axis: 1.0,
        },
        ..AugmentationConfig::off()
    };
    // value = 100 x + 10 y + z on 2x2x3; reversing X and Z maps (x, y, z) <- (1 - x, y, 2 - z).
    let code = |x: usize, y: usize, z: usize| (100 * x + 10 * y + z) as f32;
    let input = Array4::from_shape_fn((1, 2, 2, 3), |(_, x, y, z)| code(x, y, z));
    let (mut image, mut target) = (input.clone(), input.clone());
    let done = augment_patch(&mut image, &mut target, &config, &mut rng(0));
    assert_eq!(done.mirrored, [true, false, true]);
    let expected = Array4::from_shape_fn((1, 2, 2, 3), |(_, x, y, z)| code(1 - x, y, 2 - z));
    assert_eq!(image, expected);
    assert_eq!(target, expected);
    assert!(image.is_standard_layout());
    // A hand-checked voxel: (0, 1, 0) holds the code of (1, 1, 2) = 112.
    assert_eq!(image[[0, 0, 1, 0]], 112.0);
}

#[test]
fn noise_has_the_drawn_variance_and_is_shared_by_the_channels() {
    let config = AugmentationConfig {
        noise: NoiseAugmentation {
            p: 1.0,
            std_range: [0.05, 0.05],
        },
        ..AugmentationConfig::off()
    };
    let mut image = Array4::<f32>::zeros((2, 64, 64, 32));
    let mut target = Array4::<f32>::zeros((3, 64, 64, 32));
    let done = augment_patch(&mut image, &mut target, &config, &mut rng(9));
    assert_eq!(done.noise_std, Some(0.05));
    let ch0 = image.index_axis(Axis(0), 0);
    let n = ch0.len() as f64;
    let mean = ch0.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = ch0.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    // n = 131072: the mean's std is 0.05 / 362 = 1.4e-4, the variance's relative std 0.4 %.
    assert!(mean.abs() < 7e-4, "{mean}");
    assert!((var / 0.0025 - 1.0).abs() < 0.02, "{var}");
    // Fourth moment of a normal: E[e^4] = 3 σ^4 (Box-Muller gives normals, not just any spread).
    let kurt = ch0.iter().map(|&v| (v as f64).powi(4)).sum::<f64>() / n / (var * var);
    assert!((kurt - 3.0).abs() < 0.1, "{kurt}");
    assert_eq!(image.index_axis(Axis(0), 0), image.index_axis(Axis(0), 1));
}

#[test]
fn blur_of_a_delta_is_the_normalised_gaussian_kernel() {
    let sigmas = [0.6, 0.8, 1.0];
    let mut v = Array3::<f32>::zeros((9, 9, 9));
    v[[4, 4, 4]] = 1.0;
    gaussian_blur(v.view_mut(), sigmas);
    // Kernel radius: the odd size nearest 6σ + 0.5 -> 4.1 -> 5 taps, 5.3 -> 5, 6.5 -> 7.
    let radius = [2i32, 2, 3];
    let g = |a: usize, d: i32| -> f64 {
        if d.abs() > radius[a] {
            return 0.0;
        }
        let f = |t: i32| (-(t * t) as f64 / (2.0 * sigmas[a] * sigmas[a])).exp();
        f(d) / (-radius[a]..=radius[a]).map(f).sum::<f64>()
    };
    for ((x, y, z), &got) in v.indexed_iter() {
        let [dx, dy, dz] = [x, y, z].map(|i| i as i32 - 4);
        let want = g(0, dx) * g(1, dy) * g(2, dz);
        assert!(close(got, want, 1e-7), "({x},{y},{z}) {got} vs {want}");
    }
    assert!(close(v.sum(), 1.0, 1e-5));
}

#[test]
fn blur_keeps_a_constant_and_reflects_at_the_edges() {
    let mut v = Array3::<f32>::from_elem((4, 3, 2), 2.5);
    gaussian_blur(v.view_mut(), [1.0, 0.5, 0.9]);
    assert!(v.iter().all(|&x| close(x, 2.5, 1e-6)));
    // 1-D reflect: [1, 0, 0, 0] with σ = 0.5 (3 taps w1 w0 w1): out[0] = w0 + 2 w1·0 = w0 and
    // out[1] = w1 (from in[0]) while padding index -1 reads in[1] = 0.
    let k = |t: f64| (-t * t / (2.0 * 0.25f64)).exp();
    let (w0, w1) = (
        k(0.0) / (k(0.0) + 2.0 * k(1.0)),
        k(1.0) / (k(0.0) + 2.0 * k(1.0)),
    );
    let mut line = Array3::<f32>::zeros((4, 1, 1));
    line[[0, 0, 0]] = 1.0;
    gaussian_blur(line.view_mut(), [0.5, 0.5, 0.5]);
    let want = [w0, w1, 0.0, 0.0];
    assert!(
        line.iter().zip(want).all(|(g, w)| close(*g, w, 1e-7)),
        "{line:?}"
    );
}

#[test]
fn low_resolution_of_a_constant_is_the_constant() {
    for zoom in [0.5, 0.63, 0.9, 1.0] {
        let mut v = Array3::<f32>::from_elem((7, 6, 5), 3.5);
        simulate_low_resolution(v.view_mut(), zoom);
        assert!(v.iter().all(|&x| close(x, 3.5, 1e-6)), "zoom {zoom}");
    }
}

#[test]
fn low_resolution_on_a_hand_worked_line() {
    // n = 4, zoom 1/2 -> 2 samples at floor((j + 0.5) * 2) = 1, 3: [2, 8]. Back up, output i reads
    // max((i + 0.5) / 2 - 0.5, 0) = 0, 0.25, 0.75, 1.25 (clamped to the last sample):
    // [2, 0.75·2 + 0.25·8, 0.25·2 + 0.75·8, 8].
    let mut v = arr1(&[1.0f32, 2.0, 4.0, 8.0])
        .into_shape_with_order((4, 1, 1))
        .unwrap();
    simulate_low_resolution(v.view_mut(), 0.5);
    assert_eq!(v.iter().copied().collect::<Vec<_>>(), [2.0, 3.5, 6.5, 8.0]);
}

// ---- the pipeline ----

#[test]
fn same_seed_same_patch_and_another_seed_another() {
    let everything = AugmentationConfig {
        spatial: SpatialAugmentation {
            p_rotation: 1.0,
            p_scale: 1.0,
            ..SpatialAugmentation::default()
        },
        noise: NoiseAugmentation {
            p: 1.0,
            ..NoiseAugmentation::default()
        },
        blur: BlurAugmentation {
            p: 1.0,
            ..BlurAugmentation::default()
        },
        brightness: BrightnessAugmentation {
            p: 1.0,
            ..BrightnessAugmentation::default()
        },
        contrast: ContrastAugmentation {
            p: 1.0,
            ..ContrastAugmentation::default()
        },
        low_resolution: LowResolutionAugmentation {
            p: 1.0,
            ..LowResolutionAugmentation::default()
        },
        gamma_inverted: GammaAugmentation {
            p: 1.0,
            ..GammaAugmentation::inverted()
        },
        gamma: GammaAugmentation {
            p: 1.0,
            ..GammaAugmentation::default()
        },
        ..AugmentationConfig::nnunet()
    };
    let run = |seed| {
        let (mut image, mut target) = random_patch(3, 4, (16, 12, 8));
        let done = augment_patch(&mut image, &mut target, &everything, &mut rng(seed));
        (image, target, done)
    };
    let (a, b) = (run(21), run(21));
    assert_eq!(a, b);
    assert!(a.0.iter().all(|v| v.is_finite()));
    let c = run(22);
    assert_ne!(a.0, c.0);
    assert_ne!(a.2, c.2);
}

#[test]
fn basic_reproduces_the_seed_augmentation_bit_for_bit() {
    for legacy in [
        AugmentConfig::default(),
        AugmentConfig::off(),
        AugmentConfig {
            flip: false,
            ..AugmentConfig::default()
        },
        AugmentConfig {
            shift: false,
            scale_range: 0.3,
            ..AugmentConfig::default()
        },
    ] {
        for seed in 0..6 {
            let (mut image_a, mut target_a) = random_patch(seed, 3, (6, 5, 4));
            let (mut image_b, mut target_b) = (image_a.clone(), target_a.clone());
            let (mut rng_a, mut rng_b) = (rng(seed), rng(seed));
            let old = augment(&mut image_a, &mut target_a, &legacy, &mut rng_a);
            let new = augment_patch(
                &mut image_b,
                &mut target_b,
                &AugmentationConfig::from_legacy(&legacy),
                &mut rng_b,
            );
            assert_eq!(image_a, image_b);
            assert_eq!(target_a, target_b);
            assert_eq!(old.flipped, new.mirrored);
            assert_eq!((old.scale, old.shift), (new.jitter_scale, new.jitter_shift));
            assert_eq!(
                rng_a.random::<u64>(),
                rng_b.random::<u64>(),
                "same draws used"
            );
        }
    }
    assert_eq!(
        AugmentationConfig::basic(),
        AugmentationConfig::from_legacy(&AugmentConfig::default())
    );
    assert_eq!(
        AugmentationConfig::from_legacy(&AugmentConfig::off()),
        AugmentationConfig::off()
    );
}

#[test]
fn off_changes_nothing_and_draws_nothing() {
    let (image0, target0) = random_patch(4, 2, (5, 5, 5));
    let (mut image, mut target) = (image0.clone(), target0.clone());
    let mut r = rng(1);
    augment_patch(&mut image, &mut target, &AugmentationConfig::off(), &mut r);
    assert_eq!((image, target), (image0, target0));
    assert_eq!(r.random::<u64>(), rng(1).random::<u64>());
}

/// |observed - p| within 4.5 binomial standard deviations.
fn assert_rate(name: &str, hits: usize, n: usize, p: f64) {
    let rate = hits as f64 / n as f64;
    let tol = 4.5 * (p * (1.0 - p) / n as f64).sqrt();
    assert!((rate - p).abs() <= tol, "{name}: {rate} vs {p} (± {tol})");
}

#[test]
fn each_transform_fires_at_its_nnunet_probability() {
    let config = AugmentationConfig::nnunet();
    let n = 4000;
    let channels = 2;
    let mut count = std::collections::BTreeMap::<&str, usize>::new();
    let mut per_channel = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    let mut bump = |k| *count.entry(k).or_default() += 1;
    for seed in 0..n as u64 {
        let (mut image, mut target) = random_patch(seed, channels, (4, 4, 3));
        let d = augment_patch(&mut image, &mut target, &config, &mut rng(seed));
        if let Some(a) = d.rotation_degrees {
            bump("rotation");
            assert!(a.iter().all(|a| a.abs() <= 30.0));
        }
        if let Some(s) = d.scale {
            bump("scale");
            assert!((0.7..=1.4).contains(&s));
        }
        if let Some(s) = d.noise_std {
            bump("noise");
            assert!((0.0..=0.1).contains(&s));
        }
        if let Some(b) = &d.blur_sigmas {
            bump("blur");
            let e = per_channel.entry("blur").or_default();
            e.0 += b.iter().flatten().count();
            e.1 += channels;
            let sigmas = b.iter().flatten().flatten();
            assert!(sigmas.into_iter().all(|s| (0.5..=1.0).contains(s)));
        }
        if let Some(f) = &d.brightness {
            bump("brightness");
            assert!(f.iter().all(|f| (0.75..=1.25).contains(f)));
        }
        if let Some(f) = &d.contrast {
            bump("contrast");
            assert!(f.iter().all(|f| (0.75..=1.25).contains(f)));
        }
        if let Some(z) = &d.low_resolution_zoom {
            bump("low_resolution");
            let e = per_channel.entry("low_resolution").or_default();
            e.0 += z.iter().flatten().count();
            e.1 += channels;
            assert!(z.iter().flatten().all(|z| (0.5..=1.0).contains(z)));
        }
        if let Some(g) = &d.gamma_inverted {
            bump("gamma_inverted");
            assert!(g.iter().all(|g| (0.7..=1.5).contains(g)));
        }
        if let Some(g) = &d.gamma {
            bump("gamma");
            assert!(g.iter().all(|g| (0.7..=1.5).contains(g)));
        }
        for (axis, name) in ["mirror_x", "mirror_y", "mirror_z"].into_iter().enumerate() {
            if d.mirrored[axis] {
                bump(name);
            }
        }
        assert_eq!(
            d.jitter_scale,
            vec![1.0; channels],
            "no seed jitter in nnU-Net's recipe"
        );
    }
    for (name, p) in [
        ("rotation", 0.2),
        ("scale", 0.2),
        ("noise", 0.1),
        ("blur", 0.2),
        ("brightness", 0.15),
        ("contrast", 0.15),
        ("low_resolution", 0.25),
        ("gamma_inverted", 0.1),
        ("gamma", 0.3),
        ("mirror_x", 0.5),
        ("mirror_y", 0.5),
        ("mirror_z", 0.5),
    ] {
        assert_rate(name, count.get(name).copied().unwrap_or(0), n, p);
    }
    for (name, (hits, total)) in per_channel {
        assert_rate(name, hits, total, 0.5);
    }
}

// ---- configuration ----

#[test]
fn presets_parse_and_name_their_configs() {
    for p in AugmentationPreset::ALL {
        assert_eq!(p.name().parse::<AugmentationPreset>(), Ok(p));
        assert_eq!(p.to_string(), p.name());
    }
    assert!("elastic".parse::<AugmentationPreset>().is_err());
    assert_eq!(
        AugmentationConfig::preset(AugmentationPreset::Nnunet),
        AugmentationConfig::default()
    );
    assert_eq!(
        AugmentationConfig::preset(AugmentationPreset::Basic),
        AugmentationConfig::basic()
    );
    assert_eq!(
        AugmentationConfig::preset(AugmentationPreset::Off),
        AugmentationConfig::off()
    );
}
