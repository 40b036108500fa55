//! `brainseg model`: the layer table and parameter count of a configuration or a model file.
use anyhow::{Context, Result};
use brainseg_infer::CHECKPOINT_METADATA_KEY;
use brainseg_model::checkpoint::{
    load_checkpoint, read_checkpoint_config, read_metadata, save_checkpoint_with_metadata,
    StorageDtype,
};
use brainseg_model::{summary::summary, UNet3dConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print the layer table (name, output shape, parameters, forward GFLOP per patch).
    #[arg(long)]
    pub summary: bool,
    /// Describe this model file instead of the seed's default configuration.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Input patch x,y,z for shapes and GFLOP.
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "160,160,16")]
    pub patch: Vec<usize>,
    /// Filters of the first level (for the default configuration).
    #[arg(long)]
    pub base_filters: Option<usize>,
    /// Levels (for the default configuration).
    #[arg(long)]
    pub depth: Option<usize>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the --model file again here with its weights stored as f16 (half the size; for shipping).
    #[arg(long, requires = "model")]
    pub export_f16: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if let (Some(source), Some(target)) = (&args.model, &args.export_f16) {
        let device = brainseg_model::cpu_device();
        let model = load_checkpoint(source, None, &device)?;
        let inference = read_metadata(source, CHECKPOINT_METADATA_KEY)?;
        let extra: Vec<(&str, &str)> = inference
            .as_deref()
            .map(|v| vec![(CHECKPOINT_METADATA_KEY, v)])
            .unwrap_or_default();
        save_checkpoint_with_metadata(&model, target, StorageDtype::F16, &extra)?;
        println!("wrote {} (f16 weights)", target.display());
        return Ok(());
    }
    let mut config = match &args.model {
        Some(path) => read_checkpoint_config(path)?,
        None => UNet3dConfig::default(),
    };
    if let Some(b) = args.base_filters {
        config.base_filters = b;
    }
    if let Some(d) = args.depth {
        config.depth = d;
    }
    let [x, y, z]: [usize; 3] = args
        .patch
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--patch needs 3 sizes"))?;
    let table = summary(&config, [config.in_channels, x, y, z])
        .context("cannot describe this configuration")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else if args.summary {
        println!("{}", table.table());
    } else {
        println!("{} parameters, {:.1} GFLOP per {x}x{y}x{z} patch forward (use --summary for the layer table)", table.total_params, table.total_gflop);
    }
    Ok(())
}
