//! Bringing voxel arrays to the closest canonical (RAS+) orientation and back, as nibabel's
//! `as_closest_canonical` does: only axis permutations and flips, never resampling.
#![allow(clippy::needless_range_loop)] // 3x3 and 4x4 matrix arithmetic reads best indexed.
use ndarray::{Array3, Array4, ArrayView, Axis, Dimension};

/// How the canonical array relates to the source array: canonical axis `i` is source axis
/// `perm[i]`, reversed when `flip[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Orientation {
    pub perm: [usize; 3],
    pub flip: [bool; 3],
}

/// World axis letters for a positive / negative direction (NIfTI world is RAS+).
const AXIS_LETTERS: [(char, char); 3] = [('R', 'L'), ('A', 'P'), ('S', 'I')];

impl Orientation {
    pub const IDENTITY: Orientation = Orientation {
        perm: [0, 1, 2],
        flip: [false; 3],
    };

    /// The closest canonical orientation of a 4x4 voxel-to-world affine (RAS+ world, as NIfTI).
    pub fn from_affine(affine: &[[f64; 4]; 4]) -> Orientation {
        let mut perm = [usize::MAX; 3];
        let mut flip = [false; 3];
        for (source_axis, (world_axis, negative)) in
            source_directions(affine).into_iter().enumerate()
        {
            if let Some(world_axis) = world_axis {
                perm[world_axis] = source_axis;
                flip[world_axis] = negative;
            }
        }
        // A degenerate affine (a zero column) leaves axes unassigned: keep them in source order.
        let unused: Vec<usize> = (0..3).filter(|s| !perm.contains(s)).collect();
        let mut unused = unused.into_iter();
        for p in perm.iter_mut().filter(|p| **p == usize::MAX) {
            *p = unused.next().unwrap_or(0);
        }
        Orientation { perm, flip }
    }

    /// Three-letter orientation code of the source (e.g. "RAS", "LPS").
    pub fn source_code(affine: &[[f64; 4]; 4]) -> String {
        source_directions(affine)
            .into_iter()
            .map(|(world_axis, negative)| match world_axis {
                Some(w) if negative => AXIS_LETTERS[w].1,
                Some(w) => AXIS_LETTERS[w].0,
                None => '?',
            })
            .collect()
    }

    /// The inverse mapping: source axis `i` is canonical axis `inverse_perm()[i]`.
    fn inverse_perm(&self) -> [usize; 3] {
        let mut inverse = [0; 3];
        for (canonical_axis, &source_axis) in self.perm.iter().enumerate() {
            inverse[source_axis] = canonical_axis;
        }
        inverse
    }

    pub fn to_canonical3<T: Clone>(&self, a: &Array3<T>) -> Array3<T> {
        let mut view = a.view().permuted_axes(self.perm);
        flip_axes(&mut view, self.flip, 0);
        view.as_standard_layout().into_owned()
    }

    pub fn from_canonical3<T: Clone>(&self, a: &Array3<T>) -> Array3<T> {
        let mut view = a.view();
        flip_axes(&mut view, self.flip, 0);
        view.permuted_axes(self.inverse_perm())
            .as_standard_layout()
            .into_owned()
    }

    /// Same, for channel-first `(C, X, Y, Z)` arrays.
    pub fn to_canonical4<T: Clone>(&self, a: &Array4<T>) -> Array4<T> {
        let p = self.perm;
        let mut view = a.view().permuted_axes([0, p[0] + 1, p[1] + 1, p[2] + 1]);
        flip_axes(&mut view, self.flip, 1);
        view.as_standard_layout().into_owned()
    }

    pub fn from_canonical4<T: Clone>(&self, a: &Array4<T>) -> Array4<T> {
        let mut view = a.view();
        flip_axes(&mut view, self.flip, 1);
        let q = self.inverse_perm();
        view.permuted_axes([0, q[0] + 1, q[1] + 1, q[2] + 1])
            .as_standard_layout()
            .into_owned()
    }

