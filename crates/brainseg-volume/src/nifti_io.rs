//! Reading and writing NIfTI-1 (`.nii`, `.nii.gz`) with the geometry kept.
use crate::{Orientation, Result};
use ndarray::{Array3, Array4};
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
    pub fn synthetic(_shape: [usize; 3], _spacing: [f32; 3]) -> Geometry { todo!() }
    /// Voxel spacing in mm along the canonical axes.
    pub fn spacing(&self) -> [f32; 3] { todo!() }
    /// Shape of canonical arrays.
    pub fn canonical_shape(&self) -> [usize; 3] { todo!() }
    /// The source voxel-to-world affine (sform if set, else qform, else pixdim scaling).
    pub fn source_affine(&self) -> [[f64; 4]; 4] { todo!() }
    /// Three-letter orientation code of the source, e.g. "LPS".
    pub fn source_code(&self) -> String { todo!() }
}

/// A multi-channel image in canonical orientation, `(C, X, Y, Z)`.
#[derive(Debug, Clone)]
pub struct Image {
    pub data: Array4<f32>,
    pub geometry: Geometry,
    /// Datatype name of the source file (e.g. "int16"), for `brainseg info`.
    pub source_dtype: String,
}

/// Read a 3-D or 4-D NIfTI file (uint8, int16, int32, float32, float64; scl_slope/scl_inter applied)
/// into canonical `(C, X, Y, Z)` f32; a 3-D file gives C = 1. NaN/Inf voxels are an error.
pub fn read_image(_path: &Path) -> Result<Image> { todo!() }

/// Read a 3-D integer label file in canonical orientation, values as stored (no renumbering).
pub fn read_label(_path: &Path) -> Result<(Array3<u8>, Geometry)> { todo!() }

/// Write a canonical uint8 label map back in the source geometry and orientation (temp file + rename).
pub fn write_label(_path: &Path, _labels: &Array3<u8>, _geometry: &Geometry) -> Result<()> { todo!() }

/// Write canonical `(C, X, Y, Z)` f32 maps (e.g. probabilities) as a 4-D NIfTI in the source geometry.
pub fn write_probabilities(_path: &Path, _maps: &Array4<f32>, _geometry: &Geometry) -> Result<()> { todo!() }
