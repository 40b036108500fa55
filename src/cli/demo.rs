//! `brainseg demo`: the whole pipeline on data it makes itself (or on `--input`), in a few minutes
//! on a CPU.
use super::progress::Reporter;
use anyhow::Result;
use brainseg_core::Region;
use brainseg_pipeline::demo::{run as run_demo, DemoConfig};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (data/, heldout/, run/, predictions/, report.html) [brainseg-demo].
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Run on this dataset instead of synthetic cases (the held-out case is the first validation case).
    #[arg(short, long, alias = "data")]
    pub input: Option<PathBuf>,
    /// Synthetic cases to make (one more is made and held out) [8].
    #[arg(long)]
    pub cases: Option<usize>,
    /// Synthetic volume shape x,y,z [96,96,64].
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub shape: Option<Vec<usize>>,
    /// Training epochs (about 10 s each on 2 cores with the defaults) [10].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batches per epoch [12].
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// Patch (and tile) size x,y,z; each side divisible by 4 [64,64,32].
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub patch: Option<Vec<usize>>,
    /// Filters of the U-Net's first level (the notebook's model has 32) [8].
    #[arg(long)]
    pub base_filters: Option<usize>,
    /// Random seed of every choice: the synthetic cases, the split, the weights, the patches [0].
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let mut config = DemoConfig::default();
    if let Some(out) = args.out {
        config.out = out;
    }
    config.data = args.input;
    if let Some(shape) = &args.shape {
        config.shape = super::three(shape, "--shape")?;
    }
    if let Some(patch) = &args.patch {
        config.patch = super::three(patch, "--patch")?;
    }
    let set = |field: &mut usize, value: Option<usize>| *field = value.unwrap_or(*field);
    set(&mut config.cases, args.cases);
    set(&mut config.epochs, args.epochs);
    set(&mut config.steps_per_epoch, args.steps_per_epoch);
    set(&mut config.base_filters, args.base_filters);
    config.seed = args.seed.unwrap_or(config.seed);

    let mut progress = Reporter::new();
    let outcome = run_demo(&config, &mut progress)?;
    drop(progress);
    println!();
    println!("held-out case {}:", outcome.heldout);
    println!("{:<22} {:>8} {:>10}", "region", "Dice", "HD95 (mm)*");
    for (region, metrics) in Region::ALL.iter().zip(outcome.metrics.regions()) {
        let name = format!("{} ({})", region.abbreviation(), region.name());
        println!("{name:<22} {:>8.3} {:>10.2}", metrics.dice, metrics.hd95);
    }
    println!("* {}", outcome.metrics.hd95_convention.description());
    println!();
    println!("data:        {}", outcome.data.display());
    println!(
        "run:         {} (metrics.csv, curves.png, best.safetensors)",
        outcome.run.path().display()
    );
    println!("prediction:  {}", outcome.label_map.display());
    println!("pictures:    {}", outcome.pictures.display());
    println!("report:      {}", outcome.report.display());
    println!("finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