    /// Where source voxels land in the canonical array, for writing it directly: per source axis,
    /// the step in a standard-layout canonical `(X, Y, Z)` array (negative where flipped), and the
    /// canonical offset of source voxel (0, 0, 0). Source voxel `(i, j, k)` is canonical element
    /// `offset + i * steps[0] + j * steps[1] + k * steps[2]`.
    pub fn canonical_strides(&self, source_shape: [usize; 3]) -> ([isize; 3], usize) {
        let shape = self.perm.map(|s| source_shape[s]);
        let standard = [shape[1] * shape[2], shape[2], 1];
        let mut steps = [0isize; 3];
        let mut offset = 0;
        for axis in 0..3 {
            let step = standard[axis] as isize;
            if self.flip[axis] {
                steps[self.perm[axis]] = -step;
                offset += (shape[axis] - 1) * standard[axis];
            } else {
                steps[self.perm[axis]] = step;
            }
        }
        (steps, offset)
    }

    /// Source voxel index of a canonical voxel index, for a source of spatial shape `source_shape`.
    pub fn source_index(&self, canonical: [usize; 3], source_shape: [usize; 3]) -> [usize; 3] {
        let mut source = [0; 3];
        for i in 0..3 {
            let s = self.perm[i];
            source[s] = if self.flip[i] {
                source_shape[s] - 1 - canonical[i]
            } else {
                canonical[i]
            };
        }
        source
    }
}

/// Reverse the spatial axes marked in `flip`; spatial axis `i` is view axis `i + offset`.
fn flip_axes<T, D: Dimension>(view: &mut ArrayView<'_, T, D>, flip: [bool; 3], offset: usize) {
    for (i, &f) in flip.iter().enumerate() {
        if f {
            view.invert_axis(Axis(i + offset));
        }
    }
}

/// For each source voxel axis: the world axis it runs closest to and whether it runs against it
/// (nibabel's `io_orientation`). `None` for a zero column.
fn source_directions(affine: &[[f64; 4]; 4]) -> [(Option<usize>, bool); 3] {
    // Columns of the linear part with the voxel sizes divided out.
    let mut r = [[0.0f64; 3]; 3];
    for col in 0..3 {
        let norm = (0..3)
            .map(|row| affine[row][col].powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = if norm > 0.0 && norm.is_finite() {
            norm
        } else {
            1.0
        };
        for row in 0..3 {
            r[row][col] = affine[row][col] / norm;
        }
    }
    // nibabel uses the closest orthogonal matrix (polar factor) so shears do not bias the choice.
    let r = closest_orthogonal(r).unwrap_or(r);
    let mut remaining = r;
    let mut result = [(None, false); 3];
    // Assign the most decisive source axes first; each world axis is taken once.
    let mut order: Vec<usize> = (0..3).collect();
    let column_max = |c: usize| (0..3).map(|row| r[row][c].abs()).fold(0.0, f64::max);
    order.sort_by(|&a, &b| column_max(b).total_cmp(&column_max(a)));
    for source_axis in order {
        let (world_axis, value) = (0..3)
            .map(|row| (row, remaining[row][source_axis]))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .expect("three rows");
        if value.abs() < 1e-8 {
            continue;
        }
        result[source_axis] = (Some(world_axis), value < 0.0);
        remaining[world_axis] = [0.0; 3];
    }
    result
}

/// Polar decomposition by Newton iteration `R <- (R + R^-T) / 2`; None for a singular matrix.
fn closest_orthogonal(mut r: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    for _ in 0..50 {
        let inv_t = inverse_transpose(&r)?;
        let mut next = [[0.0; 3]; 3];
        let mut change = 0.0f64;
        for i in 0..3 {
            for j in 0..3 {
                next[i][j] = 0.5 * (r[i][j] + inv_t[i][j]);
                change = change.max((next[i][j] - r[i][j]).abs());
            }
        }
        r = next;
        if change < 1e-12 {
            break;
        }
    }
    Some(r)
}

fn inverse_transpose(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    // The cofactor matrix divided by the determinant is the inverse transpose.
    let mut cof = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let (i1, i2) = ((i + 1) % 3, (i + 2) % 3);
            let (j1, j2) = ((j + 1) % 3, (j + 2) % 3);
            cof[i][j] = m[i1][j1] * m[i2][j2] - m[i1][j2] * m[i2][j1];
        }
    }
    let det: f64 = (0..3).map(|j| m[0][j] * cof[0][j]).sum();
    if det.abs() < 1e-12 || !det.is_finite() {
        return None;
    }
    Some(cof.map(|row| row.map(|c| c / det)))
}

