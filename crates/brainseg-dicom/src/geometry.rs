//! Placing a series' slices into a volume: sorting along the slice normal, checking the spacing,
//! and the voxel-to-world affine as dcm2niix writes it.
#![allow(clippy::needless_range_loop)] // 3x3 and 4x4 matrix arithmetic reads best indexed.
use crate::header::{cross, dot, Slice};
use crate::{Error, Result};
use brainseg_volume::{Geometry, Orientation};
use nifti::{Endianness, NiftiHeader};
use std::path::PathBuf;

/// How the slices of a series form a `(cols, rows, slices, volumes)` volume.
#[derive(Debug, Clone)]
pub struct StackGeometry {
    pub cols: usize,
    pub rows: usize,
    pub slices: usize,
    pub volumes: usize,
    /// PixelSpacing: between rows, then between columns (mm).
    pub pixel_spacing: [f64; 2],
    /// Distance between neighbouring slice positions (mm).
    pub slice_step: f64,
    /// `order[v * slices + k]`: index (into the series' slices) of slice `k` of volume `v`.
    pub order: Vec<usize>,
    /// Voxel `(column i, row j, slice k)` to DICOM patient coordinates (LPS, mm).
    pub affine_lps: [[f64; 4]; 4],
}

impl StackGeometry {
    /// Voxel to NIfTI world (RAS, mm): the LPS affine with its x and y rows negated.
    pub fn affine_ras(&self) -> [[f64; 4]; 4] {
        lps_to_ras(&self.affine_lps)
    }
}

/// Negate the x and y rows (DICOM LPS to NIfTI RAS).
pub fn lps_to_ras(a: &[[f64; 4]; 4]) -> [[f64; 4]; 4] {
    let mut r = *a;
    for c in 0..4 {
        r[0][c] = -a[0][c];
        r[1][c] = -a[1][c];
    }
    r
}

/// Positions along the normal closer than this are one position (mm).
const SAME_POSITION_MM: f64 = 0.01;

