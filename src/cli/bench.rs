//! `brainseg bench` and `bench-gpu`: flags only; the benchmarks live in `brainseg_pipeline::bench`.
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {}

#[derive(clap::Args)]
pub struct GpuArgs {}

pub fn run(_args: Args) -> Result<()> {
    anyhow::bail!("moving")
}

pub fn run_gpu(_args: GpuArgs) -> Result<()> {
    anyhow::bail!("moving")
}