/// Every signed permutation of the axes: the 48 orientations, for tests.
#[cfg(test)]
pub(crate) fn all_orientations() -> Vec<Orientation> {
    let perms = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let flips = (0..8).map(|f| [f & 1 != 0, f & 2 != 0, f & 4 != 0]);
    perms
        .into_iter()
        .flat_map(|perm| flips.clone().map(move |flip| Orientation { perm, flip }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn affine(linear: [[f64; 3]; 3]) -> [[f64; 4]; 4] {
        let mut a = [[0.0; 4]; 4];
        for i in 0..3 {
            a[i][..3].copy_from_slice(&linear[i]);
        }
        a[3][3] = 1.0;
        a
    }

    #[test]
    fn canonical_strides_place_every_voxel_where_to_canonical_puts_it() {
        // Every permutation and flip: the voxel numbered n in a 2x3x4 source lands at the index
        // the strides give in the array to_canonical3 builds.
        let source = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f32);
        let orientations = all_orientations();
        assert_eq!(orientations.len(), 48);
        for o in orientations {
            let canonical = o.to_canonical3(&source);
            let flat = canonical.as_slice().expect("standard layout");
            let (steps, offset) = o.canonical_strides([2, 3, 4]);
            for ((i, j, k), &v) in source.indexed_iter() {
                let at = offset as isize
                    + i as isize * steps[0]
                    + j as isize * steps[1]
                    + k as isize * steps[2];
                assert_eq!(flat[at as usize], v, "{o:?} at ({i}, {j}, {k})");
            }
        }
    }

    #[test]
    fn brats_affine_is_lps_with_first_two_axes_flipped() {
        let a = affine([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]);
        assert_eq!(Orientation::source_code(&a), "LPS");
        assert_eq!(
            Orientation::from_affine(&a),
            Orientation {
                perm: [0, 1, 2],
                flip: [true, true, false]
            }
        );
    }

    #[test]
    fn permuted_oblique_affine() {
        // Source axis 0 runs mostly inferior, axis 1 mostly right, axis 2 mostly posterior (with a small tilt).
        let a = affine([[0.1, 2.0, 0.0], [0.0, 0.1, -3.0], [-1.0, 0.0, 0.2]]);
        assert_eq!(Orientation::source_code(&a), "IRP");
        let o = Orientation::from_affine(&a);
        assert_eq!(
            o,
            Orientation {
                perm: [1, 2, 0],
                flip: [false, true, true]
            }
        );
    }

    #[test]
    fn round_trip_and_index_mapping() {
        let o = Orientation {
            perm: [2, 0, 1],
            flip: [true, false, true],
        };
        let source = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| i * 100 + j * 10 + k);
        let canonical = o.to_canonical3(&source);
        assert_eq!(canonical.shape(), &[4, 2, 3]);
        for ((a, b, c), &v) in canonical.indexed_iter() {
            let s = o.source_index([a, b, c], [2, 3, 4]);
            assert_eq!(v, source[s]);
        }
        // Canonical [0,0,0] is source (x=0, y=last, z=last) for this orientation.
        assert_eq!(canonical[[0, 0, 0]], 23);
        assert_eq!(o.from_canonical3(&canonical), source);
        let four = source.clone().insert_axis(Axis(0));
        let four =
            ndarray::concatenate(Axis(0), &[four.view(), four.mapv(|v| v + 1000).view()]).unwrap();
        let c4 = o.to_canonical4(&four);
        assert_eq!(c4.index_axis(Axis(0), 1), canonical.mapv(|v| v + 1000));
        assert_eq!(o.from_canonical4(&c4), four);
    }
}
