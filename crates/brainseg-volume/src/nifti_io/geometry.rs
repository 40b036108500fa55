//! Where a volume lies in the world: the header's voxel-to-world affine and [`Geometry`].
#![allow(clippy::needless_range_loop)] // 3x3 and 4x4 matrix arithmetic reads best indexed.
use super::header::DataType;
use crate::{Error, Orientation, Result};
use nifti::{Endianness, NiftiHeader};
use std::path::Path;

/// Where a volume lies in the world: the source header and how the canonical array maps back onto it.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// The source file's header (qform, sform, pixdim, units), reused when writing outputs.
    pub header: nifti::NiftiHeader,
    pub orientation: Orientation,
    /// Spatial shape of the source file, in source axis order.
    pub source_shape: [usize; 3],
}

impl Geometry {
    /// A plain geometry for arrays made in code: identity orientation, given spacing (mm), RAS affine.
    pub fn synthetic(shape: [usize; 3], spacing: [f32; 3]) -> Geometry {
        let mut header = NiftiHeader {
            datatype: DataType::Float32.code(),
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
        for i in 0..3 {
            header.dim[i + 1] = shape[i].min(i16::MAX as usize) as u16;
            header.pixdim[i + 1] = spacing[i];
        }
        header.pixdim[0] = 1.0;
        header.srow_x = [spacing[0], 0.0, 0.0, 0.0];
        header.srow_y = [0.0, spacing[1], 0.0, 0.0];
        header.srow_z = [0.0, 0.0, spacing[2], 0.0];
        Geometry {
            header,
            orientation: Orientation::IDENTITY,
            source_shape: shape,
        }
    }

    /// Voxel spacing in mm along the canonical axes.
    pub fn spacing(&self) -> [f32; 3] {
        let a = self.source_affine();
        let column_norm = |c: usize| (0..3).map(|r| a[r][c] * a[r][c]).sum::<f64>().sqrt() as f32;
        self.orientation.perm.map(column_norm)
    }

    /// Shape of canonical arrays.
    pub fn canonical_shape(&self) -> [usize; 3] {
        self.orientation.perm.map(|s| self.source_shape[s])
    }

    /// The source voxel-to-world affine (a usable sform, else the qform, else pixdim scaling; see
    /// [`checked_affine`]).
    pub fn source_affine(&self) -> [[f64; 4]; 4] {
        header_affine(&self.header)
    }

    /// The voxel-to-world affine of canonical arrays: `world = canonical_affine * (i, j, k, 1)`.
    pub fn canonical_affine(&self) -> [[f64; 4]; 4] {
        // canonical index -> source index is a signed permutation plus an offset for flipped axes.
        let mut to_source = [[0.0f64; 4]; 4];
        to_source[3][3] = 1.0;
        for (i, (&s, &flip)) in self
            .orientation
            .perm
            .iter()
            .zip(&self.orientation.flip)
            .enumerate()
        {
            if flip {
                to_source[s][i] = -1.0;
                to_source[s][3] = self.source_shape[s] as f64 - 1.0;
            } else {
                to_source[s][i] = 1.0;
            }
        }
        let a = self.source_affine();
        let mut out = [[0.0f64; 4]; 4];
        for r in 0..4 {
            for c in 0..4 {
                out[r][c] = (0..4).map(|k| a[r][k] * to_source[k][c]).sum();
            }
        }
        out
    }

    /// The largest distance (mm) between the world positions this geometry and `other` give the
    /// same source voxel index, over this grid (the corners: affines are linear).
    pub fn max_world_distance(&self, other: &Geometry) -> f64 {
        let (a, b) = (self.source_affine(), other.source_affine());
        let [nx, ny, nz] = self.source_shape.map(|n| n.saturating_sub(1) as f64);
        let mut worst = 0.0f64;
        for corner in 0..8 {
            let v = [
                if corner & 1 != 0 { nx } else { 0.0 },
                if corner & 2 != 0 { ny } else { 0.0 },
                if corner & 4 != 0 { nz } else { 0.0 },
                1.0,
            ];
            let d2: f64 = (0..3)
                .map(|r| {
                    let d: f64 = (0..4).map(|c| (a[r][c] - b[r][c]) * v[c]).sum();
                    d * d
                })
                .sum();
            // A NaN distance must not pass as small.
            worst = if d2.is_nan() {
                f64::INFINITY
            } else {
                worst.max(d2.sqrt())
            };
        }
        worst
    }

    /// Three-letter orientation code of the source, e.g. "LPS".
    pub fn source_code(&self) -> String {
        Orientation::source_code(&self.source_affine())
    }
}

/// The voxel-to-world affine a header defines, or why it defines none (one line, naming the
/// file): see [`checked_affine`] for the rules.
pub fn affine_from_header(path: &Path, header: &NiftiHeader) -> Result<[[f64; 4]; 4]> {
    checked_affine(header)
        .map_err(|problem| Error::at(path, format!("impossible geometry: {problem}")))
}

/// The affine of [`checked_affine`]; for a header it refuses (only headers made in code reach
/// here, files are checked on reading), a diagonal of the spacings (1 where unusable).
pub(super) fn header_affine(h: &NiftiHeader) -> [[f64; 4]; 4] {
    checked_affine(h).unwrap_or_else(|_| {
        let mut a = diagonal([1.0; 3]);
        for i in 0..3 {
            let z = h.pixdim[i + 1].abs() as f64;
            if z.is_finite() && z > 0.0 {
                a[i][i] = z;
            }
        }
        a
    })
}

/// The voxel-to-world affine a header defines (NIfTI-1 methods 3, 2 and 1, in that order), read
/// as the NIfTI reference library (nifti_quatern_to_mat44) and nibabel read it, or why there is none:
/// - pixdim[1..=3] must be finite and non-zero always, and positive unless the sform is used
///   (nibabel refuses negative spacings in a qform; the sform carries its own spacings);
/// - the sform (sform_code > 0) is used only when its 12 numbers are finite and its 3x3 part is
///   not singular; otherwise the qform is used when qform_code > 0, else the header is refused;
/// - the qform's (b, c, d) and offsets must be finite; when b² + c² + d² is (nearly) 1 or more,
///   (b, c, d) is normalised and a = 0, as the reference library does; qfac is -1 when pixdim[0] < 0,
///   else 1 (so a 0 or NaN pixdim[0] means 1, as in the reference library);
/// - without either code, the affine is the diagonal of the spacings.
pub(super) fn checked_affine(h: &NiftiHeader) -> std::result::Result<[[f64; 4]; 4], String> {
    let spacing = [1, 2, 3].map(|k| h.pixdim[k] as f64);
    for (k, &z) in spacing.iter().enumerate() {
        if !z.is_finite() || z == 0.0 {
            return Err(format!(
                "pixdim[{}] = {z}: voxel spacing must be a finite number above 0",
                k + 1
            ));
        }
    }
    let mut unusable_sform = None;
    if h.sform_code > 0 {
        let rows = [h.srow_x, h.srow_y, h.srow_z].map(|r| r.map(|v| v as f64));
        let mut a = diagonal([1.0; 3]);
        a[..3].copy_from_slice(&rows);
        match singular(&a) {
            None => return Ok(a),
            Some(why) => unusable_sform = Some(why),
        }
    }
    if h.qform_code > 0 {
        return qform_affine(h, spacing);
    }
    if let Some(why) = unusable_sform {
        return Err(format!(
            "the sform (sform_code {}) {why} and there is no qform (qform_code {})",
            h.sform_code, h.qform_code
        ));
    }
    positive_spacing(spacing)?;
    Ok(diagonal(spacing))
}

/// Method 2: rotation from the quaternion, spacings (z times qfac), offsets.
fn qform_affine(h: &NiftiHeader, spacing: [f64; 3]) -> std::result::Result<[[f64; 4]; 4], String> {
    let (mut b, mut c, mut d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
    let offset = [h.quatern_x, h.quatern_y, h.quatern_z].map(|v| v as f64);
    if ![b, c, d].iter().chain(&offset).all(|v| v.is_finite()) {
        return Err(format!(
            "the qform (quaternion b, c, d = {b}, {c}, {d}; offsets {}, {}, {}) must hold finite numbers",
            offset[0], offset[1], offset[2]
        ));
    }
    positive_spacing(spacing)?;
    let norm2 = b * b + c * c + d * d;
    let a0 = if 1.0 - norm2 < 1e-7 {
        // Not a unit quaternion with a >= 0: the reference library normalises (b, c, d), a = 0.
        let n = norm2.sqrt();
        (b, c, d) = (b / n, c / n, d / n);
        0.0
    } else {
        (1.0 - norm2).sqrt()
    };
    let r = [
        [
            a0 * a0 + b * b - c * c - d * d,
            2.0 * (b * c - a0 * d),
            2.0 * (b * d + a0 * c),
        ],
        [
            2.0 * (b * c + a0 * d),
            a0 * a0 + c * c - b * b - d * d,
            2.0 * (c * d - a0 * b),
        ],
        [
            2.0 * (b * d - a0 * c),
            2.0 * (c * d + a0 * b),
            a0 * a0 + d * d - c * c - b * b,
        ],
    ];
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let zoom = [spacing[0], spacing[1], qfac * spacing[2]];
    let mut a = diagonal([1.0; 3]);
    for row in 0..3 {
        for col in 0..3 {
            a[row][col] = r[row][col] * zoom[col];
        }
        a[row][3] = offset[row];
    }
    Ok(a)
}

fn positive_spacing(spacing: [f64; 3]) -> std::result::Result<(), String> {
    match spacing.iter().position(|&z| z < 0.0) {
        Some(k) => Err(format!(
            "pixdim[{}] = {} is negative: spacings must be positive without a usable sform (as nibabel requires)",
            k + 1,
            spacing[k]
        )),
        None => Ok(()),
    }
}

fn diagonal(d: [f64; 3]) -> [[f64; 4]; 4] {
    let mut a = [[0.0; 4]; 4];
    for i in 0..3 {
        a[i][i] = d[i];
    }
    a[3][3] = 1.0;
    a
}

/// Why an affine cannot map voxels to the world (non-finite, or a singular 3x3 part), if it cannot.
fn singular(a: &[[f64; 4]; 4]) -> Option<String> {
    if !a[..3].iter().flatten().all(|v| v.is_finite()) {
        return Some("holds a non-finite number".into());
    }
    let det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    let norms: f64 = (0..3)
        .map(|c| (0..3).map(|r| a[r][c] * a[r][c]).sum::<f64>().sqrt())
        .product();
    // Relative to the column lengths, so that sub-millimetre voxels are not called singular.
    if norms == 0.0 || det.abs() <= 1e-6 * norms {
        Some(format!("is singular (determinant {det})"))
    } else {
        None
    }
}

/// How far (mm) two files' voxel grids may lie apart and still count as co-registered.
pub const COREGISTRATION_TOLERANCE_MM: f64 = 1e-3;

/// Check that `path` (its geometry `g`) lies on the same voxel grid as `reference_path`: the same
/// source shape, and every voxel at the same world position within
/// [`COREGISTRATION_TOLERANCE_MM`] (source affines compared, before reorientation). The error
/// names both files.
pub fn check_same_grid(
    path: &Path,
    g: &Geometry,
    reference_path: &Path,
    reference: &Geometry,
) -> Result<()> {
    if g.source_shape != reference.source_shape {
        return Err(Error::at(
            path,
            format!(
                "its grid {} differs from the grid {} of {}",
                super::shape_text(&g.source_shape),
                super::shape_text(&reference.source_shape),
                reference_path.display()
            ),
        ));
    }
    let distance = g.max_world_distance(reference);
    if distance > COREGISTRATION_TOLERANCE_MM {
        return Err(Error::at(
            path,
            format!(
                "not co-registered with {}: the same voxel lies up to {distance:.3} mm apart in the two files' affines (at most {COREGISTRATION_TOLERANCE_MM} mm allowed)",
                reference_path.display()
            ),
        ));
    }
    Ok(())
}
