//! The NIfTI-1 header: parsing with brainseg's checks, datatypes, scaling and encoding.
use crate::{Error, Result};
use nifti::NiftiHeader;
use std::path::Path;

pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Size of a NIfTI-1 header plus the 4-byte extension flag.
pub(super) const HEADER_BYTES: usize = 352;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataType {
    Uint8,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Float32,
    Float64,
}

impl DataType {
    pub(super) fn from_code(code: i16) -> Option<DataType> {
        Some(match code {
            2 => DataType::Uint8,
            256 => DataType::Int8,
            4 => DataType::Int16,
            512 => DataType::Uint16,
            8 => DataType::Int32,
            768 => DataType::Uint32,
            16 => DataType::Float32,
            64 => DataType::Float64,
            _ => return None,
        })
    }
    pub(super) fn code(self) -> i16 {
        match self {
            DataType::Uint8 => 2,
            DataType::Int8 => 256,
            DataType::Int16 => 4,
            DataType::Uint16 => 512,
            DataType::Int32 => 8,
            DataType::Uint32 => 768,
            DataType::Float32 => 16,
            DataType::Float64 => 64,
        }
    }
    pub(super) fn size(self) -> usize {
        match self {
            DataType::Uint8 | DataType::Int8 => 1,
            DataType::Int16 | DataType::Uint16 => 2,
            DataType::Int32 | DataType::Uint32 | DataType::Float32 => 4,
            DataType::Float64 => 8,
        }
    }
    pub(super) fn name(self) -> &'static str {
        match self {
            DataType::Uint8 => "uint8",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Uint16 => "uint16",
            DataType::Int32 => "int32",
            DataType::Uint32 => "uint32",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
        }
    }
    /// Value range of the integer types brainseg writes.
    pub(super) fn range(self) -> (f64, f64) {
        match self {
            DataType::Uint8 => (0.0, 255.0),
            DataType::Int16 => (i16::MIN as f64, i16::MAX as f64),
            DataType::Int32 => (i32::MIN as f64, i32::MAX as f64),
            _ => (f64::MIN, f64::MAX),
        }
    }
}

/// The most voxels (all volumes together) brainseg reads from one file: 2^31, 8 GiB as f32.
pub(super) const MAX_VOXELS: u128 = 1 << 31;
/// Deflate's largest expansion: a 258-byte match costs at least 2 bits, so gzip data of n bytes
/// inflates to at most 1032 n bytes.
pub(super) const MAX_INFLATE_RATIO: u128 = 1032;

/// `6x5x4x1 int16`-style text for messages.
pub(super) fn describe(shape: [usize; 3], channels: usize, dtype: DataType) -> String {
    let [x, y, z] = shape;
    format!("{x}x{y}x{z}x{channels} {}", dtype.name())
}

/// Check, before anything is allocated, that a file of `file_bytes` can hold the voxel data its
/// header promises (exactly for an uncompressed file, by deflate's largest ratio for gzip; a gzip
/// file is checked again while it inflates) and that it is not more than brainseg reads. Returns
/// the promised number of data bytes.
pub(super) fn check_data_fits(
    path: &Path,
    shape: [usize; 3],
    channels: usize,
    dtype: DataType,
    vox_offset: u64,
    file_bytes: u64,
    gzip: bool,
) -> Result<usize> {
    let voxels = shape.iter().fold(channels as u128, |n, &d| n * d as u128);
    let promised = voxels * dtype.size() as u128;
    let text = describe(shape, channels, dtype);
    let holds = if gzip {
        (file_bytes as u128 * MAX_INFLATE_RATIO).saturating_sub(vox_offset as u128)
    } else {
        (file_bytes as u128).saturating_sub(vox_offset as u128)
    };
    if promised > holds {
        let holds = if gzip {
            format!("file holds at most {holds} once inflated (gzip inflates at most {MAX_INFLATE_RATIO}-fold)")
        } else {
            format!("file holds {holds}")
        };
        return Err(Error::at(
            path,
            format!("truncated data: the header says {text} voxels (header promises {promised} bytes, {holds})"),
        ));
    }
    if voxels > MAX_VOXELS {
        return Err(Error::at(
            path,
            format!("too large: the header says {text} voxels, {voxels} in all; brainseg reads at most 2^31 ({MAX_VOXELS}) voxels per file"),
        ));
    }
    usize::try_from(promised).map_err(|_| {
        Error::at(
            path,
            format!("impossible dims: {text} voxels do not fit in memory"),
        )
    })
}

