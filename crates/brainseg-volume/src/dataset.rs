//! Dataset layouts: Medical Segmentation Decathlon (dataset.json, 4-D imagesTr, labelsTr) and raw BraTS
//! (a folder per case, one file per modality: `_flair/_t1/_t1ce/_t2/_seg` or BraTS 2021+ `-t2f/-t1n/-t1c/-t2w/-seg`).
use crate::{Case, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout { Msd, Brats }

/// Where a case's image data lives.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// One 4-D NIfTI, channels FLAIR, T1w, T1Gd, T2w (MSD).
    FourD(PathBuf),
    /// One file per modality in the order FLAIR, T1w, T1Gd, T2w (BraTS).
    PerModality([PathBuf; 4]),
}

#[derive(Debug, Clone)]
pub struct CaseRef {
    pub id: String,
    pub image: ImageSource,
    pub label: Option<PathBuf>,
    /// Numbering of the label file on disk (BraTS files are mapped to MSD on load).
    pub numbering: crate::LabelNumbering,
}

impl CaseRef {
    /// Load, canonicalise and validate (shapes agree, label values known, finite voxels).
    pub fn load(&self) -> Result<Case> { todo!() }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub layout: Layout,
    pub cases: Vec<CaseRef>,
}

/// Train/validation case ids, stored as JSON `{"train": [...], "valid": [...]}` users can edit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Split { pub train: Vec<String>, pub valid: Vec<String> }

impl Dataset {
    /// Open a dataset folder, a single BraTS case folder, or a single 4-D NIfTI file; the layout is detected.
    pub fn open(_path: &Path) -> Result<Dataset> { todo!() }
    pub fn case(&self, _id: &str) -> Option<&CaseRef> { todo!() }
    /// Deterministic split from a seed (default fraction 0.8 train), at least one case on each side when n >= 2.
    pub fn split(&self, _seed: u64, _train_fraction: f64) -> Split { todo!() }
}

impl Split {
    pub fn load(_path: &Path) -> Result<Split> { todo!() }
    /// Atomic write (temp file + rename).
    pub fn save(&self, _path: &Path) -> Result<()> { todo!() }
}
