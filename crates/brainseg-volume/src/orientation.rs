//! Bringing voxel arrays to the closest canonical (RAS+) orientation and back, as nibabel's
//! `as_closest_canonical` does: only axis permutations and flips, never resampling.
use ndarray::{Array3, Array4};

/// How the canonical array relates to the source array: canonical axis `i` is source axis
/// `perm[i]`, reversed when `flip[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Orientation {
    pub perm: [usize; 3],
    pub flip: [bool; 3],
}

impl Orientation {
    pub const IDENTITY: Orientation = Orientation { perm: [0, 1, 2], flip: [false; 3] };

    /// The closest canonical orientation of a 4x4 voxel-to-world affine (RAS+ world, as NIfTI).
    pub fn from_affine(_affine: &[[f64; 4]; 4]) -> Orientation { todo!() }
    /// Three-letter orientation code of the source (e.g. "RAS", "LPS").
    pub fn source_code(_affine: &[[f64; 4]; 4]) -> String { todo!() }
    pub fn to_canonical3<T: Clone>(&self, _a: &Array3<T>) -> Array3<T> { todo!() }
    pub fn from_canonical3<T: Clone>(&self, _a: &Array3<T>) -> Array3<T> { todo!() }
    /// Same, for channel-first `(C, X, Y, Z)` arrays.
    pub fn to_canonical4<T: Clone>(&self, _a: &Array4<T>) -> Array4<T> { todo!() }
    pub fn from_canonical4<T: Clone>(&self, _a: &Array4<T>) -> Array4<T> { todo!() }
}
