//! Raw BraTS -> MSD layout (dataset.json, 4-D imagesTr, labelsTr in MSD numbering), and compact
//! training copies.
//!
//! Images keep their source datatype when all four modalities share one unscaled integer type
//! (BraTS int16 stays int16, lossless and half the size); otherwise they are written as float32.
//! Every file keeps the source header geometry, so each voxel keeps its world position. Cases
//! without a label go to imagesTs and the "test" list, as in MSD. dataset.json is written last, so
//! an interrupted conversion leaves no dataset that looks complete.
use crate::nifti_io::{dtype_name, is_unscaled, read_header, write_image, write_label};
use crate::{
    write_atomic, CaseRef, Dataset, Error, Geometry, LabelNumbering, MsdLayout, Result, MODALITIES,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::{Array3, Array4};
use std::io::Write;
use std::path::Path;

/// Convert a dataset folder to the MSD layout under `out`; returns the number of cases written.
pub fn to_msd(src: &Path, out: &Path) -> Result<usize> {
    let dataset = Dataset::open(src)?;
    let layout = MsdLayout::new(out);
    layout.create_folders()?;
    let mut training = Vec::new();
    let mut test = Vec::new();
    // Files this conversion created: removed again when a later case fails, so a failed
    // conversion leaves no partial output (files that were there before are left alone).
    let mut created = Vec::new();
    let mut write_case = |case_ref: &CaseRef| -> Result<()> {
        let dtype = stored_dtype(case_ref)?;
        let case = case_ref.load()?;
        let mut record = |path: &Path| {
            if !path.exists() {
                created.push(path.to_path_buf());
            }
        };
        match &case.label {
            Some(label) => {
                let image = layout.training_image(&case.id);
                let label_path = layout.training_label(&case.id);
                record(&image);
                record(&label_path);
                write_image(&image, &case.image, &case.geometry, &dtype)?;
                write_label(
                    &label_path,
                    label,
                    &case.geometry,
                    Some(LabelNumbering::Msd),
                )?;
                training.push(case.id.clone());
            }
            None => {
                let image = layout.test_image(&case.id);
                record(&image);
                write_image(&image, &case.image, &case.geometry, &dtype)?;
                test.push(case.id.clone());
            }
        }
        Ok(())
    };
    let written: Result<()> = dataset.cases.iter().try_for_each(&mut write_case);
    if let Err(e) = written {
        for path in &created {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
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

/// How [`compact_copy`] writes each case.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactOptions {
    /// Each modality scaled to whole codes 1..levels-1 (0 stays 0) and stored as uint8 (lossy; see
    /// [`quantize`]); the step of each modality is recorded (see [`QUANTISATION_FILE`]). `None`:
    /// stored as float32, as read.
    pub levels: Option<u16>,
    /// Crop each case to the bounding box of its non-zero voxels (any modality or label) widened
    /// by this many voxels (clamped to the volume); the affine's origin moves with the crop, so
    /// every voxel keeps its world position.
    pub crop_margin: Option<usize>,
    /// gzip level of the written `.nii.gz` files: 0 (stored: for packing the copy with a stronger
    /// codec such as xz) to 9.
    pub gzip_level: u32,
}

impl Default for CompactOptions {
    /// As read: no crop, no quantisation, gzip level 1 (as every other writer).
    fn default() -> CompactOptions {
        CompactOptions {
            levels: None,
            crop_margin: None,
            gzip_level: 1,
        }
    }
}

impl CompactOptions {
    /// The compact training copy: cropped with a 2-voxel margin, [`COMPACT_LEVELS`] levels per
    /// modality in uint8, gzip level 9.
    pub fn compact() -> CompactOptions {
        CompactOptions {
            levels: Some(COMPACT_LEVELS),
            crop_margin: Some(2),
            gzip_level: 9,
        }
    }
}

/// Levels of a compact copy: see `brainseg convert --compact` for the size/fidelity measurement.
pub const COMPACT_LEVELS: u16 = 32;

/// The file beside `dataset.json` in a quantised copy that records, per case, each modality's
/// step: the original intensity is about `code * step` (code 0 is background). A 4-D NIfTI has
/// one `scl_slope` for all its volumes, so the four per-modality steps cannot be put there; the
/// header's `scl_slope` stays 1 (readers see the codes) and its `descrip` repeats the steps.
pub const QUANTISATION_FILE: &str = "quantisation.json";

/// What [`compact_copy`] wrote for one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactCase {
    pub id: String,
    /// Canonical shape before and after cropping.
    pub shape: [usize; 3],
    pub cropped_shape: [usize; 3],
    /// Canonical index of the crop's first voxel in the source case.
    pub crop_start: [usize; 3],
    /// Per modality (FLAIR, T1w, T1Gd, T2w): intensity ≈ code × step (None: not quantised).
    pub steps: Option<[f32; 4]>,
}

/// A training copy of some (or all) labelled cases of `src` in the MSD layout under `out` (see
/// [`CompactOptions`]). `progress` is called after each case. Returns what was written per case.
pub fn compact_copy(
    src: &Path,
    out: &Path,
    only: Option<&[String]>,
    options: &CompactOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<CompactCase>> {
    if let Some(levels) = options.levels.filter(|l| !(3..=256).contains(l)) {
        return Err(Error::at(
            out,
            format!("{levels} quantisation levels: choose 3 to 256"),
        ));
    }
    if options.gzip_level > 9 {
        return Err(Error::at(
            out,
            format!("gzip level {} is not in 0..=9", options.gzip_level),
        ));
    }
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
    let mut written = vec![];
    for (done, case_ref) in cases.iter().enumerate() {
        let case = case_ref.load()?;
        let label = case
            .label
            .ok_or_else(|| Error::at(out, format!("case {} has no label", case.id)))?;
        let shape = case.geometry.canonical_shape();
        let (mut image, label, mut geometry, crop_start) = match options.crop_margin {
            Some(margin) => {
                let (start, end) = nonzero_box(&case.image, &label, margin);
                let geometry = crop_geometry(&case.geometry, start, end);
                let s = |a: usize| ndarray::Slice::from(start[a]..end[a]);
                let image = case
                    .image
                    .slice_each_axis(|ax| match ax.axis.index() {
                        0 => ndarray::Slice::from(..),
                        a => s(a - 1),
                    })
                    .to_owned();
                let label = label.slice_each_axis(|ax| s(ax.axis.index())).to_owned();
                (image, label, geometry, start)
            }
            None => (case.image, label, case.geometry, [0; 3]),
        };
        let (dtype, steps) = if let Some(levels) = options.levels {
            let steps = quantize(&mut image, levels);
            let text = steps.map(|s| format!("{s:.5}")).join(" ");
            let mut descrip = format!("u8 codes, I=code*step; steps {text}").into_bytes();
            descrip.truncate(80);
            geometry.header.descrip = descrip;
            ("uint8", Some(steps))
        } else {
            ("float32", None)
        };
        write_gz(
            &layout.training_image(&case.id),
            options.gzip_level,
            |path| write_image(path, &image, &geometry, dtype),
        )?;
        write_gz(
            &layout.training_label(&case.id),
            options.gzip_level,
            |path| write_label(path, &label, &geometry, Some(LabelNumbering::Msd)),
        )?;
        written.push(CompactCase {
            id: case.id.clone(),
            shape,
            cropped_shape: geometry.canonical_shape(),
            crop_start,
            steps,
        });
        progress(done + 1, cases.len());
    }
    if let Some(levels) = options.levels {
        let cases: serde_json::Map<String, serde_json::Value> = written
            .iter()
            .map(|c| {
                let steps = c.steps.expect("quantised");
                let per_modality: serde_json::Map<String, serde_json::Value> = MODALITIES
                    .iter()
                    .zip(steps)
                    .map(|(m, s)| (m.to_string(), serde_json::Value::from(s as f64)))
                    .collect();
                (c.id.clone(), per_modality.into())
            })
            .collect();
        let json = serde_json::json!({
            "codes": format!("uint8 per modality, 0..{}; 0 is background (a voxel that was 0 or below)", levels - 1),
            "intensity": format!("about code * step of the modality (the 99.9th percentile of the non-zero voxels is code {})", levels - 2),
            "levels": levels,
            "steps": cases,
        });
        let text = serde_json::to_string_pretty(&json).expect("JSON values serialise") + "\n";
        write_atomic(out.join(QUANTISATION_FILE), text.as_bytes())?;
    }
    let mut notes = vec![];
    if let Some(margin) = options.crop_margin {
        notes.push(format!(
            "cropped to the non-zero bounding box + {margin} voxels (world positions kept)"
        ));
    }
    if let Some(levels) = options.levels {
        notes.push(format!(
            "uint8-quantised per modality to {levels} levels (lossy; steps in {QUANTISATION_FILE})"
        ));
    }
    let description = format!(
        "brainseg compact copy of {}{}{}",
        src.display(),
        if notes.is_empty() { "" } else { ", " },
        notes.join(", ")
    );
    let ids: Vec<String> = written.iter().map(|c| c.id.clone()).collect();
    layout.write_dataset_json("brainseg compact copy", &description, &ids, &[])?;
    Ok(written)
}

/// Write with `write` (which writes `.nii.gz` at level 1) and, for another level, recompress.
fn write_gz(path: &Path, level: u32, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if level == 1 {
        return write(path);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("case");
    let plain = path.with_file_name(format!(".{name}.plain.nii"));
    write(&plain)?;
    let bytes = std::fs::read(&plain).map_err(|e| Error::at(&plain, format!("cannot read: {e}")));
    let _ = std::fs::remove_file(&plain);
    let bytes = bytes?;
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::new(level));
    encoder
        .write_all(&bytes)
        .map_err(|e| Error::at(path, format!("cannot compress: {e}")))?;
    let gz = encoder
        .finish()
        .map_err(|e| Error::at(path, format!("cannot compress: {e}")))?;
    write_atomic(path, &gz)
}

/// The canonical box `[start, end)` of voxels non-zero in any modality or in the label, widened
/// by `margin` and clamped to the volume; an all-zero case keeps its whole volume.
pub fn nonzero_box(
    image: &Array4<f32>,
    label: &Array3<u8>,
    margin: usize,
) -> ([usize; 3], [usize; 3]) {
    let shape = [label.shape()[0], label.shape()[1], label.shape()[2]];
    let mut inside = label.mapv(|l| l != 0);
    for channel in image.outer_iter() {
        ndarray::Zip::from(&mut inside)
            .and(&channel)
            .for_each(|m, &v| *m |= v != 0.0);
    }
    let mut lo = shape;
    let mut hi = [0usize; 3];
    for ((x, y, z), _) in inside.indexed_iter().filter(|(_, &m)| m) {
        for (a, i) in [x, y, z].into_iter().enumerate() {
            lo[a] = lo[a].min(i);
            hi[a] = hi[a].max(i + 1);
        }
    }
    if hi.contains(&0) {
        return ([0; 3], shape);
    }
    let start = [0, 1, 2].map(|a| lo[a].saturating_sub(margin));
    let end = [0, 1, 2].map(|a| (hi[a] + margin).min(shape[a]));
    (start, end)
}

/// The geometry of the canonical box `[start, end)` of `g`: the same orientation and voxel axes,
/// the source shape of the box, and the origin (sform and qform offsets) moved to the box's first
/// source voxel, so every voxel of the box keeps its world position.
pub fn crop_geometry(g: &Geometry, start: [usize; 3], end: [usize; 3]) -> Geometry {
    let mut source_start = [0usize; 3];
    let mut source_shape = g.source_shape;
    for (a, (&s, &flip)) in g
        .orientation
        .perm
        .iter()
        .zip(&g.orientation.flip)
        .enumerate()
    {
        let n = g.source_shape[s];
        source_shape[s] = end[a] - start[a];
        // A flipped axis runs backwards: canonical [start, end) is source [n - end, n - start).
        source_start[s] = if flip { n - end[a] } else { start[a] };
    }
    let shift = |affine: [[f64; 4]; 4], row: usize| -> f64 {
        (0..3)
            .map(|c| affine[row][c] * source_start[c] as f64)
            .sum()
    };
    let mut header = g.header.clone();
    // The sform, shifted by its own affine (read back only when sform_code > 0).
    let sform = [header.srow_x, header.srow_y, header.srow_z].map(|r| r.map(f64::from));
    let mut sform_affine = [[0.0; 4]; 4];
    sform_affine[..3].copy_from_slice(&sform);
    for (row, srow) in [&mut header.srow_x, &mut header.srow_y, &mut header.srow_z]
        .into_iter()
        .enumerate()
    {
        srow[3] = (sform[row][3] + shift(sform_affine, row)) as f32;
    }
    // The qform, shifted by the qform's affine (the header's affine with the sform switched off).
    if header.qform_code > 0 {
        let mut qform_only = g.clone();
        qform_only.header.sform_code = 0;
        let q = qform_only.source_affine();
        header.quatern_x = (q[0][3] + shift(q, 0)) as f32;
        header.quatern_y = (q[1][3] + shift(q, 1)) as f32;
        header.quatern_z = (q[2][3] + shift(q, 2)) as f32;
    }
    for (s, &n) in source_shape.iter().enumerate() {
        header.dim[s + 1] = n as u16;
    }
    Geometry {
        header,
        orientation: g.orientation,
        source_shape,
    }
}

/// Each modality scaled so its 99.9th percentile of non-zero voxels is code `levels - 2`, rounded,
/// clamped to 1..`levels - 1` (0 and below become 0). Returns each modality's step: intensity ≈
/// code × step. With 256 levels: 254 and 1..255.
fn quantize(image: &mut ndarray::Array4<f32>, levels: u16) -> [f32; 4] {
    let (top_code, max_code) = (f32::from(levels - 2), f32::from(levels - 1));
    let mut steps = [1.0f32; 4];
    for (c, mut channel) in image.outer_iter_mut().enumerate() {
        let mut values: Vec<f32> = channel.iter().copied().filter(|&v| v > 0.0).collect();
        if values.is_empty() {
            channel.fill(0.0);
            continue;
        }
        let k = ((values.len() - 1) as f64 * 0.999) as usize;
        let (_, top, _) = values.select_nth_unstable_by(k, f32::total_cmp);
        let scale = top_code / top.max(f32::MIN_POSITIVE);
        if let Some(step) = steps.get_mut(c) {
            *step = 1.0 / scale;
        }
        channel.mapv_inplace(|v| {
            if v > 0.0 {
                (v * scale).round().clamp(1.0, max_code)
            } else {
                0.0
            }
        });
    }
    steps
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