/// `(slope, inter)` when the header asks for scaling; NIfTI says slope 0 means none.
pub(super) fn scaling(header: &NiftiHeader) -> Option<(f64, f64)> {
    let slope = header.scl_slope as f64;
    let inter = if header.scl_inter.is_finite() {
        header.scl_inter as f64
    } else {
        0.0
    };
    if slope == 0.0 || !slope.is_finite() || (slope == 1.0 && inter == 0.0) {
        None
    } else {
        Some((slope, inter))
    }
}

pub(super) fn parse_header(path: &Path, bytes: &[u8]) -> Result<NiftiHeader> {
    if bytes.len() < 348 {
        return Err(Error::at(
            path,
            format!(
                "truncated file: {} bytes, shorter than a NIfTI-1 header (348)",
                bytes.len()
            ),
        ));
    }
    // Check the byte order and dim[0] here: the nifti crate guesses the byte order from dim[0] alone.
    let sizeof_hdr = i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let big = match sizeof_hdr {
        348 => false,
        n if n.swap_bytes() == 348 => true,
        540 => {
            return Err(Error::at(
                path,
                "NIfTI-2 files are not supported; save it as NIfTI-1",
            ))
        }
        n => {
            return Err(Error::at(
                path,
                format!("not a NIfTI-1 file (sizeof_hdr is {n}, expected 348)"),
            ))
        }
    };
    let dim0 = [bytes[40], bytes[41]];
    let dim0 = if big {
        i16::from_be_bytes(dim0)
    } else {
        i16::from_le_bytes(dim0)
    };
    if !(1..=7).contains(&dim0) {
        return Err(Error::at(
            path,
            format!("impossible dims: dim[0] = {dim0} (must be 1..=7)"),
        ));
    }
    let header = NiftiHeader::from_reader(&bytes[..348])
        .map_err(|e| Error::at(path, format!("unreadable NIfTI header ({e})")))?;
    match &header.magic {
        b"n+1\0" => Ok(header),
        b"ni1\0" => Err(Error::at(
            path,
            "a .hdr/.img pair is not supported; save it as a single .nii or .nii.gz",
        )),
        _ => Err(Error::at(
            path,
            "not a NIfTI-1 file (bad magic code; Analyze 7.5 is not supported)",
        )),
    }
}

/// Spatial shape and number of volumes; dims 5..7 must be 1.
pub(super) fn volume_dims(path: &Path, header: &NiftiHeader) -> Result<([usize; 3], usize)> {
    // NIfTI stores dims as signed 16-bit; the nifti crate reads them unsigned.
    let dim = header.dim.map(|d| d as i16);
    let ndim = dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(Error::at(
            path,
            format!("impossible dims: dim[0] = {ndim} (must be 1..=7)"),
        ));
    }
    for (k, &d) in dim.iter().enumerate().take(ndim as usize + 1).skip(1) {
        if d <= 0 {
            return Err(Error::at(
                path,
                format!("impossible dims: dim[{k}] = {d} (must be positive)"),
            ));
        }
    }
    let d = |k: usize| {
        if k <= ndim as usize {
            dim[k] as usize
        } else {
            1
        }
    };
    if ndim < 3 {
        return Err(Error::at(
            path,
            format!("a {ndim}-D image: brainseg needs 3-D or 4-D volumes"),
        ));
    }
    if (5..=7).any(|k| d(k) != 1) {
        return Err(Error::at(
            path,
            format!("a {ndim}-D image: brainseg needs 3-D or 4-D volumes"),
        ));
    }
    Ok(([d(1), d(2), d(3)], d(4)))
}

