//! Patches per second of the training data pipeline alone (no model): decode + cache a dataset once,
//! then draw batches as training does (sampling, standardisation, augmentation, stacking).
//!
//!     cargo run --release -p brainseg-train --example pipeline_bench -- ../shared/data/brats2018 [batches] [x,y,z]
use brainseg_train::data::{open_volumes, SamplingConfig};
use brainseg_transforms::{AugmentationConfig, PatchConfig, Standardization};
use brainseg_volume::Dataset;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let data = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("../shared/data/brats2018");
    let batches: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let size: Vec<usize> = args
        .get(3)
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or(vec![160, 160, 16]);
    let dataset = Dataset::open(std::path::Path::new(data))?;
    let split = dataset.split(0, 0.8);
    let cache = std::env::temp_dir().join("brainseg-pipeline-bench-cache");
    for standardization in [
        Standardization::NotebookSlices,
        Standardization::ZScoreBrain,
    ] {
        let started = Instant::now();
        let source = Arc::new(open_volumes(
            &dataset,
            &split,
            &cache,
            standardization,
            |_| {},
        )?);
        let cached = started.elapsed().as_secs_f64();
        let config = SamplingConfig {
            patch: PatchConfig {
                size: [size[0], size[1], size[2]],
                ..PatchConfig::default()
            },
            standardization,
            augmentation: AugmentationConfig::basic(),
            batch_size: 3,
        };
        let started = Instant::now();
        let receiver = source.epoch_batches(&config, 0, 1, batches, 4);
        let mut patches = 0;
        for batch in receiver {
            patches += batch?.images.shape()[0];
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{standardization:?}: {patches} patches of {}x{}x{} in {seconds:.2} s = {:.1} patches/s on {} threads (decode + cache of {} cases: {cached:.1} s)",
            size[0], size[1], size[2], patches as f64 / seconds, rayon::current_num_threads(), split.train.len() + split.valid.len()
        );
    }
    Ok(())
}
