//! `brainseg info`: what is in a file, a case or a dataset, as a table or JSON.
use anyhow::Result;
use brainseg_pipeline::info::{describe, Info};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A .nii/.nii.gz file, a BraTS case folder, or a dataset folder (MSD or raw BraTS).
    #[arg(value_name = "INPUT")]
    pub path: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let info = describe(&args.path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print_table(&info);
    }
    Ok(())
}

fn print_table(info: &Info) {
    println!("{}", info.path);
    if let Some(layout) = &info.layout {
        println!("layout: {layout}, {} case(s)", info.cases.len());
        if info.cases.len() > 1 {
            for id in &info.cases {
                println!("  {id}");
            }
        }
    }
    if !info.series.is_empty() {
        println!(
            "{:>6} {:<28} {:<9} {:<16} {:<20} {:<8} problem",
            "number", "description", "plane", "size", "spacing (mm)", "guess"
        );
        for s in &info.series {
            let [c, r, z, v] = s.size;
            let [sx, sy, sz] = s.spacing_mm;
            let size = if v > 1 { format!("{c}x{r}x{z}x{v}") } else { format!("{c}x{r}x{z}") };
            let number = s.number.map_or("-".into(), |n| n.to_string());
            let description: String = s.description.chars().take(28).collect();
            println!(
                "{number:>6} {description:<28} {:<9} {size:<16} {:<20} {:<8} {}",
                s.orientation,
                format!("{sx:.2} x {sy:.2} x {sz:.2}"),
                s.modality,
                s.problem.as_deref().unwrap_or("")
            );
        }
    }
    if !info.volumes.is_empty() {
        println!();
        println!(
            "{:<10} {:<16} {:<8} {:<24} {:<6} {:>12} {:>12} {:>14}",
            "volume", "shape", "dtype", "spacing (mm)", "orient", "min", "max", "mean (nonzero)"
        );
        for v in &info.volumes {
            let shape: Vec<String> = v.shape.iter().map(|s| s.to_string()).collect();
            let [sx, sy, sz] = v.spacing_mm;
            println!(
                "{:<10} {:<16} {:<8} {:<24} {:<6} {:>12.4} {:>12.4} {:>14.4}",
                v.name,
                shape.join("x"),
                v.dtype,
                format!("{sx:.3} x {sy:.3} x {sz:.3}"),
                v.orientation,
                v.min,
                v.max,
                v.mean_nonzero
            );
        }
    }
    if !info.labels.is_empty() {
        println!();
        println!(
            "{:<6} {:<22} {:>12} {:>9}",
            "label", "class (MSD numbering)", "voxels", "volume %"
        );
        let total: usize = info.labels.iter().map(|l| l.voxels).sum();
        for l in &info.labels {
            println!(
                "{:<6} {:<22} {:>12} {:>8.3}%",
                l.label,
                l.name,
                l.voxels,
                100.0 * l.voxels as f64 / total.max(1) as f64
            );
        }
    }
}
