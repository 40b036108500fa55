//! DICOM in: finding the series of a study folder, reading them into brainseg volumes with the
//! geometry dcm2niix writes, and converting them to NIfTI.
//!
//! - [`scan_study`] / [`list_series`]: every series under a folder (any nesting), grouped by
//!   SeriesInstanceUID, then echo number and magnitude/phase image type; non-DICOM files and
//!   objects without an image (raw data, reports...) are skipped.
//! - [`read_series`] / [`read_series_dir`]: one series as a canonical `(volumes, X, Y, Z)` f32
//!   [`brainseg_volume::Image`]: classic one-image-per-file series, Siemens mosaics and enhanced
//!   multi-frame objects; slices sorted along the slice normal (row x column direction cosines)
//!   by the projection of ImagePositionPatient, several images per position kept as a 4-D series;
//!   a missing slice or uneven spacing refused.
//! - [`write_nifti`] / [`convert_study`]: NIfTI files through brainseg-volume's writer.
//! - [`pick_modalities`] / [`case_from_series`]: a four-modality [`brainseg_volume::Case`] on the
//!   T1Gd grid ([`resample_to`]: trilinear through world coordinates).
//!
//! Values are real values: stored values (BitsStored/HighBit masked, sign-extended when
//! PixelRepresentation is 1) times RescaleSlope plus RescaleIntercept; for Philips objects with a
//! private scale slope (2005,100E), dcm2niix's default "precise" values
//! `(stored * RS + RI) / (RS * SS)` instead of the display values.
//!
//! Geometry: voxel `(i, j, k)` = (column, row, slice) lies at
//! `P0 + i * Δc * row_dir + j * Δr * col_dir + k * step` in the DICOM patient frame (LPS), with
//! P0 the first slice's ImagePositionPatient, (Δr, Δc) its PixelSpacing and `step` the mean
//! difference of neighbouring slice positions; NIfTI's RAS affine negates the x and y rows, as
//! dcm2niix does.
//!
//! Transfer syntaxes: implicit and explicit VR little endian, explicit big endian, deflate, RLE,
//! JPEG (baseline, extended and lossless, by `jpeg-decoder`) and JPEG 2000 (by `openjp2`, the
//! pure-Rust port of OpenJPEG) — all in pure Rust. JPEG-LS would need CharLS (C) and is refused
//! with an error naming the syntax, as is any other syntax the registry cannot decode.
//!
//! Every error is one line naming the file (or folder) and the problem.

mod case;
mod error;
mod geometry;
mod header;
mod resample;
mod series;
mod volume;

pub use case::{case_from_series, pick_modalities, CASE_MODALITIES};
pub use error::{Error, Result};
pub use geometry::{lps_to_ras, nifti_geometry, StackGeometry};
pub use resample::{resample_to, Grid};
pub use series::{
    find_one_series, guess_modality, list_series, scan_study, slice_orientation, Modality, Series,
    SeriesInfo, SliceOrientation, Study, OBLIQUE_DEGREES,
};
pub use volume::{
    can_decode, convert_study, read_series, read_series_dir, syntax_name, write_nifti, Converted,
};

impl Series {
    /// The series' geometry from its headers alone (no pixels read), or why its slices do not
    /// form a volume.
    pub fn geometry(&self) -> Result<StackGeometry> {
        self.stack()
    }
}

/// `f` over `items` on up to `available_parallelism` scoped threads, results in order.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("workers do not panic"))
            .collect()
    })
}