/// Sort slices along the normal (row x column direction cosines) by the projection of their
/// position; several images at one position are the volumes of a 4-D series, in time order.
pub(crate) fn stack(slices: &[Slice], files: &[PathBuf]) -> Result<StackGeometry> {
    let first = slices
        .first()
        .ok_or_else(|| Error::msg("a series without images"))?;
    let file = |s: &Slice| files[s.file].clone();
    for s in slices {
        let same_dirs = (0..3).all(|a| {
            (s.row_dir[a] - first.row_dir[a]).abs() < 1e-3
                && (s.col_dir[a] - first.col_dir[a]).abs() < 1e-3
        });
        if s.rows != first.rows || s.cols != first.cols {
            return Err(Error::at(
                file(s),
                format!(
                    "image of {}x{} pixels in a series of {}x{} images (like {})",
                    s.cols,
                    s.rows,
                    first.cols,
                    first.rows,
                    files[first.file].display()
                ),
            ));
        }
        if !same_dirs {
            return Err(Error::at(
                file(s),
                format!(
                    "ImageOrientationPatient {:?} {:?} differs from the series' {:?} {:?} (in {})",
                    s.row_dir,
                    s.col_dir,
                    first.row_dir,
                    first.col_dir,
                    files[first.file].display()
                ),
            ));
        }
        if (0..2).any(|a| (s.pixel_spacing[a] - first.pixel_spacing[a]).abs() > 1e-4) {
            return Err(Error::at(
                file(s),
                format!(
                    "PixelSpacing {:?} differs from the series' {:?} (in {})",
                    s.pixel_spacing,
                    first.pixel_spacing,
                    files[first.file].display()
                ),
            ));
        }
    }
    let normal = cross(first.row_dir, first.col_dir);
    let along = |i: usize| dot(slices[i].position, normal);
    let mut sorted: Vec<usize> = (0..slices.len()).collect();
    sorted.sort_by(|&a, &b| along(a).total_cmp(&along(b)));
    // Runs of equal position, each sorted by time.
    let mut positions: Vec<Vec<usize>> = Vec::new();
    for i in sorted {
        match positions.last_mut() {
            Some(run) if (along(i) - along(run[0])).abs() < SAME_POSITION_MM => run.push(i),
            _ => positions.push(vec![i]),
        }
    }
    for run in &mut positions {
        run.sort_by(|&a, &b| {
            let (ka, kb) = (slices[a].time_key, slices[b].time_key);
            ka.0.cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(ka.2.cmp(&kb.2))
                .then(ka.3.cmp(&kb.3))
        });
    }
    let volumes = positions[0].len();
    if let Some(run) = positions.iter().find(|r| r.len() != volumes) {
        let (few, many) = if run.len() < volumes {
            (run, &positions[0])
        } else {
            (&positions[0], run)
        };
        return Err(Error::at(
            file(&slices[few[0]]),
            format!(
                "an incomplete 4-D series: the position {:.3} mm along the slice normal has {} images, the position {:.3} mm (of {}) has {}; a volume misses a slice",
                along(few[0]),
                few.len(),
                along(many[0]),
                files[slices[many[0]].file].display(),
                many.len()
            ),
        ));
    }
    let n = positions.len();
    let firsts: Vec<usize> = positions.iter().map(|r| r[0]).collect();
    let step_vector: [f64; 3];
    let slice_step;
    if n > 1 {
        let steps: Vec<f64> = firsts
            .windows(2)
            .map(|w| along(w[1]) - along(w[0]))
            .collect();
        // The smallest step is the series' step: a missing slice makes one step a multiple of it.
        let typical = steps.iter().copied().fold(f64::INFINITY, f64::min);
        let tolerance = 0.005 + 0.01 * typical;
        for (k, &d) in steps.iter().enumerate() {
            if (d - typical).abs() <= tolerance {
                continue;
            }
            let (a, b) = (&slices[firsts[k]], &slices[firsts[k + 1]]);
            let ratio = d / typical;
            let problem = if ratio > 1.5 && (ratio - ratio.round()).abs() < 0.1 {
                format!(
                    "a missing slice: {:.3} mm between this slice and the next ({}) where the series steps {:.3} mm",
                    d,
                    file(b).display(),
                    typical
                )
            } else {
                format!(
                    "uneven slice spacing: {:.3} mm between this slice and the next ({}), {:.3} mm elsewhere",
                    d,
                    file(b).display(),
                    typical
                )
            };
            return Err(Error::at(file(a), problem));
        }
        let (p0, p1) = (slices[firsts[0]].position, slices[firsts[n - 1]].position);
        step_vector = std::array::from_fn(|a| (p1[a] - p0[a]) / (n - 1) as f64);
        // Every slice must lie on the line first + k * step (one stack, no in-plane jumps).
        for (k, &i) in firsts.iter().enumerate() {
            let p = slices[i].position;
            let off: f64 = (0..3)
                .map(|a| (p[a] - p0[a] - k as f64 * step_vector[a]).powi(2))
                .sum::<f64>()
                .sqrt();
            if off > tolerance.max(0.05) {
                return Err(Error::at(
                    file(&slices[i]),
                    format!(
                        "this slice lies {off:.3} mm away from the line through the series' first and last slices: not one stack"
                    ),
                ));
            }
        }
        slice_step = dot(step_vector, step_vector).sqrt();
    } else {
        // One slice: a unit step along the normal.
        step_vector = normal;
        slice_step = 1.0;
    }
    let [dr, dc] = first.pixel_spacing;
    let origin = slices[firsts[0]].position;
    let mut affine_lps = [[0.0; 4]; 4];
    for a in 0..3 {
        affine_lps[a][0] = first.row_dir[a] * dc;
        affine_lps[a][1] = first.col_dir[a] * dr;
        affine_lps[a][2] = step_vector[a];
        affine_lps[a][3] = origin[a];
    }
    affine_lps[3][3] = 1.0;
    let order = (0..volumes)
        .flat_map(|v| positions.iter().map(move |run| run[v]))
        .collect();
    Ok(StackGeometry {
        cols: first.cols,
        rows: first.rows,
        slices: n,
        volumes,
        pixel_spacing: first.pixel_spacing,
        slice_step,
        order,
        affine_lps,
    })
}

