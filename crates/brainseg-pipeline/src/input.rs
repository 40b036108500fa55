//! What a user may give as cases: NIfTI (a dataset, a case folder, a 4-D file) or a DICOM study
//! (a folder of scanner series, any nesting), whose four modalities become one case on the T1Gd
//! series' grid.
use crate::{Error, Result};
use brainseg_dicom::{case_from_series, pick_modalities, Series, Study};
use brainseg_volume::{Case, CaseRef, Dataset};
use std::path::{Path, PathBuf};

/// One case to segment.
pub enum CaseSource {
    Files(CaseRef),
    /// A DICOM study: the series for FLAIR, T1w, T1Gd and T2w, by index into `study.series`.
    Dicom {
        id: String,
        study: Study,
        picked: [usize; 4],
    },
}

impl CaseSource {
    pub fn id(&self) -> &str {
        match self {
            CaseSource::Files(case) => &case.id,
            CaseSource::Dicom { id, .. } => id,
        }
    }

    pub fn load(&self) -> Result<Case> {
        match self {
            CaseSource::Files(case) => Ok(case.load()?),
            CaseSource::Dicom { id, study, picked } => {
                let series: [&Series; 4] = picked.map(|i| &study.series[i]);
                Ok(case_from_series(id, series)?)
            }
        }
    }

    /// The files it is read from (never to be overwritten).
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            CaseSource::Files(case) => case
                .image_files()
                .into_iter()
                .chain(case.label.clone())
                .collect(),
            CaseSource::Dicom { study, picked, .. } => picked
                .iter()
                .flat_map(|&i| study.series[i].files.clone())
                .collect(),
        }
    }
}

/// The cases at `path`. A folder that is no NIfTI dataset is read as a DICOM study: its series for
/// the four modalities are guessed from their descriptions, or given by series number in the order
/// FLAIR, T1w, T1Gd, T2w (`series`).
pub fn open_cases(path: &Path, series: Option<[i64; 4]>) -> Result<Vec<CaseSource>> {
    let nifti_error = match Dataset::open(path) {
        Ok(dataset) if series.is_none() => {
            return Ok(dataset.cases.into_iter().map(CaseSource::Files).collect())
        }
        Ok(_) => {
            return Err(Error::invalid(format!(
                "{}: series numbers are for DICOM studies; this is a NIfTI dataset",
                path.display()
            )))
        }
        Err(e) => e,
    };
    if !path.is_dir() {
        return Err(nifti_error.into());
    }
    let study = brainseg_dicom::scan_study(path)?;
    if study.series.is_empty() {
        return Err(nifti_error.into());
    }
    let picked = match series {
        Some(numbers) => {
            let mut picked = [0; 4];
            for (slot, number) in picked.iter_mut().zip(numbers) {
                *slot = study
                    .series
                    .iter()
                    .position(|s| s.number == Some(number))
                    .ok_or_else(|| {
                        Error::invalid(format!("{}: no series number {number}", path.display()))
                    })?;
            }
            picked
        }
        None => {
            let chosen = pick_modalities(&study)?;
            chosen.map(|s| {
                study
                    .series
                    .iter()
                    .position(|t| std::ptr::eq(t, s))
                    .expect("picked from this study")
            })
        }
    };
    let id = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dicom".into());
    Ok(vec![CaseSource::Dicom { id, study, picked }])
}

/// Skull-stripped scans (what BraTS models are trained on) are zero outside the brain, which fills
/// a fifth of a BraTS volume; a scan non-zero over most of its volume still has skull and air noise.
pub fn looks_skull_stripped(case: &Case) -> bool {
    let flair = case.image.index_axis(ndarray::Axis(0), 0);
    let nonzero = flair.iter().filter(|&&v| v != 0.0).count();
    (nonzero as f64) < 0.5 * flair.len() as f64
}

/// `flair=N,t1=N,t1ce=N,t2=N` (any order) -> series numbers in the order FLAIR, T1w, T1Gd, T2w.
pub fn parse_series(text: &str) -> std::result::Result<[i64; 4], String> {
    let names = ["flair", "t1", "t1ce", "t2"];
    let mut numbers = [None; 4];
    for part in text.split(',') {
        let (name, number) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected name=number"))?;
        let slot = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| format!("{name:?}: expected one of flair, t1, t1ce, t2"))?;
        numbers[slot] = Some(
            number
                .trim()
                .parse()
                .map_err(|_| format!("{number:?}: not a series number"))?,
        );
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(numbers)
        .filter(|(_, n)| n.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing {}", missing.join(", ")));
    }
    Ok(numbers.map(|n| n.expect("checked")))
}

/// Writes each series of a DICOM study as NIfTI in `out`; a series that fails is reported and the
/// others go on. Returns the files written; an error when any series failed.
pub fn convert_dicom(
    study: &Path,
    out: &Path,
    progress: &mut dyn crate::Progress,
) -> Result<Vec<PathBuf>> {
    let converted = brainseg_dicom::convert_study(study, out)?;
    let mut written = vec![];
    for series in &converted {
        match &series.outcome {
            Ok(path) => written.push(path.clone()),
            Err(e) => progress.failed(&format!("series {}: {e}", series.info.name)),
        }
    }
    if written.len() < converted.len() {
        return Err(Error::invalid(format!(
            "{} of {} series could not be converted",
            converted.len() - written.len(),
            converted.len()
        )));
    }
    Ok(written)
}
