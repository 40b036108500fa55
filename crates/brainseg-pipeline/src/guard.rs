//! Inputs are never overwritten: outputs are checked against them by canonical path before
//! anything is written.
use crate::{Error, Result};
use brainseg_volume::Dataset;
use std::path::{Path, PathBuf};

/// The path with its folder resolved (links, `..`), for files that may not exist yet.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (folder.canonicalize(), path.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => path.to_path_buf(),
    }
}

/// Every file a dataset reads: images and label maps.
pub fn dataset_files(dataset: &Dataset) -> Vec<PathBuf> {
    dataset
        .cases
        .iter()
        .flat_map(|c| c.image_files().into_iter().chain(c.label.clone()))
        .collect()
}

/// Refuses an output file that is one of `inputs`.
pub fn refuse_input_as_output(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    let target = resolved(output);
    if inputs.iter().any(|input| resolved(input) == target) {
        return Err(Error::invalid(format!(
            "{}: is an input of this command; refusing to overwrite it",
            output.display()
        )));
    }
    Ok(())
}

/// Refuses an output folder that holds any of `inputs` (predictions written beside the images
/// or ground truth they came from would replace or be mistaken for them).
pub fn refuse_input_folder(output_folder: &Path, inputs: &[PathBuf]) -> Result<()> {
    let folder = resolved(output_folder);
    if let Some(input) = inputs
        .iter()
        .find(|input| resolved(input).parent() == Some(folder.as_path()))
    {
        return Err(Error::invalid(format!(
            "{}: holds input files ({}); write the output to another folder",
            output_folder.display(),
            input.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_recognised_through_other_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("imagesTr");
        std::fs::create_dir(&images).unwrap();
        let input = images.join("a.nii.gz");
        std::fs::write(&input, b"x").unwrap();
        let inputs = vec![input.clone()];
        let other_spelling = images.join("..").join("imagesTr").join("a.nii.gz");
        assert!(refuse_input_as_output(&other_spelling, &inputs).is_err());
        assert!(refuse_input_as_output(&images.join("b.nii.gz"), &inputs).is_ok());
        assert!(refuse_input_folder(&dir.path().join("imagesTr/."), &inputs).is_err());
        assert!(refuse_input_folder(&dir.path().join("predictions"), &inputs).is_ok());
        assert!(refuse_input_folder(dir.path(), &inputs).is_ok());
    }
}
