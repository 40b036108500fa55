//! `brainseg demo`: the whole pipeline on data it makes itself (or on `--data`), in a few minutes on a CPU:
//! synthetic dataset -> training -> sliding-window prediction of a held-out case -> evaluation -> pictures
//! -> HTML report.
use anyhow::{Context, Result};
use brainseg_infer::{InferenceConfig, Tiling};
use brainseg_metrics::{CaseMetrics, CaseRow, Summary};
use brainseg_volume::synthetic::{write_dataset, SyntheticConfig};
use brainseg_volume::{write_label, Dataset};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (data/, run/, predictions/, report.html).
    #[arg(long, default_value = "brainseg-demo")]
    pub out: PathBuf,
    /// Run on this dataset instead of synthetic cases (the held-out case is the first validation case).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Synthetic cases to make (one more is made and held out for prediction).
    #[arg(long, default_value_t = 8)]
    pub cases: usize,
    /// Synthetic volume shape x,y,z.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "96,96,64")]
    pub shape: Vec<usize>,
    /// Training epochs (about 15 s each on 2 cores with the defaults).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Batches per epoch.
    #[arg(long, default_value_t = 12)]
    pub steps_per_epoch: usize,
    /// Patch (and tile) size x,y,z; each side divisible by 4.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "64,64,32")]
    pub patch: Vec<usize>,
    /// Filters of the U-Net's first level (the seed's model has 32).
    #[arg(long, default_value_t = 8)]
    pub base_filters: usize,
    /// Seed of every random choice: the synthetic cases, the split, the weights, the patches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let out = args.out.clone();
    if out.join("run").join("config.json").exists() {
        anyhow::bail!(
            "{}: holds an earlier demo; remove it or choose another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;

    // 1. Data: synthetic cases written as a real MSD dataset, plus one held-out case.
    let (data, heldout_data, heldout_id) = match &args.data {
        Some(data) => {
            let dataset = Dataset::open(data)?;
            let split = dataset.split(args.seed, 0.8);
            let id = split
                .valid
                .first()
                .cloned()
                .context("the dataset needs at least 2 cases")?;
            (data.clone(), data.clone(), id)
        }
        None => {
            let shape: [usize; 3] = args
                .shape
                .clone()
                .try_into()
                .map_err(|_| anyhow::anyhow!("--shape needs 3 sizes"))?;
            let config = SyntheticConfig {
                shape,
                ..SyntheticConfig::default()
            };
            eprintln!(
                "[1/5] making {} synthetic cases of {}x{}x{} in {}",
                args.cases + 1,
                shape[0],
                shape[1],
                shape[2],
                out.join("data").display()
            );
            write_dataset(&out.join("data"), args.cases, &config, args.seed)?;
            let heldout = write_dataset(
                &out.join("heldout"),
                1,
                &config,
                args.seed.wrapping_add(1_000_003),
            )?;
            (out.join("data"), out.join("heldout"), heldout[0].clone())
        }
    };

    // 2. Train a small region-based model (Dice + BCE, z-scored volumes, foreground oversampling).
    eprintln!(
        "[2/5] training a small U-Net on the CPU ({} epochs x {} steps)",
        args.epochs, args.steps_per_epoch
    );
    let run = out.join("run");
    let train_args = super::train::Args {
        data: Some(data.clone()),
        out: Some(run.clone()),
        resume: None,
        patch: args.patch.clone(),
        batch_size: 2,
        epochs: Some(args.epochs),
        steps_per_epoch: args.steps_per_epoch,
        valid_patches: 2,
        learning_rate: 3e-3,
        seed: args.seed,
        train_fraction: 0.8,
        depth: 3,
        base_filters: args.base_filters,
        upsampling: super::train::UpArg::Nearest,
        norm: super::train::NormArg::None,
        targets: super::train::TargetArg::Regions,
        loss: super::train::LossArg::DiceBce,
        standardization: super::train::StdArg::Zscore,
        foreground_share: 0.5,
        background_threshold: 0.95,
        no_augment: false,
        queue: 2,
        backend: super::Backend::Cpu,
    };
    let config = super::train::config_from(&train_args)?;
    super::train::run_training(Some(config), &run, super::Backend::Cpu)?;

    // 3. Predict the held-out case with Gaussian sliding windows.
    eprintln!("[3/5] segmenting held-out case {heldout_id} with sliding windows");
    let device = super::device(super::Backend::Cpu)?;
    let loaded = super::model_io::load_model(Some(&run.join("best.safetensors")), &device)?;
    let inference = InferenceConfig {
        tiling: Tiling::Sliding,
        overlap: 0.5,
        ..loaded.inference.clone()
    };
    let case = Dataset::open(&heldout_data)?
        .case(&heldout_id)
        .context("held-out case vanished")?
        .load()?;
    let (labels, _) = super::predict::segment(&case, &loaded, &inference, 0.5, 0, &device)?;
    let predictions = out.join("predictions");
    std::fs::create_dir_all(&predictions)?;
    let label_path = predictions.join(format!("{heldout_id}.nii.gz"));
    write_label(&label_path, &labels, &case.geometry)?;

    // 4. Evaluate against the held-out ground truth.
    eprintln!("[4/5] evaluating");
    let truth = case
        .label
        .clone()
        .context("the held-out case has no label")?;
    let metrics = CaseMetrics::compute(labels.view(), truth.view(), case.geometry.spacing())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let summary = Summary::new(vec![CaseRow {
        case: heldout_id.clone(),
        metrics: metrics.clone(),
    }]);
    brainseg_visualize::write_atomic(run.join("evaluation.json"), summary.to_json().as_bytes())?;
    brainseg_visualize::write_atomic(run.join("evaluation.csv"), summary.to_csv().as_bytes())?;

    // 5. Pictures and the report.
    eprintln!("[5/5] drawing pictures and the report");
    let pictures = run.join("pictures");
    super::show::draw_case(
        &case,
        Some(&truth),
        Some(&labels),
        &pictures,
        None,
        brainseg_visualize::Convention::Radiological,
        brainseg_visualize::Overlay::Replace,
        None,
        true,
    )?;
    let report = out.join("report.html");
    super::report::build(&run, "brainseg demo")?.write(&report)?;

    println!();
    println!("held-out case {heldout_id}:");
    println!("{:<6} {:>8} {:>10}", "region", "Dice", "HD95 (mm)");
    for (name, region) in ["WT", "TC", "ET"].iter().zip(metrics.regions()) {
        println!("{name:<6} {:>8.3} {:>10.2}", region.dice, region.hd95);
    }
    println!();
    println!("data:        {}", data.display());
    println!(
        "run:         {} (metrics.csv, curves.png, best.safetensors)",
        run.display()
    );
    println!("prediction:  {}", label_path.display());
    println!("pictures:    {}", pictures.display());
    println!("report:      {}", report.display());
    println!("finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
