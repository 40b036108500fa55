//! A case: four co-registered modalities and an optional label map in MSD numbering.
use crate::Geometry;
use ndarray::{Array3, Array4};
use std::path::PathBuf;

pub use brainseg_core::{LabelNumbering, MODALITIES};

#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    /// `(4, X, Y, Z)` in canonical orientation, channel order [`MODALITIES`].
    pub image: Array4<f32>,
    /// MSD numbering 0..=3, canonical orientation.
    pub label: Option<Array3<u8>>,
    pub geometry: Geometry,
    /// Files the case was read from (for messages).
    pub sources: Vec<PathBuf>,
}
