//! Raw BraTS -> MSD layout (dataset.json, 4-D imagesTr, labelsTr in MSD numbering).
//!
//! Images keep their source datatype when all four modalities share one unscaled integer type
//! (BraTS int16 stays int16, lossless and half the size); otherwise they are written as float32.
//! Every file keeps the source header geometry, so each voxel keeps its world position. Cases
//! without a label go to imagesTs and the "test" list, as in MSD. dataset.json is written last, so
//! an interrupted conversion leaves no dataset that looks complete.
use crate::nifti_io::{dtype_name, is_unscaled, read_header, write_image, write_label};
use crate::{CaseRef, Dataset, Error, Result};
use std::path::Path;

/// Convert a dataset folder to the MSD layout under `out`; returns the number of cases written.
pub fn to_msd(src: &Path, out: &Path) -> Result<usize> {
    let dataset = Dataset::open(src)?;
    let folders = ["imagesTr", "labelsTr", "imagesTs"];
    for folder in folders {
        let path = out.join(folder);
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::at(&path, format!("cannot create: {e}")))?;
    }
    let mut training = Vec::new();
    let mut test = Vec::new();
    for case_ref in &dataset.cases {
        let dtype = stored_dtype(case_ref)?;
        let case = case_ref.load()?;
        let file = format!("{}.nii.gz", case.id);
        match &case.label {
            Some(label) => {
                write_image(
                    &out.join("imagesTr").join(&file),
                    &case.image,
                    &case.geometry,
                    &dtype,
                )?;
                write_label(&out.join("labelsTr").join(&file), label, &case.geometry)?;
                training.push(serde_json::json!({
                    "image": format!("./imagesTr/{file}"),
                    "label": format!("./labelsTr/{file}"),
                }));
            }
            None => {
                write_image(
                    &out.join("imagesTs").join(&file),
                    &case.image,
                    &case.geometry,
                    &dtype,
                )?;
                test.push(format!("./imagesTs/{file}"));
            }
        }
    }
    let json = serde_json::json!({
        "name": "BRATS",
        "description": format!("Converted by brainseg from {}", src.display()),
        "tensorImageSize": "4D",
        "reference": "BraTS challenge data (Menze et al. 2015, Bakas et al. 2017, Bakas et al. 2018)",
        "licence": "as the source data",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "numTraining": training.len(),
        "numTest": test.len(),
        "training": training,
        "test": test,
    });
    let text = serde_json::to_string_pretty(&json).expect("JSON serialises") + "\n";
    crate::atomic::write_atomic_with(&out.join("dataset.json"), |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })?;
    Ok(dataset.cases.len())
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
