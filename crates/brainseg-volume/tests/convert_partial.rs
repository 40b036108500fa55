//! A conversion that fails on a later case removes the files it wrote for earlier cases: no
//! partial output (found by the CLI bad-input corpus, tests/bad_input_corpus.rs).
use brainseg_volume::convert::to_msd;
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::{write_label, Geometry};
use ndarray::{Array3, Array4};
use std::path::Path;

fn write_case(dir: &Path, id: &str) -> std::path::PathBuf {
    let shape = [8, 6, 4];
    let geometry = Geometry::synthetic(shape, [1.0, 1.0, 1.0]);
    let folder = dir.join(id);
    std::fs::create_dir_all(&folder).unwrap();
    for (k, suffix) in ["flair", "t1", "t1ce", "t2"].iter().enumerate() {
        let image = Array4::from_shape_fn((1, 8, 6, 4), |(_, x, y, z)| (x + y + z + k) as f32);
        write_image(
            &folder.join(format!("{id}_{suffix}.nii.gz")),
            &image,
            &geometry,
            "int16",
        )
        .unwrap();
    }
    let label = Array3::from_shape_fn(shape, |(x, y, z)| [0, 1, 2, 4][(x + y + z) % 4]);
    write_label(
        &folder.join(format!("{id}_seg.nii.gz")),
        &label,
        &geometry,
        None,
    )
    .unwrap();
    folder
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            found.extend(files_under(&entry.path()));
        } else {
            found.push(entry.path());
        }
    }
    found
}

#[test]
fn a_failed_conversion_leaves_no_case_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("raw");
    write_case(&src, "Brats_a_1");
    let broken = write_case(&src, "Brats_b_1");
    let t1 = broken.join("Brats_b_1_t1.nii.gz");
    let bytes = std::fs::read(&t1).unwrap();
    std::fs::write(&t1, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("msd");
    // A file that was there before the conversion is not the conversion's to remove.
    std::fs::create_dir_all(out.join("imagesTr")).unwrap();
    let kept = out.join("imagesTr/notes.txt");
    std::fs::write(&kept, b"mine").unwrap();
    let err = to_msd(&src, &out).unwrap_err();
    assert_eq!(err.path.as_deref(), Some(t1.as_path()));
    assert!(err.problem.contains("truncated"), "{err}");
    assert_eq!(files_under(&out), vec![kept]);
}
