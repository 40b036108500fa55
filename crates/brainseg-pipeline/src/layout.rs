//! The files of a prediction folder, named once: `brainseg predict` writes them; `evaluate`,
//! `show`, `report` and the demo find them here.
use std::path::{Path, PathBuf};

/// A folder of predictions.
#[derive(Debug, Clone)]
pub struct PredictionLayout {
    pub root: PathBuf,
}

/// Suffix of probability maps, which are not label maps.
pub const PROBABILITIES_SUFFIX: &str = "_probabilities";

impl PredictionLayout {
    pub fn new(root: impl Into<PathBuf>) -> PredictionLayout {
        PredictionLayout { root: root.into() }
    }
    /// `<case>.nii.gz`: the label map.
    pub fn label_map(&self, case: &str) -> PathBuf {
        self.root.join(format!("{case}.nii.gz"))
    }
    /// `<case>_probabilities.nii.gz`: the model's output channels, f32, 4-D.
    pub fn probabilities(&self, case: &str) -> PathBuf {
        self.root
            .join(format!("{case}{PROBABILITIES_SUFFIX}.nii.gz"))
    }
    /// What made the predictions: brainseg version, model, options, numbering, per-case seconds.
    pub fn provenance(&self) -> PathBuf {
        self.root.join("predictions.json")
    }
    /// `labels.itksnap.txt` (ITK-SNAP) and `labels.ctbl` (3D Slicer), without their extensions:
    /// the colours and names of the label values of every map in the folder.
    pub fn colour_tables(&self) -> PathBuf {
        self.root.join("labels")
    }
    pub fn evaluation_json(&self) -> PathBuf {
        self.root.join("evaluation.json")
    }
    pub fn evaluation_csv(&self) -> PathBuf {
        self.root.join("evaluation.csv")
    }
    pub fn pictures(&self) -> PathBuf {
        self.root.join("pictures")
    }
    pub fn report(&self) -> PathBuf {
        self.root.join("report.html")
    }
    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// Case id of a label file: its name without `.nii.gz`/`.nii` (and without a BraTS `_seg`/`-seg` suffix).
pub fn case_id_of_label_file(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name.trim_end_matches(".gz").trim_end_matches(".nii");
    stem.trim_end_matches("_seg")
        .trim_end_matches("-seg")
        .to_string()
}

/// Whether a file name ends like NIfTI.
pub fn is_nifti(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_drop_extensions_and_seg_suffixes() {
        assert_eq!(case_id_of_label_file(Path::new("a/B_1.nii.gz")), "B_1");
        assert_eq!(case_id_of_label_file(Path::new("B_1_seg.nii")), "B_1");
        assert_eq!(
            case_id_of_label_file(Path::new("BraTS-GLI-1-seg.nii.gz")),
            "BraTS-GLI-1"
        );
    }
}
