//! Reading a series' pixels into a brainseg [`Image`] and writing it as NIfTI.
use crate::geometry::nifti_geometry;
use crate::header::{self, Slice, Tile};
use crate::series::{scan_study, Series, SeriesInfo};
use crate::{Error, Result};
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::Image;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use ndarray::Array4;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A transfer syntax's name with its UID, e.g. "JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)".
pub fn syntax_name(uid: &str) -> String {
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{} ({uid})", ts.name()),
        None => format!("unknown transfer syntax {uid}"),
    }
}

/// Whether brainseg can decode pixel data stored in this transfer syntax.
pub fn can_decode(uid: &str) -> bool {
    TransferSyntaxRegistry
        .get(uid)
        .is_some_and(|ts| ts.can_decode_all())
}

/// Read the one series in `folder` (see [`crate::find_one_series`]) as an image.
pub fn read_series_dir(folder: &Path) -> Result<Image> {
    read_series(&crate::find_one_series(folder)?)
}

/// Where a slice goes: volume, slice index, and the slice.
type Place<'a> = (usize, usize, &'a Slice);

/// Read a series' pixels into a canonical `(volumes, X, Y, Z)` f32 image holding real values
/// (rescale slope/intercept; Philips precise values), with the geometry dcm2niix writes.
/// `source_dtype` is "int16" when every value is a whole number in int16's range, else "float32".
pub fn read_series(series: &Series) -> Result<Image> {
    let g = series.stack()?;
    // Which slices each file provides, with their (volume, slice) place.
    let mut by_file: BTreeMap<usize, Vec<Place>> = BTreeMap::new();
    for (n, &i) in g.order.iter().enumerate() {
        let s = &series.slices[i];
        by_file
            .entry(s.file)
            .or_default()
            .push((n / g.slices, n % g.slices, s));
    }
    let jobs: Vec<(usize, Vec<Place>)> = by_file.into_iter().collect();
    let (cols, rows, nz) = (g.cols, g.rows, g.slices);
    // Each job returns its slices' real values, row-major (row j, column i), and whether they are
    // all whole numbers within int16 (a cast saturates outside it and turns NaN into 0, so neither
    // compares equal; the cast is one instruction where `fract` calls `truncf`).
    let decoded = crate::parallel_map(&jobs, |(file, places)| -> Result<Vec<(Vec<f32>, bool)>> {
        let path = &series.files[*file];
        let obj = header::open_full(path)?;
        let pixels = Pixels::decode(path, &obj)?;
        places
            .iter()
            .map(|(_, _, s)| {
                let values = pixels.slice(path, s)?;
                let whole = values.iter().all(|&v| v as i16 as f32 == v);
                Ok((values, whole))
            })
            .collect()
    });
    // Each slice's values by its (volume, slice) place.
    let mut slices: Vec<Vec<f32>> = vec![Vec::new(); g.volumes * nz];
    let mut whole = true;
    for ((_, places), values) in jobs.iter().zip(decoded) {
        for ((v, k, _), (values, slice_whole)) in places.iter().zip(values?) {
            slices[v * nz + k] = values;
            whole &= slice_whole;
        }
    }
    // Written straight into the canonical (RAS) layout, one volume at a time.
    let geometry = nifti_geometry([cols, rows, nz], &g.affine_ras());
    let (steps, offset) = geometry.orientation.canonical_strides([cols, rows, nz]);
    let per_volume = cols * rows * nz;
    let mut data = vec![0f32; g.volumes * per_volume];
    for (out, slices) in data.chunks_mut(per_volume).zip(slices.chunks(nz)) {
        scatter_slices(slices, out, steps, offset, [cols, rows]);
    }
    let shape = geometry.orientation.perm.map(|s| [cols, rows, nz][s]);
    let data = Array4::from_shape_vec((g.volumes, shape[0], shape[1], shape[2]), data)
        .expect("length matches shape");
    Ok(Image {
        data,
        geometry,
        source_dtype: if whole { "int16" } else { "float32" }.to_string(),
    })
}

