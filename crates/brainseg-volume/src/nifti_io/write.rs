//! Writing labels, probabilities and images back in the source geometry (atomically).
use super::geometry::Geometry;
use super::header::{encode_header, DataType, HEADER_BYTES};
use crate::{Error, LabelNumbering, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::{Array3, Array4, ArrayView3, Axis};
use nifti::{Endianness, NiftiHeader};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Write a canonical uint8 label map back in the source geometry and orientation (temp file +
/// rename). With `numbering` (the one its values are in), the header's description names it, so
/// the file tells its numbering wherever it is copied ([`crate::read_label_msd`] reads it back).
pub fn write_label(
    path: &Path,
    labels: &Array3<u8>,
    geometry: &Geometry,
    numbering: Option<LabelNumbering>,
) -> Result<()> {
    check_canonical_shape(path, labels.shape(), geometry)?;
    let volumes = [labels.view()];
    let data = to_file_order(&volumes, geometry, |v: u8| [v]);
    let mut header = output_header(geometry, DataType::Uint8, 1, (0.0, 0.0));
    if let Some(numbering) = numbering {
        header.descrip = numbering.header_description().as_bytes().to_vec();
        header.descrip.resize(80, 0);
    }
    write_nifti(path, &header, &data)
}

/// Write canonical `(C, X, Y, Z)` f32 maps (e.g. probabilities) as a 4-D NIfTI in the source geometry.
pub fn write_probabilities(path: &Path, maps: &Array4<f32>, geometry: &Geometry) -> Result<()> {
    check_canonical_shape(path, &maps.shape()[1..], geometry)?;
    let volumes: Vec<_> = maps.axis_iter(Axis(0)).collect();
    let data = to_file_order(&volumes, geometry, f32::to_le_bytes);
    let header = output_header(geometry, DataType::Float32, volumes.len(), (0.0, 1.0));
    write_nifti(path, &header, &data)
}

/// Write canonical `(C, X, Y, Z)` intensities in the source geometry as `dtype` ("uint8", "int16",
/// "int32"; anything else writes float32). Integer types need whole values in range.
pub fn write_image(
    path: &Path,
    image: &Array4<f32>,
    geometry: &Geometry,
    dtype: &str,
) -> Result<()> {
    check_canonical_shape(path, &image.shape()[1..], geometry)?;
    let dtype = match dtype {
        "uint8" => DataType::Uint8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        _ => DataType::Float32,
    };
    let volumes: Vec<_> = image.axis_iter(Axis(0)).collect();
    // Integer types need whole values in range; each value is checked as it is encoded (one pass
    // over the data, not two). Whole: the cast to i64 is one instruction where `fract` calls
    // `truncf`; NaN casts to 0 and so is not whole, and values past i64 fail the range test.
    let (lo, hi) = dtype.range();
    let fits = |v: f32| v as i64 as f32 == v && (lo..=hi).contains(&(v as f64));
    let all_fit = AtomicBool::new(true);
    let checked = |v: f32| {
        if !fits(v) {
            all_fit.store(false, Ordering::Relaxed);
        }
        v
    };
    let data = match dtype {
        DataType::Uint8 => to_file_order(&volumes, geometry, |v| [checked(v) as u8]),
        DataType::Int16 => to_file_order(&volumes, geometry, |v| (checked(v) as i16).to_le_bytes()),
        DataType::Int32 => to_file_order(&volumes, geometry, |v| (checked(v) as i32).to_le_bytes()),
        _ => to_file_order(&volumes, geometry, f32::to_le_bytes),
    };
    if !all_fit.load(Ordering::Relaxed) {
        let v = image
            .iter()
            .find(|v| !fits(**v))
            .expect("a value that does not fit");
        return Err(Error::at(
            path,
            format!("value {v} cannot be stored as {}", dtype.name()),
        ));
    }
    let header = output_header(geometry, dtype, volumes.len(), (0.0, 0.0));
    write_nifti(path, &header, &data)
}

/// A 3-D destination inside a flat slice: element `(i0, i1, i2)` is `data[base + Σ i_k * strides[k]]`.
struct Strided<'a, O> {
    data: &'a mut [O],
    strides: [usize; 3],
    base: usize,
}

/// `out(i0, i1, i2) = get(base + Σ i_k * strides[k])` over `shape`. Blocked in tiles so both the
/// reads and the writes stay in cache (and in the TLB) whatever the permutation.
fn gather<O>(
    out: Strided<'_, O>,
    shape: [usize; 3],
    strides: [isize; 3],
    base: isize,
    get: impl Fn(usize) -> O,
) {
    const T01: usize = 16;
    const T2: usize = 32;
    let [n0, n1, n2] = shape;
    let Strided {
        data,
        strides: out_strides,
        base: out_base,
    } = out;
    for b0 in (0..n0).step_by(T01) {
        for b1 in (0..n1).step_by(T01) {
            for b2 in (0..n2).step_by(T2) {
                let e2 = (b2 + T2).min(n2);
                for i0 in b0..(b0 + T01).min(n0) {
                    for i1 in b1..(b1 + T01).min(n1) {
                        let mut o = out_base
                            + i0 * out_strides[0]
                            + i1 * out_strides[1]
                            + b2 * out_strides[2];
                        let mut s = base
                            + i0 as isize * strides[0]
                            + i1 as isize * strides[1]
                            + b2 as isize * strides[2];
                        for _ in b2..e2 {
                            data[o] = get(s as usize);
                            o += out_strides[2];
                            s += strides[2];
                        }
                    }
                }
            }
        }
    }
}

fn check_canonical_shape(path: &Path, shape: &[usize], geometry: &Geometry) -> Result<()> {
    let expected = geometry.canonical_shape();
    if shape != expected {
        return Err(Error::at(
            path,
            format!(
                "cannot write a {shape:?} array with a geometry of canonical shape {expected:?}"
            ),
        ));
    }
    Ok(())
}

/// Canonical volumes -> little-endian bytes in the source file's voxel order (Fortran, source axes).
/// Each volume's z-planes are shared out among the cores.
fn to_file_order<T: Copy + Sync, const S: usize>(
    volumes: &[ArrayView3<T>],
    geometry: &Geometry,
    encode: impl Fn(T) -> [u8; S] + Sync,
) -> Vec<u8> {
    let shape = geometry.source_shape;
    let n: usize = shape.iter().product();
    let plane = shape[0] * shape[1];
    let mut out = vec![[0u8; S]; n * volumes.len()];
    // File order is C order over (z, y, x) of the source.
    let (steps, offset) = geometry.orientation.canonical_strides(shape);
    let strides = [steps[2], steps[1], steps[0]];
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let planes_per_part = shape[2].div_ceil(threads).max(1);
    for (volume, encoded) in volumes.iter().zip(out.chunks_mut(n)) {
        let standard = volume.as_standard_layout();
        let values = standard.as_slice().expect("standard layout");
        std::thread::scope(|scope| {
            for (part, encoded) in encoded.chunks_mut(planes_per_part * plane).enumerate() {
                let first = part * planes_per_part;
                let part_shape = [encoded.len() / plane, shape[1], shape[0]];
                let target = Strided {
                    data: encoded,
                    strides: [plane, shape[0], 1],
                    base: 0,
                };
                let base = offset as isize + first as isize * strides[0];
                let encode = &encode;
                scope.spawn(move || {
                    gather(target, part_shape, strides, base, |i| encode(values[i]))
                });
            }
        });
    }
    out.into_flattened()
}

/// The source header with the datatype, dims and scaling of what is written now.
pub(super) fn output_header(
    geometry: &Geometry,
    dtype: DataType,
    volumes: usize,
    cal: (f32, f32),
) -> NiftiHeader {
    let mut h = geometry.header.clone();
    let [x, y, z] = geometry.source_shape;
    let four_d = volumes > 1;
    h.dim = [
        if four_d { 4 } else { 3 },
        x as u16,
        y as u16,
        z as u16,
        volumes as u16,
        1,
        1,
        1,
    ];
    if four_d && h.pixdim[4] <= 0.0 {
        h.pixdim[4] = 1.0;
    }
    h.datatype = dtype.code();
    h.bitpix = (dtype.size() * 8) as i16;
    h.scl_slope = 1.0;
    h.scl_inter = 0.0;
    (h.cal_min, h.cal_max) = cal;
    h.glmin = 0;
    h.glmax = 0;
    h.intent_code = 0;
    h.vox_offset = HEADER_BYTES as f32;
    h.sizeof_hdr = 348;
    h.magic = *b"n+1\0";
    h.endianness = Endianness::Little;
    h.descrip.resize(80, 0);
    h
}

/// Write header + data as `.nii` or `.nii.gz` (by the name), atomically.
pub(super) fn write_nifti(path: &Path, header: &NiftiHeader, data: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let gz = if name.ends_with(".nii.gz") {
        true
    } else if name.ends_with(".nii") {
        false
    } else {
        return Err(Error::at(path, "output name must end with .nii or .nii.gz"));
    };
    let head = encode_header(header);
    crate::atomic::write_atomic_with(path, |file| {
        if gz {
            // Level 1, as nibabel: far faster than the default for a small size cost.
            let mut encoder = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
            encoder.write_all(&head)?;
            encoder.write_all(data)?;
            encoder.finish()?.flush()
        } else {
            let mut writer = std::io::BufWriter::new(file);
            writer.write_all(&head)?;
            writer.write_all(data)?;
            writer.flush()
        }
    })
}