/// Serialise a NIfTI-1 header (little-endian) followed by an empty extension flag.
pub(super) fn encode_header(h: &NiftiHeader) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_BYTES);
    b.extend_from_slice(&h.sizeof_hdr.to_le_bytes());
    b.extend_from_slice(&h.data_type);
    b.extend_from_slice(&h.db_name);
    b.extend_from_slice(&h.extents.to_le_bytes());
    b.extend_from_slice(&h.session_error.to_le_bytes());
    b.push(h.regular);
    b.push(h.dim_info);
    h.dim
        .iter()
        .for_each(|d| b.extend_from_slice(&d.to_le_bytes()));
    for f in [h.intent_p1, h.intent_p2, h.intent_p3] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    for s in [h.intent_code, h.datatype, h.bitpix, h.slice_start] {
        b.extend_from_slice(&s.to_le_bytes());
    }
    h.pixdim
        .iter()
        .for_each(|f| b.extend_from_slice(&f.to_le_bytes()));
    for f in [h.vox_offset, h.scl_slope, h.scl_inter] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&h.slice_end.to_le_bytes());
    b.push(h.slice_code);
    b.push(h.xyzt_units);
    for f in [h.cal_max, h.cal_min, h.slice_duration, h.toffset] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&h.glmax.to_le_bytes());
    b.extend_from_slice(&h.glmin.to_le_bytes());
    b.extend_from_slice(&h.descrip[..80]);
    b.extend_from_slice(&h.aux_file);
    b.extend_from_slice(&h.qform_code.to_le_bytes());
    b.extend_from_slice(&h.sform_code.to_le_bytes());
    for f in [
        h.quatern_b,
        h.quatern_c,
        h.quatern_d,
        h.quatern_x,
        h.quatern_y,
        h.quatern_z,
    ] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    for f in h.srow_x.iter().chain(&h.srow_y).chain(&h.srow_z) {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&h.intent_name);
    b.extend_from_slice(&h.magic);
    b.extend_from_slice(&[0; 4]); // no extensions
    debug_assert_eq!(b.len(), HEADER_BYTES);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_two_to_the_31_voxels() {
        let path = Path::new("big.nii");
        let fits = |shape, channels| {
            check_data_fits(path, shape, channels, DataType::Uint8, 352, u64::MAX, false)
        };
        // 2048 * 2048 * 512 = 2^31 exactly: allowed; one more plane (or a second volume) is not.
        assert_eq!(fits([2048, 2048, 512], 1).unwrap(), 1 << 31);
        let err = fits([2048, 2048, 513], 1).unwrap_err();
        assert_eq!(err.path.as_deref(), Some(path));
        assert!(err.problem.contains("2151677952 in all"), "{err}");
        assert!(err.problem.contains("at most 2^31"), "{err}");
        assert!(fits([2048, 2048, 512], 2).is_err());
    }

    #[test]
    fn promised_bytes_against_the_file() {
        let path = Path::new("a.nii");
        let fits = |file_bytes, gzip| {
            check_data_fits(path, [6, 5, 4], 1, DataType::Int16, 352, file_bytes, gzip)
        };
        // 6 * 5 * 4 int16 = 240 data bytes after a 352-byte header: 592 bytes in all.
        assert_eq!(fits(592, false).unwrap(), 240);
        assert!(fits(591, false)
            .unwrap_err()
            .problem
            .contains("header promises 240 bytes, file holds 239"));
        // gzip: 1 byte inflates to at most 1032, so 592 bytes need at least 1 byte of gzip.
        assert_eq!(fits(1, true).unwrap(), 240);
        assert!(fits(0, true)
            .unwrap_err()
            .problem
            .contains("header promises 240 bytes, file holds at most 0 once inflated"));
    }
}
