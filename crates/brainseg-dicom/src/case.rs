//! A four-modality brainseg [`Case`] from DICOM series: each modality read and resampled onto the
//! T1Gd series' grid (trilinear, through world coordinates), in [`MODALITIES`] order.
use crate::resample::{resample_to, Grid};
use crate::series::{Modality, Series, Study};
use crate::volume::read_series;
use crate::{Error, Result};
use brainseg_volume::{Case, MODALITIES};
use ndarray::{s, Array4};

/// brainseg's modalities in [`MODALITIES`] order.
pub const CASE_MODALITIES: [Modality; 4] = [
    Modality::Flair,
    Modality::T1w,
    Modality::T1Gd,
    Modality::T2w,
];

/// The series of `study` guessed as FLAIR, T1w, T1Gd and T2w (in that order). Each modality must
/// be guessed for exactly one 3-D series: a missing or doubled modality is an error naming the
/// study folder and the candidates, so the user can pick series by number instead.
pub fn pick_modalities(study: &Study) -> Result<[&Series; 4]> {
    let mut picked = Vec::with_capacity(4);
    for m in CASE_MODALITIES {
        let candidates: Vec<&Series> = study
            .series
            .iter()
            .filter(|s| s.info().modality == m)
            .collect();
        match candidates.as_slice() {
            [one] => picked.push(*one),
            [] => {
                return Err(Error::at(
                    &study.root,
                    format!("no {m} series found (see `brainseg info`); name the series to use"),
                ))
            }
            many => {
                let names: Vec<String> = many.iter().map(|s| s.name()).collect();
                return Err(Error::at(
                    &study.root,
                    format!(
                        "{} series look like {m}: {}; name the series to use",
                        many.len(),
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok([picked[0], picked[1], picked[2], picked[3]])
}

/// A case from four series given in [`MODALITIES`] order (FLAIR, T1w, T1Gd, T2w): each read,
/// and all but T1Gd resampled onto the T1Gd grid; the case keeps T1Gd's geometry, so outputs are
/// written back onto the T1Gd series. Each series must hold one volume.
pub fn case_from_series(id: &str, series: [&Series; 4]) -> Result<Case> {
    let t1gd = read_series(series[2])?;
    let grid = Grid::of(&t1gd.geometry);
    let [x, y, z] = grid.shape;
    let mut image = Array4::<f32>::zeros((4, x, y, z));
    for (channel, (s, name)) in series.iter().zip(MODALITIES).enumerate() {
        let volume = if channel == 2 {
            t1gd.data.clone()
        } else {
            let read = read_series(s)?;
            resample_to(&read, &grid).ok_or_else(|| {
                Error::at(
                    &s.files[0],
                    format!("the {name} series has a degenerate affine"),
                )
            })?
        };
        if volume.shape()[0] != 1 {
            return Err(Error::at(
                &s.files[0],
                format!(
                    "the {name} series holds {} volumes; a case needs one per modality",
                    volume.shape()[0]
                ),
            ));
        }
        image
            .slice_mut(s![channel, .., .., ..])
            .assign(&volume.slice(s![0, .., .., ..]));
    }
    Ok(Case {
        id: id.to_string(),
        image,
        label: None,
        geometry: t1gd.geometry,
        sources: series.iter().map(|s| s.files[0].clone()).collect(),
    })
}
