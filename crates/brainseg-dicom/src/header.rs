//! What brainseg needs from one DICOM object's header, per 2-D image it holds: where the image
//! lies, how its stored values become real values, and what groups it with others.
//!
//! Classic objects hold one image (or a Siemens mosaic of several); enhanced multi-frame objects
//! hold many frames, described by per-frame and shared functional groups.
use crate::{Error, Result};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use std::path::Path;

/// Philips private MR scale slope (2005,100E), a float; in enhanced objects inside (2005,100F).
const PHILIPS_SCALE_SLOPE: Tag = Tag(0x2005, 0x100E);
const PHILIPS_PRIVATE_GROUP_SEQUENCE: Tag = Tag(0x2005, 0x100F);
/// Siemens CSA image header (0029,1010).
const SIEMENS_CSA_IMAGE: Tag = Tag(0x0029, 0x1010);

/// Which part of a stored frame a slice is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tile {
    /// The whole frame.
    Whole,
    /// Tile `index` of a Siemens mosaic with `per_row` tiles in each row of tiles.
    Mosaic { index: usize, per_row: usize },
}

/// One 2-D image: a frame of an object, or a tile of a mosaic frame.
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    /// Index of the file in its series' file list.
    pub file: usize,
    pub frame: usize,
    pub tile: Tile,
    /// Rows and columns of this slice (a mosaic tile's, not the frame's).
    pub rows: usize,
    pub cols: usize,
    /// Patient-frame (LPS) position of the first pixel's centre, in mm.
    pub position: [f64; 3],
    /// Direction cosines of a row (increasing column index) and of a column (increasing row index).
    pub row_dir: [f64; 3],
    pub col_dir: [f64; 3],
    /// PixelSpacing: between rows, then between columns (mm).
    pub pixel_spacing: [f64; 2],
    /// Stored value -> real value: `stored * slope + intercept`.
    pub slope: f64,
    pub intercept: f64,
    /// Order within one position of a 4-D series: temporal index, acquisition time, instance, frame.
    pub time_key: (i64, f64, i64, usize),
}

/// The header of one DICOM object, reduced to what series discovery and reading use.
#[derive(Debug, Clone)]
pub(crate) struct ObjectHeader {
    pub series_uid: String,
    pub series_number: Option<i64>,
    pub description: String,
    pub protocol: String,
    pub sequence: String,
    pub image_type: Vec<String>,
    pub echo: Option<i64>,
    pub echo_time: Option<f64>,
    pub inversion_time: Option<f64>,
    pub contrast_agent: String,
    pub transfer_syntax: String,
    pub slices: Vec<Slice>,
}

impl ObjectHeader {
    /// Whether the image type marks phase (rather than magnitude) values.
    pub fn is_phase(&self) -> bool {
        self.image_type
            .iter()
            .skip(2)
            .any(|v| v == "P" || v == "PHASE")
    }
}

/// Whether a file starts like a DICOM Part 10 file ("DICM" after the 128-byte preamble).
pub(crate) fn looks_like_dicom(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..] == b"DICM"
}

/// Open a file up to (not including) its pixel data.
pub(crate) fn open_header(path: &Path) -> Result<DefaultDicomObject> {
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| Error::at(path, format!("not a readable DICOM file: {}", one_line(&e))))
}

/// Open a whole file, pixel data included.
pub(crate) fn open_full(path: &Path) -> Result<DefaultDicomObject> {
    OpenFileOptions::new().open_file(path).map_err(|e| {
        Error::at(
            path,
            format!("cannot read the DICOM file: {}", one_line(&e)),
        )
    })
}

/// An error (and its causes) as one line.
pub(crate) fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

/// SOP classes that never hold images brainseg can use (raw data, structured reports, presentation
/// states, waveforms, encapsulated documents, spectroscopy). Others are judged by their attributes.
fn is_non_image_class(uid: &str) -> bool {
    const NON_IMAGE: [&str; 6] = [
        "1.2.840.10008.5.1.4.1.1.66", // Raw Data Storage (and .66.x: registration, fiducials...)
        "1.2.840.10008.5.1.4.1.1.88.", // structured reports
        "1.2.840.10008.5.1.4.1.1.11.", // presentation states
        "1.2.840.10008.5.1.4.1.1.9.", // waveforms
        "1.2.840.10008.5.1.4.1.1.104.", // encapsulated PDF/CDA
        "1.2.840.10008.5.1.4.1.1.4.2", // MR spectroscopy
    ];
    NON_IMAGE.iter().any(|p| uid.starts_with(p)) || uid == "1.2.840.10008.1.3.10"
}