/// A brainseg-volume geometry for a source array of `shape` (i, j, k) with voxel-to-RAS `affine`:
/// a NIfTI header with sform and qform (both scanner-anatomical) as dcm2niix sets them.
pub fn nifti_geometry(shape: [usize; 3], affine: &[[f64; 4]; 4]) -> Geometry {
    let mut header = NiftiHeader {
        datatype: 16,
        bitpix: 32,
        scl_slope: 1.0,
        xyzt_units: 2 | 8, // mm, seconds
        qform_code: 1,
        sform_code: 1,
        magic: *b"n+1\0",
        endianness: Endianness::Little,
        ..NiftiHeader::default()
    };
    header.dim = [3, 1, 1, 1, 1, 1, 1, 1];
    let zoom: [f64; 3] = std::array::from_fn(|c| {
        (0..3)
            .map(|r| affine[r][c] * affine[r][c])
            .sum::<f64>()
            .sqrt()
    });
    for i in 0..3 {
        header.dim[i + 1] = shape[i].min(u16::MAX as usize) as u16;
        header.pixdim[i + 1] = zoom[i] as f32;
    }
    header.srow_x = affine[0].map(|v| v as f32);
    header.srow_y = affine[1].map(|v| v as f32);
    header.srow_z = affine[2].map(|v| v as f32);
    let (q, qfac) = quaternion(affine, zoom);
    header.pixdim[0] = qfac as f32;
    header.quatern_b = q[0] as f32;
    header.quatern_c = q[1] as f32;
    header.quatern_d = q[2] as f32;
    header.quatern_x = affine[0][3] as f32;
    header.quatern_y = affine[1][3] as f32;
    header.quatern_z = affine[2][3] as f32;
    let mut descrip = b"brainseg-dicom".to_vec();
    descrip.resize(80, 0);
    header.descrip = descrip;
    Geometry {
        orientation: Orientation::from_affine(affine),
        header,
        source_shape: shape,
    }
}

