//! Raw BraTS -> MSD layout (dataset.json, 4-D imagesTr, labelsTr in MSD numbering), and compact
//! training copies.
//!
//! Images keep their source datatype when all four modalities share one unscaled integer type
//! (BraTS int16 stays int16, lossless and half the size); otherwise they are written as float32.
//! Every file keeps the source header geometry, so each voxel keeps its world position. Cases
//! without a label go to imagesTs and the "test" list, as in MSD. dataset.json is written last, so
//! an interrupted conversion leaves no dataset that looks complete.
use crate::nifti_io::{dtype_name, is_unscaled, read_header, write_image, write_label};
use crate::{CaseRef, Dataset, Error, MsdLayout, Result};
use std::path::Path;

/// Convert a dataset folder to the MSD layout under `out`; returns the number of cases written.
pub fn to_msd(src: &Path, out: &Path) -> Result<usize> {
    let dataset = Dataset::open(src)?;
    let layout = MsdLayout::new(out);
    layout.create_folders()?;
    let mut training = Vec::new();
    let mut test = Vec::new();
    for case_ref in &dataset.cases {
        let dtype = stored_dtype(case_ref)?;
        let case = case_ref.load()?;
        match &case.label {
            Some(label) => {
                let image = layout.training_image(&case.id);
                write_image(&image, &case.image, &case.geometry, &dtype)?;
                write_label(&layout.training_label(&case.id), label, &case.geometry)?;
                training.push(case.id.clone());
            }
            None => {
                let image = layout.test_image(&case.id);
                write_image(&image, &case.image, &case.geometry, &dtype)?;
                test.push(case.id.clone());
            }
        }
    }
    layout.write_dataset_json(
        "BRATS",
        &format!(
            "Converted by brainseg from {}; BraTS challenge data (Menze et al. 2015, Bakas et al. 2017, \
             Bakas et al. 2018), licence as the source data",
            src.display()
        ),
        &training,
        &test,
    )?;
    Ok(dataset.cases.len())
}

/// A training copy of some (or all) labelled cases of `src` in the MSD layout under `out`; with
/// `quantize_u8`, each modality is scaled to whole values 1..255 (0 stays 0) and stored as uint8,
/// about 3x smaller: lossy, only for training with z-score standardisation, which does not see the
/// scale. `progress` is called after each case. Returns the number of cases written.
pub fn compact_copy(
    src: &Path,
    out: &Path,
    only: Option<&[String]>,
    quantize_u8: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize> {
    let dataset = Dataset::open(src)?;
    let cases: Vec<&CaseRef> = match only {
        Some(ids) => ids
            .iter()
            .map(|id| {
                dataset
                    .case(id)
                    .ok_or_else(|| Error::at(src, format!("no case {id}")))
            })
            .collect::<Result<_>>()?,
        None => dataset.cases.iter().collect(),
    };
    if out.join("dataset.json").exists() {
        return Err(Error::at(out, "already holds a dataset"));
    }
    let layout = MsdLayout::new(out);
    layout.create_folders()?;
    let mut training = vec![];
    for (done, case_ref) in cases.iter().enumerate() {
        let mut case = case_ref.load()?;
        let label = case
            .label
            .take()
            .ok_or_else(|| Error::at(out, format!("case {} has no label", case.id)))?;
        let dtype = if quantize_u8 {
            quantize(&mut case.image);
            "uint8"
        } else {
            "float32"
        };
        let image = layout.training_image(&case.id);
        write_image(&image, &case.image, &case.geometry, dtype)?;
        write_label(&layout.training_label(&case.id), &label, &case.geometry)?;
        training.push(case.id.clone());
        progress(done + 1, cases.len());
    }
    let description = format!(
        "brainseg compact copy of {}{}",
        src.display(),
        if quantize_u8 {
            ", uint8-quantised per modality (lossy)"
        } else {
            ""
        }
    );
    layout.write_dataset_json("brainseg compact copy", &description, &training, &[])?;
    Ok(training.len())
}

/// Each modality scaled so its 99.9th percentile of non-zero voxels is 254, rounded, clamped to 1..255.
fn quantize(image: &mut ndarray::Array4<f32>) {
    for mut channel in image.outer_iter_mut() {
        let mut values: Vec<f32> = channel.iter().copied().filter(|&v| v > 0.0).collect();
        if values.is_empty() {
            continue;
        }
        let k = ((values.len() - 1) as f64 * 0.999) as usize;
        let (_, top, _) = values.select_nth_unstable_by(k, f32::total_cmp);
        let scale = 254.0 / top.max(f32::MIN_POSITIVE);
        channel.mapv_inplace(|v| {
            if v > 0.0 {
                (v * scale).round().clamp(1.0, 255.0)
            } else {
                0.0
            }
        });
    }
}

/// The datatype to store a case's 4-D image in: the shared unscaled integer type, else float32.
fn stored_dtype(case: &CaseRef) -> Result<String> {
    let mut names = Vec::new();
    for path in case.image_files() {
        let header = read_header(&path)?;
        names.push(if is_unscaled(&header) {
            dtype_name(&header)
        } else {
            "float32".to_string()
        });
    }
    let first = names[0].clone();
    let integer = ["uint8", "int16", "int32"].contains(&first.as_str());
    Ok(if integer && names.iter().all(|n| *n == first) {
        first
    } else {
        "float32".to_string()
    })
}
