//! Resampling an image onto another voxel grid (e.g. every modality onto the T1Gd grid) by
//! trilinear interpolation through world coordinates.
#![allow(clippy::needless_range_loop)] // 4x4 matrix arithmetic reads best indexed.
use brainseg_volume::{Geometry, Image};
use ndarray::Array4;

/// A voxel grid: the shape of canonical arrays and their voxel-to-world (RAS, mm) affine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub shape: [usize; 3],
    pub affine: [[f64; 4]; 4],
}

impl Grid {
    /// The canonical grid of a geometry.
    pub fn of(geometry: &Geometry) -> Grid {
        Grid {
            shape: geometry.canonical_shape(),
            affine: geometry.canonical_affine(),
        }
    }
}

/// `image` (canonical `(C, X, Y, Z)`) resampled onto `grid`: each target voxel's world position
/// is mapped into the source's voxel coordinates and interpolated trilinearly from the 8
/// neighbouring source voxels. Positions outside the source (beyond its voxel centres by more
/// than 1e-4 voxel) are 0. Returns `None` when the source affine cannot be inverted.
pub fn resample_to(image: &Image, grid: &Grid) -> Option<Array4<f32>> {
    let source = Grid::of(&image.geometry);
    let to_source = multiply(&invert(&source.affine)?, &grid.affine);
    let channels = image.data.shape()[0];
    let [sx, sy, sz] = source.shape;
    let [tx, ty, tz] = grid.shape;
    let mut out = Array4::<f32>::zeros((channels, tx, ty, tz));
    let data = &image.data;
    const EDGE: f64 = 1e-4;
    for i in 0..tx {
        for j in 0..ty {
            for k in 0..tz {
                let p = [i as f64, j as f64, k as f64];
                let s: [f64; 3] = std::array::from_fn(|r| {
                    (0..3).map(|c| to_source[r][c] * p[c]).sum::<f64>() + to_source[r][3]
                });
                let n = [sx, sy, sz];
                if (0..3).any(|a| s[a] < -EDGE || s[a] > (n[a] - 1) as f64 + EDGE) {
                    continue;
                }
                // Lower corner and weights; a coordinate on the last voxel uses it with weight 1.
                let mut lo = [0usize; 3];
                let mut w = [0.0f64; 3];
                for a in 0..3 {
                    let c = s[a].clamp(0.0, (n[a] - 1) as f64);
                    let f = (c.floor() as usize).min(n[a].saturating_sub(2));
                    lo[a] = f;
                    w[a] = if n[a] == 1 { 0.0 } else { c - f as f64 };
                }
                for ch in 0..channels {
                    let mut v = 0.0f64;
                    for corner in 0..8 {
                        let d = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
                        let mut weight = 1.0;
                        let mut idx = [0usize; 3];
                        for a in 0..3 {
                            weight *= if d[a] == 1 { w[a] } else { 1.0 - w[a] };
                            idx[a] = (lo[a] + d[a]).min(n[a] - 1);
                        }
                        if weight != 0.0 {
                            v += weight * data[[ch, idx[0], idx[1], idx[2]]] as f64;
                        }
                    }
                    out[[ch, i, j, k]] = v as f32;
                }
            }
        }
    }
    Some(out)
}

fn multiply(a: &[[f64; 4]; 4], b: &[[f64; 4]; 4]) -> [[f64; 4]; 4] {
    std::array::from_fn(|r| std::array::from_fn(|c| (0..4).map(|k| a[r][k] * b[k][c]).sum()))
}

/// Inverse of an affine 4x4 (last row 0 0 0 1).
fn invert(a: &[[f64; 4]; 4]) -> Option<[[f64; 4]; 4]> {
    let m = |r: usize, c: usize| a[r][c];
    let det = m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1))
        - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
        + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0));
    if det.abs() < 1e-12 || !det.is_finite() {
        return None;
    }
    let mut inv = [[0.0; 4]; 4];
    for r in 0..3 {
        for c in 0..3 {
            // Cofactor of (c, r) over det.
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            inv[r][c] = (m(r1, c1) * m(r2, c2) - m(r1, c2) * m(r2, c1)) / det;
        }
    }
    for r in 0..3 {
        inv[r][3] = -(0..3).map(|c| inv[r][c] * a[c][3]).sum::<f64>();
    }
    inv[3][3] = 1.0;
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::nifti_geometry;

    /// World position of a canonical voxel.
    fn world(a: &[[f64; 4]; 4], p: [f64; 3]) -> [f64; 3] {
        std::array::from_fn(|r| (0..3).map(|c| a[r][c] * p[c]).sum::<f64>() + a[r][3])
    }

    #[test]
    fn inverse_undoes_an_oblique_affine() {
        let a = [
            [0.9, -0.1, 0.2, 10.0],
            [0.1, 1.8, 0.0, -5.0],
            [0.0, 0.3, 2.5, 7.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let i = multiply(&invert(&a).unwrap(), &a);
        for r in 0..4 {
            for c in 0..4 {
                assert!((i[r][c] - f64::from(u8::from(r == c))).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn shifted_grid_reproduces_a_linear_field() {
        // Source: an LPS-stored (x, y flipped) 6x5x4 grid of 2x1x3 mm voxels. Values are a linear
        // function of world position, which trilinear interpolation reproduces exactly.
        let affine = [
            [-2.0, 0.0, 0.0, 20.0],
            [0.0, -1.0, 0.0, 10.0],
            [0.0, 0.0, 3.0, -6.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let geometry = nifti_geometry([6, 5, 4], &affine);
        let ca = geometry.canonical_affine();
        let field = |w: [f64; 3]| 3.0 * w[0] - 2.0 * w[1] + 0.5 * w[2] + 1.0;
        let [x, y, z] = geometry.canonical_shape();
        let data = Array4::from_shape_fn((1, x, y, z), |(_, i, j, k)| {
            field(world(&ca, [i as f64, j as f64, k as f64])) as f32
        });
        let image = Image {
            data,
            geometry,
            source_dtype: "float32".into(),
        };
        // Target: 1 mm isotropic RAS grid shifted by (0.5, 0.25, 1.0) mm from the source's corner.
        let corner = world(&ca, [0.0, 0.0, 0.0]);
        let grid = Grid {
            shape: [12, 6, 12],
            affine: [
                [1.0, 0.0, 0.0, corner[0] + 0.5],
                [0.0, 1.0, 0.0, corner[1] + 0.25],
                [0.0, 0.0, 1.0, corner[2] + 1.0],
                [0.0, 0.0, 0.0, 1.0],
            ],
        };
        let out = resample_to(&image, &grid).unwrap();
        let (lo, hi) = (
            corner,
            world(&ca, [(x - 1) as f64, (y - 1) as f64, (z - 1) as f64]),
        );
        let mut inside = 0;
        for ((_, i, j, k), &v) in out.indexed_iter() {
            let w = world(&grid.affine, [i as f64, j as f64, k as f64]);
            if (0..3).all(|a| w[a] >= lo[a] - 1e-9 && w[a] <= hi[a] + 1e-9) {
                inside += 1;
                assert!(
                    (v as f64 - field(w)).abs() < 1e-3,
                    "{v} vs {} at {w:?}",
                    field(w)
                );
            } else {
                assert_eq!(v, 0.0, "outside the source at {w:?}");
            }
        }
        // x: 0.5..10.5 of 0..10 -> 10 positions; y: 0.25..4.25 of 0..4 -> 4; z: 1..9 of 0..9 -> 9.
        assert_eq!(inside, 10 * 4 * 9);
    }
}
