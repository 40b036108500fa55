//! The Medical Segmentation Decathlon (Task01) layout brainseg writes: `dataset.json`, 4-D
//! `imagesTr/<case>.nii.gz`, `labelsTr/<case>.nii.gz` in MSD numbering and `imagesTs/<case>.nii.gz`.
//! Every writer of this layout (convert, compact copies, synthetic data) names files and writes
//! `dataset.json` here.
use crate::atomic::write_atomic;
use crate::{Error, Result};
use brainseg_core::{Class, MODALITIES};
use std::path::{Path, PathBuf};

/// Where a case's files go in an MSD dataset rooted at `root`.
pub struct MsdLayout {
    pub root: PathBuf,
}

impl MsdLayout {
    pub fn new(root: impl Into<PathBuf>) -> MsdLayout {
        MsdLayout { root: root.into() }
    }

    /// Creates `imagesTr`, `labelsTr` and `imagesTs`.
    pub fn create_folders(&self) -> Result<()> {
        for folder in ["imagesTr", "labelsTr", "imagesTs"] {
            let path = self.root.join(folder);
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::at(&path, format!("cannot create: {e}")))?;
        }
        Ok(())
    }

    /// The 4-D image of a training (labelled) case.
    pub fn training_image(&self, id: &str) -> PathBuf {
        self.root.join(relative("imagesTr", id))
    }

    pub fn training_label(&self, id: &str) -> PathBuf {
        self.root.join(relative("labelsTr", id))
    }

    pub fn test_image(&self, id: &str) -> PathBuf {
        self.root.join(relative("imagesTs", id))
    }

    /// Writes `dataset.json` listing `training` (labelled) and `test` case ids. Call it last: a
    /// folder without it is not a dataset, so an interrupted writer leaves nothing that looks complete.
    pub fn write_dataset_json(
        &self,
        name: &str,
        description: &str,
        training: &[String],
        test: &[String],
    ) -> Result<()> {
        let numbered = |names: &[&str]| -> serde_json::Map<String, serde_json::Value> {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (i.to_string(), serde_json::Value::from(*name)))
                .collect()
        };
        let mut labels = vec!["background"];
        labels.extend(Class::ALL.map(Class::name));
        let training: Vec<_> = training
            .iter()
            .map(|id| {
                serde_json::json!({
                    "image": format!("./{}", relative("imagesTr", id).display()),
                    "label": format!("./{}", relative("labelsTr", id).display()),
                })
            })
            .collect();
        let test: Vec<_> = test
            .iter()
            .map(|id| format!("./{}", relative("imagesTs", id).display()))
            .collect();
        let json = serde_json::json!({
            "name": name,
            "description": description,
            "tensorImageSize": "4D",
            "modality": numbered(&MODALITIES),
            "labels": numbered(&labels),
            "numTraining": training.len(),
            "numTest": test.len(),
            "training": training,
            "test": test,
        });
        let text = serde_json::to_string_pretty(&json).expect("JSON values serialise") + "\n";
        write_atomic(self.root.join("dataset.json"), text.as_bytes())
    }
}

fn relative(folder: &str, id: &str) -> PathBuf {
    Path::new(folder).join(format!("{id}.nii.gz"))
}
