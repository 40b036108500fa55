//! `brainseg info`: what is in a file, a case or a dataset, as a table or JSON.
use anyhow::Result;
use brainseg_volume::{read_image, Dataset, ImageSource, CLASS_NAMES, MODALITIES};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A .nii/.nii.gz file, a BraTS case folder, or a dataset folder (MSD or raw BraTS).
    pub path: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct VolumeInfo {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    spacing_mm: [f32; 3],
    orientation: String,
    min: f32,
    max: f32,
    mean_nonzero: f32,
}

#[derive(Serialize)]
struct LabelCount {
    label: u8,
    name: String,
    voxels: usize,
}

#[derive(Serialize)]
struct Report {
    path: String,
    layout: Option<String>,
    cases: Vec<String>,
    volumes: Vec<VolumeInfo>,
    /// Label voxel counts in MSD numbering (BraTS labels are mapped 1->2, 2->1, 4->3 on load).
    labels: Vec<LabelCount>,
}

fn volume_info(
    name: &str,
    data: ndarray::ArrayView3<f32>,
    geometry: &brainseg_volume::Geometry,
    dtype: &str,
) -> VolumeInfo {
    let (mut min, mut max, mut sum, mut n) = (f32::INFINITY, f32::NEG_INFINITY, 0f64, 0usize);
    for &v in data.iter() {
        min = min.min(v);
        max = max.max(v);
        if v != 0.0 {
            sum += v as f64;
            n += 1;
        }
    }
    VolumeInfo {
        name: name.to_string(),
        shape: data.shape().to_vec(),
        dtype: dtype.to_string(),
        spacing_mm: geometry.spacing(),
        orientation: geometry.source_code(),
        min,
        max,
        mean_nonzero: if n > 0 { (sum / n as f64) as f32 } else { 0.0 },
    }
}

fn label_counts(label: &ndarray::Array3<u8>) -> Vec<LabelCount> {
    let mut counts = [0usize; 4];
    for &v in label.iter() {
        counts[v as usize] += 1;
    }
    (0..4u8)
        .map(|l| LabelCount {
            label: l,
            name: if l == 0 {
                "background".into()
            } else {
                CLASS_NAMES[l as usize - 1].into()
            },
            voxels: counts[l as usize],
        })
        .collect()
}

pub fn run(args: Args) -> Result<()> {
    let path = &args.path;
    let is_file = path.is_file();
    let mut report = Report {
        path: path.display().to_string(),
        layout: None,
        cases: vec![],
        volumes: vec![],
        labels: vec![],
    };
    if is_file && !path.join("dataset.json").exists() && path.extension().is_some() {
        // A single NIfTI file: describe every channel.
        let image = read_image(path)?;
        for c in 0..image.data.shape()[0] {
            let name = if image.data.shape()[0] == 1 {
                "volume".to_string()
            } else {
                format!("channel {c}")
            };
            report.volumes.push(volume_info(
                &name,
                image.data.index_axis(ndarray::Axis(0), c),
                &image.geometry,
                &image.source_dtype,
            ));
        }
    } else {
        let dataset = Dataset::open(path)?;
        report.layout = Some(format!("{:?}", dataset.layout));
        report.cases = dataset.cases.iter().map(|c| c.id.clone()).collect();
        if dataset.cases.len() == 1 {
            let case_ref = &dataset.cases[0];
            let case = case_ref.load()?;
            let dtype = match &case_ref.image {
                ImageSource::FourD(p) | ImageSource::PerModality([p, ..]) => read_dtype(p),
            };
            for (c, name) in MODALITIES.iter().enumerate() {
                report.volumes.push(volume_info(
                    name,
                    case.image.index_axis(ndarray::Axis(0), c),
                    &case.geometry,
                    &dtype,
                ));
            }
            if let Some(label) = &case.label {
                report.labels = label_counts(label);
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_table(&report);
    Ok(())
}

fn read_dtype(path: &std::path::Path) -> String {
    brainseg_volume::nifti_io::read_header(path)
        .map(|h| brainseg_volume::nifti_io::dtype_name(&h))
        .unwrap_or_else(|_| "unknown".into())
}

fn print_table(report: &Report) {
    println!("{}", report.path);
    if let Some(layout) = &report.layout {
        println!("layout: {layout}, {} case(s)", report.cases.len());
        if report.cases.len() > 1 {
            for id in &report.cases {
                println!("  {id}");
            }
        }
    }
    if !report.volumes.is_empty() {
        println!();
        println!(
            "{:<10} {:<16} {:<8} {:<24} {:<6} {:>12} {:>12} {:>14}",
            "volume", "shape", "dtype", "spacing (mm)", "orient", "min", "max", "mean (nonzero)"
        );
        for v in &report.volumes {
            let shape = v
                .shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("x");
            let spacing = format!(
                "{:.3} x {:.3} x {:.3}",
                v.spacing_mm[0], v.spacing_mm[1], v.spacing_mm[2]
            );
            println!(
                "{:<10} {:<16} {:<8} {:<24} {:<6} {:>12.4} {:>12.4} {:>14.4}",
                v.name, shape, v.dtype, spacing, v.orientation, v.min, v.max, v.mean_nonzero
            );
        }
    }
    if !report.labels.is_empty() {
        println!();
        println!(
            "{:<6} {:<22} {:>12} {:>9}",
            "label", "class (MSD numbering)", "voxels", "volume %"
        );
        let total: usize = report.labels.iter().map(|l| l.voxels).sum();
        for l in &report.labels {
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
