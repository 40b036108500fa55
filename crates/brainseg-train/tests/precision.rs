//! A run's recorded precision. Its own test binary: starting a run sets the process-wide
//! precision, which would race with the other tests' runs in one process.
use brainseg_model::conv::{bf16_supported, Precision};
use brainseg_model::{cpu_autodiff_device, UNet3dConfig};
use brainseg_train::{Recipe, RunLayout, TrainConfig, Trainer};
use brainseg_volume::synthetic::{write_dataset, SyntheticConfig};

/// Auto becomes what this CPU does (bf16 where it has AVX512_BF16), so that the run means the
/// same on another machine.
#[test]
fn a_run_records_auto_precision_as_this_cpus() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shape = SyntheticConfig {
        shape: [32, 32, 16],
        ..SyntheticConfig::default()
    };
    write_dataset(&data, 3, &shape, 1).unwrap();
    let mut config = Recipe::Cpu.config(data);
    config.model = UNet3dConfig {
        depth: 2,
        base_filters: 2,
        ..config.model
    };
    config.sampling.patch.size = [16, 16, 8];
    config.precision = Precision::Auto;
    let run = dir.path().join("run");
    Trainer::start(Some(config), &run, &cpu_autodiff_device(), &mut |_| {}).unwrap();
    let recorded: TrainConfig =
        serde_json::from_slice(&std::fs::read(RunLayout::new(&run).config()).unwrap()).unwrap();
    let expected = if bf16_supported() {
        Precision::Bf16
    } else {
        Precision::F32
    };
    assert_eq!(recorded.precision, expected);
}
