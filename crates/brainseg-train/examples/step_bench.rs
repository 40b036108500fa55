//! Seconds per training step (forward, backward, optimiser update) of the bundled configuration:
//! 16 base filters, depth 4, patch 128x128x32, batch 2, region targets, Dice + BCE, with the old
//! network (ReLU, no norm, max pooling, nearest upsampling, Adam) and with nnU-Net's
//! (instance norm, leaky ReLU, strided and transposed convolutions, deep supervision, SGD with
//! Nesterov momentum). Random inputs and 0/1 targets; the first steps are warm-up.
//!
//!     cargo run --release -p brainseg-train --example step_bench -- [steps] [warmup] [x,y,z] [batch] [ablate]
//!
//! With `ablate`, also the nnU-Net network less one piece at a time (max pooling instead of
//! strided convolutions, no instance norm, no deep supervision), to see what each costs.
use brainseg_model::{cpu_autodiff_device, summary, Targets, UNet3d, UNet3dConfig};
use brainseg_train::{training_loss, LossKind, Optimizer};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let warmup: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let size: Vec<usize> = args
        .get(3)
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or(vec![128, 128, 32]);
    let batch: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2);
    let size: [usize; 3] = size.try_into().map_err(|_| "size needs 3 numbers")?;

    let old = UNet3dConfig {
        base_filters: 16,
        targets: Targets::Regions,
        ..UNet3dConfig::default()
    };
    let nnunet = old.clone().with_nnunet_recipe();
    let device = cpu_autodiff_device();
    let shape = [batch, old.in_channels, size[0], size[1], size[2]];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let voxels: usize = shape.iter().product();
    let images: Vec<f32> = (0..voxels).map(|_| rng.random_range(-1.0..1.0)).collect();
    let target_shape = [batch, 3, size[0], size[1], size[2]];
    let targets: Vec<f32> = (0..target_shape.iter().product::<usize>())
        .map(|_| (rng.random::<f32>() < 0.1) as u8 as f32)
        .collect();
    let images = Tensor::<5>::from_data(TensorData::new(images, shape), &device);
    let targets = Tensor::<5>::from_data(TensorData::new(targets, target_shape), &device);
    println!(
        "threads {} | batch {batch} | patch {size:?} | steps {steps} after {warmup} warm-up",
        rayon::current_num_threads()
    );

    let mut runs = vec![
        ("old (seed network, Adam)", old, Optimizer::Adam),
        (
            "nnU-Net (recipe, SGD)",
            nnunet.clone(),
            Optimizer::SgdNesterov,
        ),
    ];
    if args.get(5).map(String::as_str) == Some("ablate") {
        runs.extend([
            (
                "nnU-Net with max pooling",
                UNet3dConfig {
                    downsampling: brainseg_model::Downsampling::MaxPool,
                    ..nnunet.clone()
                },
                Optimizer::SgdNesterov,
            ),
            (
                "nnU-Net without norm",
                UNet3dConfig {
                    normalisation: brainseg_model::Normalisation::None,
                    ..nnunet.clone()
                },
                Optimizer::SgdNesterov,
            ),
            (
                "nnU-Net without deep sup.",
                UNet3dConfig {
                    deep_supervision: false,
                    ..nnunet.clone()
                },
                Optimizer::SgdNesterov,
            ),
        ]);
    }
    for (name, config, optimizer) in runs {
        let table = summary(&config, [config.in_channels, size[0], size[1], size[2]])?;
        let mut model = Some(UNet3d::new(&config, 0, &device)?);
        let mut optim = optimizer.init();
        let mut times = Vec::new();
        for step in 0..warmup + steps {
            let started = Instant::now();
            let network = model.take().expect("put back after each step");
            let loss = training_loss(LossKind::DiceBce, &network, images.clone(), targets.clone())?;
            let grads = GradientsParams::from_grads(loss.backward(), &network);
            model = Some(optim.step(0.01, network, grads));
            let seconds = started.elapsed().as_secs_f64();
            eprintln!("  {name} step {step}: {seconds:.2} s");
            if step >= warmup {
                times.push(seconds);
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{name:<26} params {:>10}  forward GFLOP/patch {:>7.2}  step median {median:.2} s  (min {:.2}, max {:.2})",
            table.total_params,
            table.total_gflop,
            times[0],
            times[times.len() - 1]
        );
    }
    Ok(())
}
