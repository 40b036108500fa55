//! Cost of the training augmentation on one 4x128x128x32 patch (3 target channels), each transform
//! forced on, and nnU-Net's whole recipe at its own probabilities.
//!
//! `cargo run --release -p brainseg-transforms --example augment_bench`
use std::time::Instant;

use brainseg_transforms::augmentation::*;
use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let shape = (128, 128, 32);
    let mut r = ChaCha8Rng::seed_from_u64(0);
    let image0 = Array4::from_shape_fn((4, shape.0, shape.1, shape.2), |_| {
        r.random_range(-2.0f32..2.0)
    });
    let target0 = Array4::from_shape_fn((3, shape.0, shape.1, shape.2), |_| {
        r.random_range(0..2) as f32
    });
    let off = AugmentationConfig::off();
    let nn = AugmentationConfig::nnunet();
    let cases: Vec<(&str, AugmentationConfig)> = vec![
        (
            "rotation + scaling",
            AugmentationConfig {
                spatial: SpatialAugmentation {
                    p_rotation: 1.0,
                    p_scale: 1.0,
                    ..nn.spatial.clone()
                },
                ..off.clone()
            },
        ),
        (
            "noise",
            AugmentationConfig {
                noise: NoiseAugmentation {
                    p: 1.0,
                    ..nn.noise.clone()
                },
                ..off.clone()
            },
        ),
        (
            "blur (all channels)",
            AugmentationConfig {
                blur: BlurAugmentation {
                    p: 1.0,
                    p_per_channel: 1.0,
                    ..nn.blur.clone()
                },
                ..off.clone()
            },
        ),
        (
            "brightness",
            AugmentationConfig {
                brightness: BrightnessAugmentation {
                    p: 1.0,
                    ..nn.brightness.clone()
                },
                ..off.clone()
            },
        ),
        (
            "contrast",
            AugmentationConfig {
                contrast: ContrastAugmentation {
                    p: 1.0,
                    ..nn.contrast.clone()
                },
                ..off.clone()
            },
        ),
        (
            "low resolution (all channels)",
            AugmentationConfig {
                low_resolution: LowResolutionAugmentation {
                    p: 1.0,
                    p_per_channel: 1.0,
                    ..nn.low_resolution.clone()
                },
                ..off.clone()
            },
        ),
        (
            "gamma",
            AugmentationConfig {
                gamma: GammaAugmentation {
                    p: 1.0,
                    ..nn.gamma.clone()
                },
                ..off.clone()
            },
        ),
        (
            "mirror (all axes)",
            AugmentationConfig {
                mirror: MirrorAugmentation {
                    p_per_axis: 1.0,
                    ..nn.mirror.clone()
                },
                ..off.clone()
            },
        ),
        ("basic (seed)", AugmentationConfig::basic()),
        ("nnU-Net recipe", nn.clone()),
    ];
    for (name, config) in cases {
        let reps = if name == "nnU-Net recipe" { 40 } else { 8 };
        let mut times = Vec::new();
        for seed in 0..reps {
            let (mut image, mut target) = (image0.clone(), target0.clone());
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let t = Instant::now();
            augment_patch(&mut image, &mut target, &config, &mut rng);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "{name:32} median {:7.1} ms  mean {:7.1} ms  max {:7.1} ms  ({reps} patches)",
            times[times.len() / 2],
            mean,
            times[times.len() - 1]
        );
    }
}
