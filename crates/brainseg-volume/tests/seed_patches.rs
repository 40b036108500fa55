//! The seed's HDF5 patches: shapes, values and label counts checked against the raw datasets.
use brainseg_volume::seed_patches::{read_seed_config, read_seed_patch};
use std::path::PathBuf;

fn patches() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/coursera-patches"
    ))
}

fn h5_files(sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(patches().join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".h5"))
        .collect();
    names.sort();
    names
}

#[test]
fn shapes_values_and_label_counts_match_the_raw_datasets() {
    let files: Vec<PathBuf> = ["train", "valid"]
        .iter()
        .flat_map(|sub| {
            h5_files(sub)
                .into_iter()
                .map(move |n| patches().join(sub).join(n))
        })
        .collect();
    assert_eq!(files.len(), 16);
    let mut tumour_voxels = 0.0;
    for path in &files {
        let patch = read_seed_patch(path).unwrap();
        assert_eq!(patch.x.shape(), &[4, 160, 160, 16]);
        assert_eq!(patch.y.shape(), &[3, 160, 160, 16]);

        // Independent read: y is (X, Y, Z, 4) one-hot, so class c sits at flat index 4 * voxel + c.
        let file = hdf5_pure::File::open(path).unwrap();
        let raw_y = file.dataset("y").unwrap().read_f64().unwrap();
        let raw_x = file.dataset("x").unwrap().read_f64().unwrap();
        let voxels = 160 * 160 * 16;
        let class_sum = |c: usize| raw_y.iter().skip(c).step_by(4).sum::<f64>();
        assert_eq!(
            (0..4).map(class_sum).sum::<f64>(),
            voxels as f64,
            "one class per voxel"
        );
        for c in 1..4 {
            let ours = patch.y.index_axis(ndarray::Axis(0), c - 1).sum() as f64;
            assert_eq!(ours, class_sum(c), "class {c} of {}", path.display());
        }
        // Voxel (i, j, k) of class c: raw index ((i * 160 + j) * 16 + k) * 4 + c.
        let (i, j, k) = (37, 101, 9);
        for c in 1..4 {
            assert_eq!(
                patch.y[[c - 1, i, j, k]] as f64,
                raw_y[((i * 160 + j) * 16 + k) * 4 + c]
            );
        }
        assert_eq!(
            patch.x.iter().map(|&v| v as f64).sum::<f64>().round(),
            raw_x.iter().sum::<f64>().round()
        );
        assert_eq!(
            patch.x[[2, i, j, k]] as f64,
            raw_x[((2 * 160 + i) * 160 + j) * 16 + k] as f32 as f64
        );
        // The seed accepted only patches with at least 5% tumour.
        let tumour = patch.y.sum() as f64;
        assert!(tumour >= 0.05 * voxels as f64, "{}", path.display());
        tumour_voxels += tumour;
    }
    assert!(tumour_voxels > 0.0);
}

#[test]
fn seed_config_lists_resolve_against_train_and_valid() {
    // The shared folder has no config.json: build one beside links to its train/ and valid/.
    let dir = tempfile::tempdir().unwrap();
    for sub in ["train", "valid"] {
        std::os::unix::fs::symlink(patches().join(sub), dir.path().join(sub)).unwrap();
    }
    let (train, valid) = (h5_files("train"), h5_files("valid"));
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"train": train, "valid": valid}).to_string(),
    )
    .unwrap();
    let (train_paths, valid_paths) = read_seed_config(&config).unwrap();
    assert_eq!(train_paths.len(), 8);
    assert_eq!(valid_paths.len(), 8);
    assert_eq!(train_paths[0], dir.path().join("train").join(&train[0]));
    assert!(valid_paths.iter().all(|p| p
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("BRATS_119")));

    std::fs::write(&config, r#"{"train": ["nope.h5"], "valid": []}"#).unwrap();
    let err = read_seed_config(&config).unwrap_err();
    assert_eq!(err.path.unwrap(), dir.path().join("train/nope.h5"));
    assert!(err.problem.contains("missing"));
}