/// Read what discovery needs from an opened object. `Ok(None)` for objects that are not images.
pub(crate) fn object_header(
    path: &Path,
    file: usize,
    obj: &DefaultDicomObject,
) -> Result<Option<ObjectHeader>> {
    let sop_class = obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0');
    if is_non_image_class(sop_class) {
        return Ok(None);
    }
    let (Some(rows), Some(cols)) = (int(obj, tags::ROWS), int(obj, tags::COLUMNS)) else {
        return Ok(None);
    };
    let (rows, cols) = (rows as usize, cols as usize);
    if rows == 0 || cols == 0 {
        return Err(Error::at(path, format!("image of {rows}x{cols} pixels")));
    }
    let image_type = strings(obj, tags::IMAGE_TYPE);
    let frames = int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or(&[]);
    let shared = obj
        .get(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first());
    let enhanced = !per_frame.is_empty() || shared.is_some();
    let instance = int(obj, tags::INSTANCE_NUMBER).unwrap_or(0);
    let acquisition_time = text(obj, tags::ACQUISITION_TIME)
        .as_deref()
        .and_then(seconds_of_day)
        .unwrap_or(0.0);
    let temporal = int(obj, tags::TEMPORAL_POSITION_IDENTIFIER).unwrap_or(0);
    let philips_slope = float(obj, PHILIPS_SCALE_SLOPE);
    let mut slices = Vec::new();
    let mut echo_time = float(obj, tags::ECHO_TIME);
    if enhanced {
        if per_frame.len() != frames {
            return Err(Error::at(
                path,
                format!(
                    "NumberOfFrames is {frames} but the per-frame functional groups describe {}",
                    per_frame.len()
                ),
            ));
        }
        for (frame, groups) in per_frame.iter().enumerate() {
            // A functional group from this frame's groups, else from the shared ones.
            let group = |tag: Tag| {
                first_item(groups, tag).or_else(|| shared.and_then(|s| first_item(s, tag)))
            };
            let position = group(tags::PLANE_POSITION_SEQUENCE)
                .and_then(|g| floats(g, tags::IMAGE_POSITION_PATIENT));
            let orientation = group(tags::PLANE_ORIENTATION_SEQUENCE)
                .and_then(|g| floats(g, tags::IMAGE_ORIENTATION_PATIENT));
            let spacing =
                group(tags::PIXEL_MEASURES_SEQUENCE).and_then(|g| floats(g, tags::PIXEL_SPACING));
            let transform = group(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE);
            let slope = transform
                .and_then(|g| float(g, tags::RESCALE_SLOPE))
                .unwrap_or(1.0);
            let intercept = transform
                .and_then(|g| float(g, tags::RESCALE_INTERCEPT))
                .unwrap_or(0.0);
            let philips = first_item(groups, PHILIPS_PRIVATE_GROUP_SEQUENCE)
                .and_then(|g| float(g, PHILIPS_SCALE_SLOPE))
                .or(philips_slope);
            let content = group(tags::FRAME_CONTENT_SEQUENCE);
            let temporal = content
                .and_then(|g| int(g, tags::TEMPORAL_POSITION_INDEX))
                .unwrap_or(0);
            let time = content
                .and_then(|g| text(g, tags::FRAME_ACQUISITION_DATE_TIME))
                .and_then(|t| t.get(8..).and_then(seconds_of_day))
                .unwrap_or(acquisition_time);
            if echo_time.is_none() {
                echo_time =
                    group(tags::MR_ECHO_SEQUENCE).and_then(|g| float(g, tags::EFFECTIVE_ECHO_TIME));
            }
            let (slope, intercept) = real_value_scaling(slope, intercept, philips);
            slices.push(plane(
                path,
                file,
                frame,
                (rows, cols),
                position,
                orientation,
                spacing,
                (slope, intercept),
                (temporal, time, instance, frame),
            )?);
        }
    } else {
        let position = floats(obj, tags::IMAGE_POSITION_PATIENT);
        let orientation = floats(obj, tags::IMAGE_ORIENTATION_PATIENT);
        let spacing = floats(obj, tags::PIXEL_SPACING);
        let slope = float(obj, tags::RESCALE_SLOPE).unwrap_or(1.0);
        let intercept = float(obj, tags::RESCALE_INTERCEPT).unwrap_or(0.0);
        let (slope, intercept) = real_value_scaling(slope, intercept, philips_slope);
        let time_key = (temporal, acquisition_time, instance, 0);
        let mosaic = image_type.iter().any(|t| t == "MOSAIC");
        if mosaic {
            slices = mosaic_slices(
                path,
                obj,
                file,
                (rows, cols),
                position,
                orientation,
                spacing,
                (slope, intercept),
                time_key,
            )?;
        } else {
            for frame in 0..frames {
                slices.push(plane(
                    path,
                    file,
                    frame,
                    (rows, cols),
                    position.clone(),
                    orientation.clone(),
                    spacing.clone(),
                    (slope, intercept),
                    (time_key.0, time_key.1, time_key.2, frame),
                )?);
            }
        }
    }
    Ok(Some(ObjectHeader {
        series_uid: text(obj, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        series_number: int(obj, tags::SERIES_NUMBER),
        description: text(obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        protocol: text(obj, tags::PROTOCOL_NAME).unwrap_or_default(),
        sequence: [
            text(obj, tags::SEQUENCE_NAME),
            text(obj, tags::PULSE_SEQUENCE_NAME),
            text(obj, tags::SCANNING_SEQUENCE),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" "),
        image_type,
        echo: int(obj, tags::ECHO_NUMBERS),
        echo_time,
        inversion_time: float(obj, tags::INVERSION_TIME),
        contrast_agent: text(obj, tags::CONTRAST_BOLUS_AGENT).unwrap_or_default(),
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_string(),
        slices,
    }))
}

/// Stored value -> real value. With a Philips private scale slope `ss`, dcm2niix's default
/// "precise float" values: `(stored * slope + intercept) / (slope * ss)`; otherwise the display
/// values `stored * slope + intercept`.
fn real_value_scaling(slope: f64, intercept: f64, philips: Option<f64>) -> (f64, f64) {
    match philips {
        Some(ss) if ss.is_finite() && ss != 0.0 && slope != 0.0 => {
            (1.0 / ss, intercept / (slope * ss))
        }
        _ => (slope, intercept),
    }
}

#[allow(clippy::too_many_arguments)]
fn plane(
    path: &Path,
    file: usize,
    frame: usize,
    (rows, cols): (usize, usize),
    position: Option<Vec<f64>>,
    orientation: Option<Vec<f64>>,
    spacing: Option<Vec<f64>>,
    (slope, intercept): (f64, f64),
    time_key: (i64, f64, i64, usize),
) -> Result<Slice> {
    let frame_text = || {
        if frame > 0 {
            format!(" (frame {})", frame + 1)
        } else {
            String::new()
        }
    };
    let position = match position {
        Some(p) if p.len() >= 3 => [p[0], p[1], p[2]],
        _ => {
            return Err(Error::at(
                path,
                format!("no ImagePositionPatient{}", frame_text()),
            ))
        }
    };
    let (row_dir, col_dir) = match orientation {
        Some(o) if o.len() >= 6 => (
            unit([o[0], o[1], o[2]]).ok_or_else(|| bad_orientation(path, &o))?,
            unit([o[3], o[4], o[5]]).ok_or_else(|| bad_orientation(path, &o))?,
        ),
        _ => {
            return Err(Error::at(
                path,
                format!("no ImageOrientationPatient{}", frame_text()),
            ))
        }
    };
    let pixel_spacing = match spacing {
        Some(s) if s.len() >= 2 && s[0] > 0.0 && s[1] > 0.0 => [s[0], s[1]],
        Some(s) => {
            return Err(Error::at(
                path,
                format!("impossible PixelSpacing {s:?}{}", frame_text()),
            ))
        }
        None => return Err(Error::at(path, format!("no PixelSpacing{}", frame_text()))),
    };
    Ok(Slice {
        file,
        frame,
        tile: Tile::Whole,
        rows,
        cols,
        position,
        row_dir,
        col_dir,
        pixel_spacing,
        slope,
        intercept,
        time_key,
    })
}

fn bad_orientation(path: &Path, o: &[f64]) -> Error {
    Error::at(path, format!("impossible ImageOrientationPatient {o:?}"))
}

/// The slices of a Siemens mosaic: `NumberOfImagesInMosaic` tiles laid out row by row in a square
/// grid. ImagePositionPatient describes the whole mosaic as if one tile were centred in it, so the
/// first tile starts half the difference in size further along the row and column directions;
/// tiles follow each other along the CSA SliceNormalVector (or the row x column normal without it)
/// at SpacingBetweenSlices (or SliceThickness).
#[allow(clippy::too_many_arguments)]
fn mosaic_slices(
    path: &Path,
    obj: &DefaultDicomObject,
    file: usize,
    (rows, cols): (usize, usize),
    position: Option<Vec<f64>>,
    orientation: Option<Vec<f64>>,
    spacing: Option<Vec<f64>>,
    scaling: (f64, f64),
    time_key: (i64, f64, i64, usize),
) -> Result<Vec<Slice>> {
    let csa = obj
        .get(SIEMENS_CSA_IMAGE)
        .and_then(|e| e.to_bytes().ok())
        .map(|b| b.into_owned())
        .unwrap_or_default();
    let count = csa_field(&csa, "NumberOfImagesInMosaic")
        .and_then(|v| v.first().and_then(|s| s.trim().parse::<f64>().ok()))
        .filter(|&n| n >= 1.0)
        .map(|n| n as usize)
        .ok_or_else(|| {
            Error::at(
                path,
                "a Siemens mosaic without NumberOfImagesInMosaic in its CSA header",
            )
        })?;
    let per_row = (1..=count).find(|n| n * n >= count).unwrap_or(1);
    if rows % per_row != 0 || cols % per_row != 0 {
        return Err(Error::at(
            path,
            format!("a {rows}x{cols} mosaic cannot hold {count} tiles in rows of {per_row}"),
        ));
    }
    let (tile_rows, tile_cols) = (rows / per_row, cols / per_row);
    let first = plane(
        path,
        file,
        0,
        (tile_rows, tile_cols),
        position,
        orientation,
        spacing,
        scaling,
        time_key,
    )?;
    let normal = cross(first.row_dir, first.col_dir);
    let direction = csa_field(&csa, "SliceNormalVector")
        .and_then(|v| {
            let v: Vec<f64> = v.iter().filter_map(|s| s.trim().parse().ok()).collect();
            (v.len() == 3).then(|| [v[0], v[1], v[2]])
        })
        .and_then(unit)
        .map(|n| if dot(n, normal) < 0.0 { -1.0 } else { 1.0 })
        .unwrap_or(1.0);
    let step = float(obj, tags::SPACING_BETWEEN_SLICES)
        .filter(|s| *s > 0.0)
        .or_else(|| float(obj, tags::SLICE_THICKNESS).filter(|s| *s > 0.0))
        .ok_or_else(|| {
            Error::at(
                path,
                "a mosaic without SpacingBetweenSlices or SliceThickness",
            )
        })?;
    let [dr, dc] = first.pixel_spacing;
    let shift_cols = (cols - tile_cols) as f64 / 2.0 * dc;
    let shift_rows = (rows - tile_rows) as f64 / 2.0 * dr;
    let origin: [f64; 3] = std::array::from_fn(|a| {
        first.position[a] + shift_cols * first.row_dir[a] + shift_rows * first.col_dir[a]
    });
    Ok((0..count)
        .map(|index| {
            let along = index as f64 * step * direction;
            Slice {
                tile: Tile::Mosaic { index, per_row },
                position: std::array::from_fn(|a| origin[a] + along * normal[a]),
                ..first.clone()
            }
        })
        .collect())
}

/// The values of one field of a Siemens CSA header ("SV10" layout: a tag count, then per tag a
/// 64-byte name, VM, VR, type, item count, and items of a length and padded text).
pub(crate) fn csa_field(csa: &[u8], name: &str) -> Option<Vec<String>> {
    let u32_at = |at: usize| -> Option<usize> {
        csa.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if !csa.starts_with(b"SV10") {
        return None;
    }
    let tags = u32_at(8)?;
    let mut at = 16;
    for _ in 0..tags.min(1024) {
        let tag_name = csa.get(at..at + 64)?;
        let tag_name = &tag_name[..tag_name.iter().position(|&b| b == 0).unwrap_or(64)];
        let items = u32_at(at + 76)?;
        at += 84;
        let mut values = Vec::new();
        for _ in 0..items.min(4096) {
            let len = u32_at(at + 4)?;
            at += 16;
            let data = csa.get(at..at + len)?;
            let data = &data[..data.iter().position(|&b| b == 0).unwrap_or(len)];
            values.push(String::from_utf8_lossy(data).into_owned());
            at += len.div_ceil(4) * 4;
        }
        if tag_name == name.as_bytes() {
            values.retain(|v| !v.trim().is_empty());
            return Some(values);
        }
    }
    None
}

fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag).and_then(|e| e.items()).and_then(|i| i.first())
}

pub(crate) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let v = obj.get(tag)?.to_str().ok()?;
    let v = v.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!v.is_empty()).then(|| v.to_string())
}