/// Write one volume's slices (row-major, `[cols, rows]` each) into `out`, where source voxel
/// (column i, row j, slice k) goes to `offset + i * steps[0] + j * steps[1] + k * steps[2]`.
/// Slices go 16 at a time with the slice index innermost, and of the two in-slice axes the one
/// with the shorter step runs inside: along whichever axis lands contiguously (the slice axis
/// for axial series, a row or column for the others) the writes then fill whole cache lines.
fn scatter_slices(
    slices: &[Vec<f32>],
    out: &mut [f32],
    steps: [isize; 3],
    offset: usize,
    [cols, rows]: [usize; 2],
) {
    const BLOCK: usize = 16;
    // (count, step in out, step in a slice) of the outer and inner in-slice loops.
    let column = (cols, steps[0], 1);
    let row = (rows, steps[1], cols);
    let (outer, inner) = if steps[0].abs() >= steps[1].abs() {
        (column, row)
    } else {
        (row, column)
    };
    for (b, block) in slices.chunks(BLOCK).enumerate() {
        let first = offset as isize + (b * BLOCK) as isize * steps[2];
        for a in 0..outer.0 {
            for c in 0..inner.0 {
                let at = first + a as isize * outer.1 + c as isize * inner.1;
                let from = a * outer.2 + c * inner.2;
                for (dk, slice) in block.iter().enumerate() {
                    out[(at + dk as isize * steps[2]) as usize] = slice[from];
                }
            }
        }
    }
}

/// Write an image read by [`read_series`] as NIfTI (`.nii` or `.nii.gz`) in its source
/// orientation, through brainseg-volume's writer.
pub fn write_nifti(path: &Path, image: &Image) -> Result<()> {
    Ok(write_image(
        path,
        &image.data,
        &image.geometry,
        &image.source_dtype,
    )?)
}

/// One series' outcome in [`convert_study`].
#[derive(Debug)]
pub struct Converted {
    pub info: SeriesInfo,
    /// The NIfTI file written, or why the series could not be converted.
    pub outcome: Result<PathBuf>,
}

/// Convert every series under `study` (any nesting) to `out/<name>.nii.gz`, one file per series
/// (4-D for several volumes), named by [`Series::name`] (`_2`, `_3`... added where two series
/// share a name). A series that cannot be read is reported in its [`Converted`] and the others
/// still converted; only an unreadable folder or DICOM header fails the whole call.
pub fn convert_study(study: &Path, out: &Path) -> Result<Vec<Converted>> {
    let study = scan_study(study)?;
    std::fs::create_dir_all(out).map_err(|e| Error::at(out, format!("cannot create: {e}")))?;
    let mut used = std::collections::BTreeSet::new();
    let mut results = Vec::new();
    for series in &study.series {
        let info = series.info();
        let mut name = info.name.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{}_{n}", info.name);
            n += 1;
        }
        let path = out.join(format!("{name}.nii.gz"));
        let outcome = read_series(series).and_then(|image| {
            write_nifti(&path, &image)?;
            Ok(path)
        });
        results.push(Converted { info, outcome });
    }
    Ok(results)
}

/// Decoded stored values of one object: all frames, before rescaling.
struct Pixels {
    frames: usize,
    rows: usize,
    cols: usize,
    values: Vec<i32>,
}

