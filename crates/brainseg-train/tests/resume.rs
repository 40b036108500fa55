//! Determinism and exact resume on a tiny synthetic dataset.
use brainseg_model::{cpu_autodiff_device, Targets, UNet3dConfig};
use brainseg_train::{
    nnunet_recipe, train, LossKind, Optimizer, SamplingConfig, Schedule, TrainConfig,
};
use brainseg_transforms::{AugmentationConfig, PatchConfig, Standardization};
use brainseg_volume::synthetic::{write_dataset, SyntheticConfig};
use std::path::Path;

fn tiny_config(data: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        data: data.to_path_buf(),
        model: UNet3dConfig {
            depth: 2,
            base_filters: 2,
            targets: Targets::Regions,
            ..UNet3dConfig::default()
        },
        sampling: SamplingConfig {
            patch: PatchConfig {
                size: [16, 16, 8],
                foreground_share: 0.5,
                targets: brainseg_transforms::Targets::Regions,
                ..PatchConfig::default()
            },
            standardization: Standardization::ZScoreBrain,
            augmentation: AugmentationConfig::basic(),
            batch_size: 2,
        },
        epochs,
        steps_per_epoch: 2,
        valid_patches_per_case: 1,
        learning_rate: 1e-3,
        loss: LossKind::DiceBce,
        optimizer: Optimizer::Adam,
        schedule: Schedule::Constant,
        seed: 7,
        train_fraction: 0.67,
        cross_validation: None,
        split_file: None,
        init_weights: None,
        queue_depth: 2,
        precision: brainseg_model::conv::Precision::F32,
    }
}

fn dataset(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    let config = SyntheticConfig {
        shape: [32, 32, 16],
        ..SyntheticConfig::default()
    };
    write_dataset(&data, 3, &config, 1).unwrap();
    data
}

#[test]
fn same_seed_same_curve_and_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let device = cpu_autodiff_device();

    // Uninterrupted: 2 epochs.
    let straight = train(
        Some(tiny_config(&data, 2)),
        &dir.path().join("straight"),
        &device,
        |_| {},
    )
    .unwrap();
    assert_eq!(straight.len(), 2);

    // Same seed again: the same losses, bit for bit.
    let again = train(
        Some(tiny_config(&data, 2)),
        &dir.path().join("again"),
        &device,
        |_| {},
    )
    .unwrap();
    for (a, b) in straight.iter().zip(&again) {
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(a.valid_loss, b.valid_loss);
    }

    // Killed after epoch 1 (its checkpoint is the last thing written), then resumed to epoch 2.
    let run = dir.path().join("interrupted");
    let first = train(Some(tiny_config(&data, 1)), &run, &device, |_| {}).unwrap();
    assert_eq!(first[0].train_loss, straight[0].train_loss);
    brainseg_train::set_epochs(&run, 2).unwrap();
    let resumed = train(None, &run, &device, |_| {}).unwrap();
    assert_eq!(resumed.len(), 2, "history keeps epoch 1 and adds epoch 2");
    assert_eq!(resumed[1].train_loss, straight[1].train_loss);
    assert_eq!(resumed[1].valid_loss, straight[1].valid_loss);

    // The run folder holds what a user looks at.
    for file in [
        "config.json",
        "split.json",
        "metrics.csv",
        "curves.png",
        "best.safetensors",
        "last.safetensors",
        "checkpoint/model.bpk",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + 2 epochs");
}

/// nnU-Net's recipe on the tiny model: instance norm, leaky ReLU, strided and transposed
/// convolutions, deep supervision (depth 4: outputs at 1, 1/2, 1/4 weighted 2/3, 1/3, 0), SGD
/// with Nesterov momentum from 0.01, the poly schedule, Dice + BCE on regions.
fn tiny_nnunet(data: &Path, epochs: usize) -> TrainConfig {
    let mut config = nnunet_recipe(tiny_config(data, epochs));
    config.model.depth = 4;
    config
}

#[test]
fn sgd_poly_deep_supervision_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let device = cpu_autodiff_device();
    let config = tiny_nnunet(&data, 3);
    assert_eq!(config.optimizer, Optimizer::SgdNesterov);
    assert_eq!(config.schedule, Schedule::Poly);
    assert!(config.model.deep_supervision);

    let straight = train(Some(config), &dir.path().join("straight"), &device, |_| {}).unwrap();
    assert_eq!(straight.len(), 3);
    assert!(straight.iter().all(|r| r.train_loss.is_finite()));
    // The updates do something: the three epochs' losses differ.
    assert_ne!(straight[0].train_loss, straight[1].train_loss);

    // Stopped after epoch 1 (a 1-epoch run: the poly rate of epoch 1 is lr0 whatever the total),
    // extended to 3 and resumed: epochs 2 and 3 match bit for bit, which needs the SGD velocities
    // back (momentum 0.99 weighs them heavily) and the poly rates of a 3-epoch run.
    let run = dir.path().join("interrupted");
    let first = train(Some(tiny_nnunet(&data, 1)), &run, &device, |_| {}).unwrap();
    assert_eq!(first[0].train_loss, straight[0].train_loss);
    assert!(run.join("checkpoint/optimizer.bpk").is_file());
    brainseg_train::set_epochs(&run, 3).unwrap();
    let resumed = train(None, &run, &device, |_| {}).unwrap();
    assert_eq!(resumed.len(), 3);
    for epoch in 1..3 {
        assert_eq!(resumed[epoch].train_loss, straight[epoch].train_loss);
        assert_eq!(resumed[epoch].valid_loss, straight[epoch].valid_loss);
    }
    let saved = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(saved.contains("\"sgd_nesterov\"") && saved.contains("\"poly\""));
}

#[test]
fn a_second_run_in_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let device = cpu_autodiff_device();
    let run = dir.path().join("run");
    train(Some(tiny_config(&data, 1)), &run, &device, |_| {}).unwrap();
    let error = train(Some(tiny_config(&data, 1)), &run, &device, |_| {}).unwrap_err();
    assert!(
        format!("{error:#}").contains("already holds a run"),
        "{error:#}"
    );
}
