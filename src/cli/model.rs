//! `brainseg model`: the layer table and parameter count of a model file, the bundled model or a
//! configuration; `--export-f16` rewrites a model file at half the size.
use anyhow::{Context, Result};
use brainseg_model::{summary::summary, UNet3dConfig};
use brainseg_pipeline::model::{export_f16, LoadedModel, PostProcessing};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print the layer table (name, output shape, parameters, forward GFLOP per patch).
    #[arg(long)]
    pub summary: bool,
    /// Describe this model file [default: the bundled model].
    #[arg(short, long, alias = "model")]
    pub input: Option<PathBuf>,
    /// Describe the notebook's configuration (16,318,307 parameters) instead of a model file.
    #[arg(long, conflicts_with = "input")]
    pub notebook: bool,
    /// Input patch x,y,z for shapes and GFLOP [default: the model's tile].
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub patch: Option<Vec<usize>>,
    /// Filters of the first level (with --notebook).
    #[arg(long, requires = "notebook")]
    pub base_filters: Option<usize>,
    /// Levels (with --notebook).
    #[arg(long, requires = "notebook")]
    pub depth: Option<usize>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the model file again here with its weights stored as f16 (half the size; for shipping).
    #[arg(long, requires = "input")]
    pub export_f16: Option<PathBuf>,
    /// Store this in the exported file as its post-processing: keep only the largest connected
    /// tumour (true/false) unless `predict --keep-largest` says otherwise.
    #[arg(long, value_name = "BOOL", requires = "export_f16")]
    pub keep_largest: Option<bool>,
    /// Store this in the exported file: enhancing tumour smaller than this many voxels becomes
    /// necrosis unless `predict --min-enhancing` says otherwise.
    #[arg(long, value_name = "VOXELS", requires = "export_f16")]
    pub min_enhancing: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    if let (Some(source), Some(target)) = (&args.input, &args.export_f16) {
        let post = PostProcessing {
            keep_largest_tumour: args.keep_largest,
            min_enhancing_voxels: args.min_enhancing,
        };
        export_f16(source, target, post)?;
        println!("wrote {} (f16 weights)", target.display());
        return Ok(());
    }
    let (mut config, tile, name) = if args.notebook {
        (
            UNet3dConfig::default(),
            [160, 160, 16],
            "the notebook's U-Net".to_string(),
        )
    } else if let Some(path) = &args.input {
        let file = brainseg_train::model_file::load(path, &brainseg_model::cpu_device())?;
        (
            file.model.config().clone(),
            file.inference.tile,
            path.display().to_string(),
        )
    } else {
        let model = LoadedModel::load(None, &brainseg_model::cpu_device())?;
        (model.config().clone(), model.inference.tile, model.name)
    };
    if let Some(b) = args.base_filters {
        config.base_filters = b;
    }
    if let Some(d) = args.depth {
        config.depth = d;
    }
    let [x, y, z] = match &args.patch {
        Some(patch) => super::three(patch, "--patch")?,
        None => tile,
    };
    let table = summary(&config, [config.in_channels, x, y, z])
        .context("cannot describe this configuration")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else if args.summary {
        println!("{name}\n{}", table.table());
    } else {
        println!(
            "{name}: {} parameters, {:.1} GFLOP per {x}x{y}x{z} patch forward (use --summary for the layer table)",
            table.total_params, table.total_gflop
        );
    }
    Ok(())
}
