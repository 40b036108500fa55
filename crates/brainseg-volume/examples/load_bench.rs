//! Times loading one case (4 modalities into a `(4, 240, 240, 155)` canonical f32 image).
//!
//! `cargo run --release -p brainseg-volume --example load_bench -- [CASE] [N]`
//! CASE is a BraTS case folder or a 4-D NIfTI file (default: a shared BraTS 2018 case);
//! prints the median of N (default 5) loads in seconds as `median_s <seconds>`.
use brainseg_volume::Dataset;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let case = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/brats2018/Brats18_2013_2_1"
        ))
    });
    let runs: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let dataset = Dataset::open(&case)?;
    let case_ref = &dataset.cases[0];
    let mut seconds = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let loaded = case_ref.load()?;
        seconds.push(start.elapsed().as_secs_f64());
        assert_eq!(loaded.image.shape()[0], 4);
    }
    seconds.sort_by(f64::total_cmp);
    println!("median_s {:.4}", seconds[runs / 2]);
    Ok(())
}