fn strings(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    obj.get(tag)
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| {
            v.iter()
                .map(|s| s.trim_matches(|c: char| c.is_whitespace() || c == '\0'))
                .map(|s| s.to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    let e = obj.get(tag)?;
    e.to_int::<i64>()
        .ok()
        .or_else(|| e.to_float64().ok().map(|v| v as i64))
}

pub(crate) fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    let e = obj.get(tag)?;
    if let Ok(v) = e.to_float64() {
        return v.is_finite().then_some(v);
    }
    // Private floats read without a dictionary (implicit VR) arrive as raw bytes.
    let bytes = e.to_bytes().ok()?;
    match bytes.len() {
        4 => Some(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as f64),
        8 => Some(f64::from_le_bytes(bytes[..8].try_into().ok()?)),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let v = obj.get(tag)?.to_multi_float64().ok()?;
    v.iter().all(|x| x.is_finite()).then_some(v)
}

/// "HHMMSS.FFFFFF" (possibly shortened) as seconds since midnight.
fn seconds_of_day(t: &str) -> Option<f64> {
    let t = t.trim();
    let digits = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<f64>().ok());
    let h = digits(0..2)?;
    let m = digits(2..4).unwrap_or(0.0);
    let s = t
        .get(4..)
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    Some(h * 3600.0 + m * 60.0 + s)
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn unit(v: [f64; 3]) -> Option<[f64; 3]> {
    let n = dot(v, v).sqrt();
    (n > 1e-6 && n.is_finite()).then(|| v.map(|x| x / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philips_precise_scaling_divides_by_the_private_slope() {
        // (stored * 2 + 4) / (2 * 0.5) = stored * 2 + 4 -> slope 1/0.5, intercept 4/(2*0.5).
        assert_eq!(real_value_scaling(2.0, 4.0, Some(0.5)), (2.0, 4.0));
        assert_eq!(real_value_scaling(21.0, 0.0, Some(0.25)), (4.0, 0.0));
        assert_eq!(real_value_scaling(2.0, -4096.0, None), (2.0, -4096.0));
    }

    #[test]
    fn csa_fields_are_found_by_name() {
        // Hand-built SV10 header with two tags.
        let mut b = b"SV10\x04\x03\x02\x01".to_vec();
        b.extend(2u32.to_le_bytes());
        b.extend(77u32.to_le_bytes());
        for (name, values) in [("Other", vec!["x"]), ("NumberOfImagesInMosaic", vec!["35"])] {
            let mut n = name.as_bytes().to_vec();
            n.resize(64, 0);
            b.extend(n);
            b.extend(1i32.to_le_bytes()); // vm
            b.extend(b"IS\0\0");
            b.extend(6i32.to_le_bytes());
            b.extend((values.len() as u32).to_le_bytes());
            b.extend(77u32.to_le_bytes());
            for v in values {
                let len = v.len() as u32 + 1;
                for x in [len, len, 77, len] {
                    b.extend(x.to_le_bytes());
                }
                let mut d = v.as_bytes().to_vec();
                d.push(0);
                d.resize((len as usize).div_ceil(4) * 4, 0);
                b.extend(d);
            }
        }
        assert_eq!(
            csa_field(&b, "NumberOfImagesInMosaic"),
            Some(vec!["35".to_string()])
        );
        assert_eq!(csa_field(&b, "Missing"), None);
        assert_eq!(csa_field(&b[..40], "NumberOfImagesInMosaic"), None);
    }

    #[test]
    fn times_of_day() {
        assert_eq!(
            seconds_of_day("123011.580"),
            Some(12.0 * 3600.0 + 30.0 * 60.0 + 11.58)
        );
        assert_eq!(seconds_of_day("x"), None);
    }
}
