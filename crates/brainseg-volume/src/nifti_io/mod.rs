//! Reading and writing NIfTI-1 (`.nii`, `.nii.gz`) with the geometry kept.
//!
//! Reading takes the whole (compressed) file into memory, parses and checks the header (with the
//! `nifti` crate's parser behind brainseg's own checks: dims, datatype, geometry, and that the file
//! can hold the data the header promises), then inflates the voxels slab by slab (flate2 with the
//! zlib-rs backend) while a second thread converts and reorders each slab to canonical orientation
//! in cache-blocked passes. Every way a file can be broken (truncated, corrupt gzip, impossible dims
//! or geometry, NaN voxels) becomes an [`Error`] naming the file.
//!
//! Writing reuses the source header (so outputs overlay the input in any viewer) with only the
//! datatype, dims and scaling changed, and is atomic (temp file in the same folder, then rename).
//!
//! Parts: `header` (the header codec and its checks), `geometry` (the voxel-to-world affine and
//! [`Geometry`]), `decode` (the reader: inflating slabs on two threads), `transpose` (decoding
//! and reordering voxels) and `write`.
mod decode;
mod geometry;
mod header;
#[cfg(test)]
mod tests;
mod transpose;
mod write;

pub use geometry::{affine_from_header, check_same_grid, Geometry, COREGISTRATION_TOLERANCE_MM};
pub use write::{write_image, write_label, write_probabilities};

use crate::{Error, Result};
use decode::{gzip_error, zeroed_image, VolumeReader};
use flate2::bufread::MultiGzDecoder;
use header::{parse_header, scaling, DataType, GZIP_MAGIC};
use ndarray::{Array3, Array4, Axis};
use nifti::NiftiHeader;
use std::io::{BufRead, Read};
use std::path::Path;

/// A multi-channel image in canonical orientation, `(C, X, Y, Z)`.
#[derive(Debug, Clone)]
pub struct Image {
    pub data: Array4<f32>,
    pub geometry: Geometry,
    /// Datatype name of the source file (e.g. "int16"), for `brainseg info`.
    pub source_dtype: String,
}

/// Read a 3-D or 4-D NIfTI file (uint8, int16, int32, float32, float64; scl_slope/scl_inter applied)
/// into canonical `(C, X, Y, Z)` f32; a 3-D file gives C = 1. NaN/Inf voxels are an error.
pub fn read_image(path: &Path) -> Result<Image> {
    let reader = VolumeReader::open(path)?;
    let geometry = reader.geometry();
    let source_dtype = reader.dtype.name().to_string();
    let [x, y, z] = geometry.canonical_shape();
    let mut data = zeroed_image(path, (reader.channels, x, y, z))?;
    reader.read_into(data.view_mut(), &geometry.orientation, true)?;
    Ok(Image {
        data,
        geometry,
        source_dtype,
    })
}

/// Read several 3-D files of one shape and orientation as the channels of one image: files are
/// read on parallel threads, straight into the shared array. `files` pairs each path with the
/// channel's name for messages.
pub(crate) fn read_channels(files: &[(&Path, &str)]) -> Result<Image> {
    let readers = files
        .iter()
        .map(|&(path, _)| VolumeReader::open(path))
        .collect::<Result<Vec<_>>>()?;
    let geometry = readers[0].geometry();
    for (reader, &(path, name)) in readers.iter().zip(files) {
        if reader.channels != 1 {
            return Err(Error::at(
                path,
                format!(
                    "the {name} file must be 3-D, it holds {} volumes",
                    reader.channels
                ),
            ));
        }
        let g = reader.geometry();
        if g.source_shape != geometry.source_shape || g.orientation != geometry.orientation {
            return Err(Error::at(
                path,
                format!(
                    "the {name} image ({} {}) does not match the {} image ({} {}) of {}",
                    shape_text(&g.source_shape),
                    g.source_code(),
                    files[0].1,
                    shape_text(&geometry.source_shape),
                    geometry.source_code(),
                    files[0].0.display()
                ),
            ));
        }
        check_same_grid(path, &g, files[0].0, &geometry)?;
    }
    let source_dtype = readers[0].dtype.name().to_string();
    let [x, y, z] = geometry.canonical_shape();
    let voxels = (readers.len() * x * y * z) as u128;
    if voxels > header::MAX_VOXELS {
        return Err(Error::at(
            files[0].0,
            format!(
                "too large: {} files of {} voxels, {voxels} in all; brainseg reads at most 2^31 ({}) voxels per image",
                readers.len(),
                shape_text(&[x, y, z]),
                header::MAX_VOXELS
            ),
        ));
    }
    let mut data = zeroed_image(files[0].0, (readers.len(), x, y, z))?;
    let o = &geometry.orientation;
    let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
        let workers: Vec<_> = readers
            .into_iter()
            .zip(data.axis_chunks_iter_mut(Axis(0), 1))
            .map(|(reader, channel)| scope.spawn(move || reader.read_into(channel, o, false)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("reading does not panic"))
            .collect()
    });
    outcomes.into_iter().collect::<Result<()>>()?;
    Ok(Image {
        data,
        geometry,
        source_dtype,
    })
}

/// `240x240x155`-style text for messages.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Read a 3-D integer label file in canonical orientation, values as stored (no renumbering).
pub fn read_label(path: &Path) -> Result<(Array3<u8>, Geometry)> {
    let Image { data, geometry, .. } = read_image(path)?;
    if data.shape()[0] != 1 {
        return Err(Error::at(
            path,
            format!(
                "a label map must be 3-D, this file has {} volumes",
                data.shape()[0]
            ),
        ));
    }
    let values = data.index_axis_move(Axis(0), 0);
    let is_label = |v: &f32| v.fract() == 0.0 && (0.0..=255.0).contains(v);
    if !values.iter().all(is_label) {
        let (index, v) = values
            .indexed_iter()
            .find(|(_, v)| !is_label(v))
            .expect("a bad value");
        let s = geometry
            .orientation
            .source_index(index.into(), geometry.source_shape);
        return Err(Error::at(
            path,
            format!(
                "label value {v} at voxel ({}, {}, {}) is not a whole number in 0..=255",
                s[0], s[1], s[2]
            ),
        ));
    }
    Ok((values.mapv(|v| v as u8), geometry))
}

/// The header of a NIfTI file, read without reading its voxels.
pub fn read_header(path: &Path) -> Result<NiftiHeader> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::at(path, format!("cannot open: {e}")))?;
    let mut file = std::io::BufReader::new(file);
    let is_gz = file
        .fill_buf()
        .map_err(|e| Error::at(path, format!("cannot read: {e}")))?
        .starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read> = if is_gz {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut head = Vec::with_capacity(348);
    reader
        .take(348)
        .read_to_end(&mut head)
        .map_err(|e| gzip_error(path, &e))?;
    parse_header(path, &head)
}

/// The datatype name of a header (e.g. "int16"), or "datatype N" for codes brainseg cannot read.
pub fn dtype_name(header: &NiftiHeader) -> String {
    match DataType::from_code(header.datatype) {
        Some(t) => t.name().to_string(),
        None => format!("datatype {}", header.datatype),
    }
}

/// Whether a header stores its values without scaling (scl_slope 0 or 1, scl_inter 0).
pub fn is_unscaled(header: &NiftiHeader) -> bool {
    scaling(header).is_none()
}
