//! What is in a file, a case or a dataset: shapes, types, spacing, orientation, intensities and
//! label counts.
use crate::Result;
use brainseg_core::{Class, MODALITIES};
use brainseg_volume::{read_image, Dataset, Geometry, ImageSource};
use ndarray::{Array3, ArrayView3, Axis};
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
pub struct VolumeInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: String,
    pub spacing_mm: [f32; 3],
    pub orientation: String,
    pub min: f32,
    pub max: f32,
    pub mean_nonzero: f32,
}

#[derive(Serialize)]
pub struct LabelCount {
    pub label: u8,
    pub name: String,
    pub voxels: usize,
}

#[derive(Serialize)]
pub struct Info {
    pub path: String,
    pub layout: Option<String>,
    pub cases: Vec<String>,
    pub volumes: Vec<VolumeInfo>,
    /// Label voxel counts in MSD numbering (BraTS labels are mapped 1->2, 2->1, 4->3 on load).
    pub labels: Vec<LabelCount>,
    /// The series of a DICOM study.
    pub series: Vec<SeriesRow>,
}

/// One DICOM series, as `info` lists it.
#[derive(Serialize)]
pub struct SeriesRow {
    pub number: Option<i64>,
    pub description: String,
    pub orientation: String,
    /// Columns, rows, slices, volumes.
    pub size: [usize; 4],
    pub spacing_mm: [f64; 3],
    /// The modality brainseg guesses from the series' description and sequence.
    pub modality: String,
    pub transfer_syntax: String,
    pub files: usize,
    /// Why it cannot be read, if it cannot.
    pub problem: Option<String>,
}