/// The NIfTI quaternion (b, c, d) and qfac of an affine's rotation (columns divided by `zoom`;
/// a left-handed frame gets qfac -1 and its third column negated). A shear is dropped, as in
/// any qform.
fn quaternion(affine: &[[f64; 4]; 4], zoom: [f64; 3]) -> ([f64; 3], f64) {
    let mut r = [[0.0; 3]; 3];
    for row in 0..3 {
        for c in 0..3 {
            r[row][c] = if zoom[c] > 0.0 {
                affine[row][c] / zoom[c]
            } else {
                f64::from(u8::from(row == c))
            };
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    if det < 0.0 {
        for row in &mut r {
            row[2] = -row[2];
        }
    }
    // Largest-diagonal method for a rotation matrix to a unit quaternion (a, b, c, d), a >= 0.
    let trace = r[0][0] + r[1][1] + r[2][2];
    let (a, b, c, d) = if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        (
            0.25 * s,
            (r[2][1] - r[1][2]) / s,
            (r[0][2] - r[2][0]) / s,
            (r[1][0] - r[0][1]) / s,
        )
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt() * 2.0;
        (
            (r[2][1] - r[1][2]) / s,
            0.25 * s,
            (r[0][1] + r[1][0]) / s,
            (r[0][2] + r[2][0]) / s,
        )
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).sqrt() * 2.0;
        (
            (r[0][2] - r[2][0]) / s,
            (r[0][1] + r[1][0]) / s,
            0.25 * s,
            (r[1][2] + r[2][1]) / s,
        )
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).sqrt() * 2.0;
        (
            (r[1][0] - r[0][1]) / s,
            (r[0][2] + r[2][0]) / s,
            (r[1][2] + r[2][1]) / s,
            0.25 * s,
        )
    };
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    ([b * sign, c * sign, d * sign], qfac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Tile;

    fn slice(position: [f64; 3], file: usize) -> Slice {
        Slice {
            file,
            frame: 0,
            tile: Tile::Whole,
            rows: 4,
            cols: 3,
            position,
            row_dir: [1.0, 0.0, 0.0],
            col_dir: [0.0, 1.0, 0.0],
            pixel_spacing: [0.5, 0.25],
            slope: 1.0,
            intercept: 0.0,
            time_key: (0, 0.0, file as i64, 0),
        }
    }

    fn files(n: usize) -> Vec<PathBuf> {
        (0..n).map(|i| PathBuf::from(format!("f{i}.dcm"))).collect()
    }

    #[test]
    fn axial_stack_sorted_by_position_not_file_order() {
        // Files given in the order z = 4, 0, 2: sorted along the normal (0, 0, 1).
        let s = [
            slice([10.0, 20.0, 4.0], 0),
            slice([10.0, 20.0, 0.0], 1),
            slice([10.0, 20.0, 2.0], 2),
        ];
        let g = stack(&s, &files(3)).unwrap();
        assert_eq!(g.order, vec![1, 2, 0]);
        assert_eq!((g.cols, g.rows, g.slices, g.volumes), (3, 4, 3, 1));
        assert_eq!(g.slice_step, 2.0);
        // Hand-worked: LPS columns (0.25,0,0), (0,0.5,0), (0,0,2), origin (10,20,0); RAS negates x and y.
        let want = [
            [-0.25, 0.0, 0.0, -10.0],
            [0.0, -0.5, 0.0, -20.0],
            [0.0, 0.0, 2.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        assert_eq!(g.affine_ras(), want);
    }

    #[test]
    fn four_d_volumes_in_time_order() {
        let mut s = Vec::new();
        for (f, (z, t)) in [(2.0, 1), (0.0, 1), (0.0, 0), (2.0, 0)].iter().enumerate() {
            let mut sl = slice([0.0, 0.0, *z], f);
            sl.time_key = (0, *t as f64, 0, 0);
            s.push(sl);
        }
        let g = stack(&s, &files(4)).unwrap();
        assert_eq!((g.slices, g.volumes), (2, 2));
        assert_eq!(g.order, vec![2, 3, 1, 0]);
    }

    #[test]
    fn missing_and_uneven_slices_are_refused() {
        let s: Vec<Slice> = [0.0, 2.0, 6.0, 8.0]
            .iter()
            .enumerate()
            .map(|(f, &z)| slice([0.0, 0.0, z], f))
            .collect();
        let e = stack(&s, &files(4)).unwrap_err().to_string();
        assert!(e.starts_with("f1.dcm: a missing slice: 4.000 mm"), "{e}");
        let s: Vec<Slice> = [0.0, 2.0, 5.0, 7.0]
            .iter()
            .enumerate()
            .map(|(f, &z)| slice([0.0, 0.0, z], f))
            .collect();
        let e = stack(&s, &files(4)).unwrap_err().to_string();
        assert!(e.starts_with("f1.dcm: uneven slice spacing"), "{e}");
        let mut s: Vec<Slice> = (0..3).map(|f| slice([0.0, 0.0, f as f64], f)).collect();
        s[1].rows = 8;
        let e = stack(&s, &files(3)).unwrap_err().to_string();
        assert!(e.starts_with("f1.dcm: image of 3x8 pixels"), "{e}");
    }

    #[test]
    fn quaternion_of_an_lps_like_affine() {
        // RAS affine of an LAS image (x flipped): det < 0, so qfac -1 and the rotation diag(-1, 1, -1)
        // after negating column 3, i.e. 180 degrees about y: (b, c, d) = (0, 1, 0).
        let a = [
            [-2.0, 0.0, 0.0, 1.0],
            [0.0, 2.0, 0.0, 2.0],
            [0.0, 0.0, 3.0, 3.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let (q, qfac) = quaternion(&a, [2.0, 2.0, 3.0]);
        assert_eq!(qfac, -1.0);
        assert!((q[0]).abs() < 1e-12 && (q[1].abs() - 1.0).abs() < 1e-12 && q[2].abs() < 1e-12);
        let g = nifti_geometry([4, 5, 6], &a);
        assert_eq!(g.source_affine(), a);
        assert_eq!(g.spacing(), [2.0, 2.0, 3.0]);
    }
}
