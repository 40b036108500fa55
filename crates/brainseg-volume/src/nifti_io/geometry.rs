//! Where a volume lies in the world: the header's voxel-to-world affine and [`Geometry`].
#![allow(clippy::needless_range_loop)] // 3x3 and 4x4 matrix arithmetic reads best indexed.
use super::header::DataType;
use crate::Orientation;
use nifti::{Endianness, NiftiHeader};

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

    /// The source voxel-to-world affine (sform if set, else qform, else pixdim scaling).
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

    /// Three-letter orientation code of the source, e.g. "LPS".
    pub fn source_code(&self) -> String {
        Orientation::source_code(&self.source_affine())
    }
}

/// The voxel-to-world affine a header defines (NIfTI-1 methods 3, 2 and 1, in that order).
pub(super) fn header_affine(h: &NiftiHeader) -> [[f64; 4]; 4] {
    let mut a = [[0.0f64; 4]; 4];
    a[3][3] = 1.0;
    if h.sform_code > 0 {
        for (row, srow) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
            a[row] = srow.map(|v| v as f64);
        }
    } else if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let a0 = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
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
        let zoom = [
            h.pixdim[1] as f64,
            h.pixdim[2] as f64,
            qfac * h.pixdim[3] as f64,
        ];
        for row in 0..3 {
            for col in 0..3 {
                a[row][col] = r[row][col] * zoom[col];
            }
        }
        a[0][3] = h.quatern_x as f64;
        a[1][3] = h.quatern_y as f64;
        a[2][3] = h.quatern_z as f64;
    } else {
        for i in 0..3 {
            let z = h.pixdim[i + 1].abs() as f64;
            a[i][i] = if z > 0.0 { z } else { 1.0 };
        }
    }
    a
}