impl Pixels {
    fn decode(path: &Path, obj: &DefaultDicomObject) -> Result<Pixels> {
        let int = |tag, name: &str| {
            header::int(obj, tag).ok_or_else(|| Error::at(path, format!("no {name}")))
        };
        let rows = int(tags::ROWS, "Rows")? as usize;
        let cols = int(tags::COLUMNS, "Columns")? as usize;
        let frames = header::int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
        let samples = header::int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
        if samples != 1 {
            return Err(Error::at(
                path,
                format!(
                    "{samples} samples per pixel (colour): brainseg reads greyscale images only"
                ),
            ));
        }
        let allocated = int(tags::BITS_ALLOCATED, "BitsAllocated")?;
        let stored = header::int(obj, tags::BITS_STORED).unwrap_or(allocated);
        let high = header::int(obj, tags::HIGH_BIT).unwrap_or(stored - 1);
        let signed = header::int(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
        if !matches!(allocated, 8 | 16 | 32)
            || stored < 1
            || stored > allocated
            || high < stored - 1
            || high >= allocated
        {
            return Err(Error::at(
                path,
                format!("unsupported pixel layout: BitsAllocated {allocated}, BitsStored {stored}, HighBit {high}"),
            ));
        }
        let element = obj.get(tags::PIXEL_DATA).ok_or_else(|| {
            Error::at(path, "no pixel data (7FE0,0010): the object holds no image")
        })?;
        let ts = obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_string();
        let bytes: std::borrow::Cow<[u8]> = match element.value() {
            Value::Primitive(p) => p.to_bytes(),
            Value::PixelSequence(_) => {
                if !can_decode(&ts) {
                    let why = if ts.starts_with("1.2.840.10008.1.2.4.8") {
                        " (JPEG-LS needs CharLS, a C library brainseg does not link)"
                    } else {
                        ""
                    };
                    return Err(Error::at(
                        path,
                        format!(
                            "pixel data in transfer syntax {} cannot be decoded by brainseg{why}; convert it with dcm2niix or gdcmconv first",
                            syntax_name(&ts)
                        ),
                    ));
                }
                let decoded = obj.decode_pixel_data().map_err(|e| {
                    Error::at(
                        path,
                        format!(
                            "cannot decode {} pixel data: {}",
                            syntax_name(&ts),
                            header::one_line(&e)
                        ),
                    )
                })?;
                std::borrow::Cow::Owned(decoded.into_data())
            }
            Value::Sequence(_) => {
                return Err(Error::at(path, "pixel data (7FE0,0010) is a sequence"))
            }
        };
        let width = (allocated / 8) as usize;
        let count = rows * cols * frames;
        if bytes.len() < count * width {
            return Err(Error::at(
                path,
                format!(
                    "pixel data holds {} bytes, fewer than the {} that {frames} frame(s) of {cols}x{rows} {allocated}-bit pixels need (truncated?)",
                    bytes.len(),
                    count * width
                ),
            ));
        }
        let shift = (high + 1 - stored) as u32;
        let mask: u64 = (1u64 << stored) - 1;
        let sign_bit: u64 = 1u64 << (stored - 1);
        let value = |raw: u64| -> i32 {
            let v = (raw >> shift) & mask;
            if signed && v & sign_bit != 0 {
                (v as i64 - (1i64 << stored)) as i32
            } else {
                v as i64 as i32
            }
        };
        let values: Vec<i32> = match width {
            1 => bytes[..count].iter().map(|&b| value(b as u64)).collect(),
            2 => bytes[..count * 2]
                .chunks_exact(2)
                .map(|b| value(u16::from_le_bytes([b[0], b[1]]) as u64))
                .collect(),
            _ => bytes[..count * 4]
                .chunks_exact(4)
                .map(|b| value(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64))
                .collect(),
        };
        Ok(Pixels {
            frames,
            rows,
            cols,
            values,
        })
    }

    /// The real values of one slice, row-major.
    fn slice(&self, path: &Path, s: &Slice) -> Result<Vec<f32>> {
        if s.frame >= self.frames {
            return Err(Error::at(
                path,
                format!(
                    "frame {} asked of an object of {} frames",
                    s.frame + 1,
                    self.frames
                ),
            ));
        }
        let frame = &self.values[s.frame * self.rows * self.cols..][..self.rows * self.cols];
        let (r0, c0) = match s.tile {
            Tile::Whole => (0, 0),
            Tile::Mosaic { index, per_row } => {
                ((index / per_row) * s.rows, (index % per_row) * s.cols)
            }
        };
        if r0 + s.rows > self.rows || c0 + s.cols > self.cols {
            return Err(Error::at(
                path,
                format!(
                    "the header describes {}x{} images but the pixel data is {}x{}",
                    s.cols, s.rows, self.cols, self.rows
                ),
            ));
        }
        let mut out = Vec::with_capacity(s.rows * s.cols);
        for r in 0..s.rows {
            let row = &frame[(r0 + r) * self.cols + c0..][..s.cols];
            out.extend(
                row.iter()
                    .map(|&v| (v as f64 * s.slope + s.intercept) as f32),
            );
        }
        Ok(out)
    }
}