fn volume_info(name: &str, data: ArrayView3<f32>, geometry: &Geometry, dtype: &str) -> VolumeInfo {
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

fn label_counts(label: &Array3<u8>) -> Vec<LabelCount> {
    let mut counts = [0usize; 4];
    for &v in label.iter() {
        counts[v as usize] += 1;
    }
    (0..4u8)
        .map(|l| LabelCount {
            label: l,
            name: Class::from_msd(l).map_or("background", Class::name).into(),
            voxels: counts[l as usize],
        })
        .collect()
}

/// The layout in words, from its name in the JSON ("Msd", "Brats", "Dicom").
fn layout_name(layout: &str) -> &str {
    match layout {
        "Msd" => "MSD (dataset.json, 4-D images)",
        "Brats" => "BraTS (a folder per case)",
        "Dicom" => "DICOM study",
        other => other,
    }
}

fn read_dtype(path: &Path) -> String {
    brainseg_volume::nifti_io::read_header(path)
        .map(|h| brainseg_volume::nifti_io::dtype_name(&h))
        .unwrap_or_else(|_| "unknown".into())
}

/// Describes `path`: every channel of a single NIfTI file; a case's four modalities and labels;
/// a dataset's case ids.
pub fn describe(path: &Path) -> Result<Info> {
    let mut info = Info {
        path: path.display().to_string(),
        layout: None,
        cases: vec![],
        volumes: vec![],
        labels: vec![],
        series: vec![],
    };
    if path.is_file() && path.extension().is_some() && !path.ends_with("dataset.json") {
        let image = read_image(path)?;
        let channels = image.data.shape()[0];
        for c in 0..channels {
            let name = if channels == 1 {
                "volume".to_string()
            } else {
                format!("channel {c}")
            };
            let data = image.data.index_axis(Axis(0), c);
            info.volumes.push(volume_info(
                &name,
                data,
                &image.geometry,
                &image.source_dtype,
            ));
        }
        return Ok(info);
    }
    let dataset = match Dataset::open(path) {
        Ok(dataset) => dataset,
        Err(error) => {
            let study = match path.is_dir() {
                true => brainseg_dicom::scan_study(path)?,
                false => return Err(error.into()),
            };
            if study.series.is_empty() {
                return Err(error.into());
            }
            info.layout = Some("Dicom".into());
            info.series = study
                .series
                .iter()
                .map(|s| {
                    let i = s.info();
                    SeriesRow {
                        number: i.number,
                        description: i.description,
                        orientation: format!("{:?}", i.orientation).to_lowercase(),
                        size: i.size,
                        spacing_mm: i.spacing,
                        modality: i.modality.name().to_string(),
                        transfer_syntax: brainseg_dicom::syntax_name(&i.transfer_syntax),
                        files: i.files,
                        problem: i.problem,
                    }
                })
                .collect();
            return Ok(info);
        }
    };
    info.layout = Some(format!("{:?}", dataset.layout));
    info.cases = dataset.cases.iter().map(|c| c.id.clone()).collect();
    if let [case_ref] = dataset.cases.as_slice() {
        let case = case_ref.load()?;
        let dtype = match &case_ref.image {
            ImageSource::FourD(p) | ImageSource::PerModality([p, ..]) => read_dtype(p),
        };
        for (c, name) in MODALITIES.iter().enumerate() {
            let data = case.image.index_axis(Axis(0), c);
            info.volumes
                .push(volume_info(name, data, &case.geometry, &dtype));
        }
        if let Some(label) = &case.label {
            info.labels = label_counts(label);
        }
    }
    Ok(info)
}

impl Info {
    /// The description as a table people read (the JSON form is the struct itself).
    pub fn to_table(&self) -> String {
        let info = self;
        use std::fmt::Write;
        let mut out = String::new();
        macro_rules! put {
            () => { out.push('\n') };
            ($($t:tt)*) => {{ let _ = writeln!(out, $($t)*); }};
        }
        put!("{}", info.path);
        if let Some(layout) = &info.layout {
            put!(
                "layout: {}, {} case(s)",
                layout_name(layout),
                info.cases.len()
            );
            if info.cases.len() > 1 {
                for id in &info.cases {
                    put!("  {id}");
                }
            }
        }
        if !info.series.is_empty() {
            put!(
                "{:>6} {:<28} {:<9} {:<16} {:<20} {:<8} problem",
                "number",
                "description",
                "plane",
                "size",
                "spacing (mm)",
                "guess"
            );
            for s in &info.series {
                let [c, r, z, v] = s.size;
                let [sx, sy, sz] = s.spacing_mm;
                let size = if v > 1 {
                    format!("{c}x{r}x{z}x{v}")
                } else {
                    format!("{c}x{r}x{z}")
                };
                let number = s.number.map_or("-".into(), |n| n.to_string());
                let description: String = s.description.chars().take(28).collect();
                put!(
                    "{number:>6} {description:<28} {:<9} {size:<16} {:<20} {:<8} {}",
                    s.orientation,
                    format!("{sx:.2} x {sy:.2} x {sz:.2}"),
                    s.modality,
                    s.problem.as_deref().unwrap_or("")
                );
            }
        }
        if !info.volumes.is_empty() {
            put!();
            put!(
                "{:<10} {:<16} {:<8} {:<24} {:<6} {:>12} {:>12} {:>14}",
                "volume",
                "shape",
                "dtype",
                "spacing (mm)",
                "orient",
                "min",
                "max",
                "mean (nonzero)"
            );
            for v in &info.volumes {
                let shape: Vec<String> = v.shape.iter().map(|s| s.to_string()).collect();
                let [sx, sy, sz] = v.spacing_mm;
                put!(
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
            put!();
            put!(
                "{:<6} {:<22} {:>12} {:>9}",
                "label",
                "class (MSD numbering)",
                "voxels",
                "volume %"
            );
            let total: usize = info.labels.iter().map(|l| l.voxels).sum();
            for l in &info.labels {
                put!(
                    "{:<6} {:<22} {:>12} {:>8.3}%",
                    l.label,
                    l.name,
                    l.voxels,
                    100.0 * l.voxels as f64 / total.max(1) as f64
                );
            }
        }
        out
    }
}
