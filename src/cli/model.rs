//! `brainseg model`: the layer table and parameter count of a configuration or a model file.
use anyhow::{Context, Result};
use brainseg_model::{checkpoint::read_checkpoint_config, summary::summary, UNet3dConfig};
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
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_values_t = [160, 160, 16])]
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
}

pub fn run(args: Args) -> Result<()> {
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
    let [x, y, z]: [usize; 3] = args.patch.clone().try_into().map_err(|_| anyhow::anyhow!("--patch needs 3 sizes"))?;
    let table = summary(&config, [config.in_channels, x, y, z]).context("cannot describe this configuration")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else if args.summary {
        println!("{}", table.table());
    } else {
        println!("{} parameters, {:.1} GFLOP per {x}x{y}x{z} patch forward (use --summary for the layer table)", table.total_params, table.total_gflop);
    }
    Ok(())
}
