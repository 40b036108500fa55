//! Every kind of bad input gives an error that names the file and the problem; small fixtures
//! are written in temp dirs. Also the layouts' naming rules (old and 2021+ BraTS, 4-D files).
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::{read_image, write_label, Dataset, Error, Geometry};
use ndarray::{Array3, Array4};
use std::path::{Path, PathBuf};

const SHAPE: [usize; 3] = [6, 5, 4];

fn geometry(shape: [usize; 3]) -> Geometry {
    Geometry::synthetic(shape, [1.0, 1.0, 2.0])
}

/// A 3-D int16 volume whose every voxel holds `value`.
fn write_volume(path: &Path, shape: [usize; 3], value: f32) {
    let data = Array4::from_elem((1, shape[0], shape[1], shape[2]), value);
    write_image(path, &data, &geometry(shape), "int16").unwrap();
}

/// A BraTS case folder `dir/<id>` with the given modality suffixes (value = channel index + 1).
fn brats_case(dir: &Path, id: &str, suffixes: &[&str], seg: Option<&str>) -> PathBuf {
    let folder = dir.join(id);
    std::fs::create_dir_all(&folder).unwrap();
    for (c, suffix) in suffixes.iter().enumerate() {
        write_volume(
            &folder.join(format!("{id}{suffix}.nii.gz")),
            SHAPE,
            c as f32 + 1.0,
        );
    }
    if let Some(suffix) = seg {
        let mut label = Array3::<u8>::zeros(SHAPE);
        label[[1, 1, 1]] = 1;
        label[[2, 2, 2]] = 2;
        label[[3, 3, 3]] = 4;
        write_label(
            &folder.join(format!("{id}{suffix}.nii.gz")),
            &label,
            &geometry(SHAPE),
            None,
        )
        .unwrap();
    }
    folder
}

const OLD: [&str; 4] = ["_flair", "_t1", "_t1ce", "_t2"];
const NEW: [&str; 4] = ["-t2f", "-t1n", "-t1c", "-t2w"];

fn assert_error(err: Error, path: &Path, problem: &str) {
    assert_eq!(
        err.path.as_deref(),
        Some(path),
        "error {err} names the wrong file"
    );
    assert!(
        err.to_string().contains(problem),
        "error {err:?} does not say {problem:?}"
    );
    assert!(!err.to_string().contains('\n'), "one line");
}

#[test]
fn both_brats_namings_load_in_channel_order_with_mapped_labels() {
    let dir = tempfile::tempdir().unwrap();
    brats_case(dir.path(), "b_case", &NEW, Some("-seg"));
    brats_case(dir.path(), "a_case", &OLD, Some("_seg"));
    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!(
        dataset
            .cases
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["a_case", "b_case"]
    );
    for case_ref in &dataset.cases {
        let case = case_ref.load().unwrap();
        assert_eq!(case.image.shape(), &[4, 6, 5, 4]);
        for c in 0..4 {
            assert!(case
                .image
                .index_axis(ndarray::Axis(0), c)
                .iter()
                .all(|&v| v == c as f32 + 1.0));
        }
        let label = case.label.unwrap();
        assert_eq!(
            (label[[1, 1, 1]], label[[2, 2, 2]], label[[3, 3, 3]]),
            (2, 1, 3)
        );
        assert_eq!(label.iter().map(|&v| v as usize).sum::<usize>(), 6);
        assert_eq!(case.sources.len(), 5);
    }
    // A single case folder opens as a dataset of one.
    let single = Dataset::open(&dir.path().join("a_case")).unwrap();
    assert_eq!(single.cases.len(), 1);
    assert_eq!(single.cases[0].id, "a_case");
}

#[test]
fn a_single_4d_file_is_one_unlabelled_case_and_a_3d_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let four = dir.path().join("scan.nii.gz");
    let data = Array4::from_shape_fn((4, 6, 5, 4), |(c, i, j, k)| {
        (c * 1000 + i * 100 + j * 10 + k) as f32
    });
    write_image(&four, &data, &geometry(SHAPE), "float32").unwrap();
    let dataset = Dataset::open(&four).unwrap();
    assert_eq!(dataset.cases[0].id, "scan");
    let case = dataset.cases[0].load().unwrap();
    assert_eq!(case.image, data);
    assert!(case.label.is_none());

    let three = dir.path().join("flair.nii.gz");
    write_volume(&three, SHAPE, 1.0);
    assert_error(
        Dataset::open(&three).unwrap_err(),
        &three,
        "4-D image with 4 channels",
    );
}

#[test]
fn missing_modality() {
    let dir = tempfile::tempdir().unwrap();
    let folder = brats_case(dir.path(), "c", &OLD[..3], Some("_seg"));
    assert_error(
        Dataset::open(dir.path()).unwrap_err(),
        &folder,
        "missing the T2w file",
    );
}

#[test]
fn nonexistent_path_and_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    assert_error(
        Dataset::open(&missing).unwrap_err(),
        &missing,
        "no such file or folder",
    );
    assert_error(
        Dataset::open(dir.path()).unwrap_err(),
        dir.path(),
        "no dataset here",
    );
    let file = dir.path().join("x.nii.gz");
    assert_error(read_image(&file).unwrap_err(), &file, "no such file");
}

#[test]
fn truncated_and_corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.nii.gz");
    write_volume(&good, [40, 40, 40], 3.0);
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.nii.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(
        read_image(&truncated).unwrap_err(),
        &truncated,
        "truncated file",
    );

    let corrupt = dir.path().join("corrupt.nii.gz");
    let mut damaged = bytes.clone();
    let crc_at = damaged.len() - 8;
    damaged[crc_at] ^= 0xff;
    std::fs::write(&corrupt, &damaged).unwrap();
    assert_error(
        read_image(&corrupt).unwrap_err(),
        &corrupt,
        "corrupt gzip data",
    );

    let garbage = dir.path().join("garbage.nii.gz");
    std::fs::write(&garbage, vec![7u8; 400]).unwrap();
    assert_error(
        read_image(&garbage).unwrap_err(),
        &garbage,
        "not a NIfTI-1 file",
    );
}

#[test]
fn impossible_dims_and_short_data() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.nii");
    write_volume(&good, SHAPE, 3.0);
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(read_image(&good).unwrap().data.len(), 120);

    // dim[k] is the little-endian i16 at byte 40 + 2k.
    for (k, value, problem) in [
        (2usize, 0i16, "dim[2] = 0"),
        (1, -3, "dim[1] = -3"),
        (0, 9, "dim[0] = 9"),
    ] {
        let path = dir.path().join(format!("dim{k}.nii"));
        let mut patched = bytes.clone();
        patched[40 + 2 * k..42 + 2 * k].copy_from_slice(&value.to_le_bytes());
        std::fs::write(&path, &patched).unwrap();
        let err = read_image(&path).unwrap_err();
        assert_error(err, &path, "impossible dims");
        assert!(read_image(&path).unwrap_err().problem.contains(problem));
    }

    let short = dir.path().join("short.nii");
    std::fs::write(&short, &bytes[..bytes.len() - 10]).unwrap();
    assert_error(
        read_image(&short).unwrap_err(),
        &short,
        "truncated data: the header says 6x5x4x1 int16 voxels",
    );
}

#[test]
fn nan_voxel() {
    let dir = tempfile::tempdir().unwrap();
    let folder = brats_case(dir.path(), "n", &OLD, None);
    let flair = folder.join("n_flair.nii.gz");
    let mut data = Array4::from_elem((1, 6, 5, 4), 1.0f32);
    data[[0, 1, 2, 3]] = f32::NAN;
    write_image(&flair, &data, &geometry(SHAPE), "float32").unwrap();
    let err = Dataset::open(dir.path()).unwrap().cases[0]
        .load()
        .unwrap_err();
    assert_error(err, &flair, "voxel (1, 2, 3) holds NaN");
}

#[test]
fn image_label_shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let folder = brats_case(dir.path(), "m", &OLD, None);
    let seg = folder.join("m_seg.nii.gz");
    write_label(&seg, &Array3::zeros((6, 5, 3)), &geometry([6, 5, 3]), None).unwrap();
    let err = Dataset::open(dir.path()).unwrap().cases[0]
        .load()
        .unwrap_err();
    assert_error(
        err,
        &seg,
        "label shape 6x5x3 differs from the image shape 6x5x4",
    );
}

#[test]
fn modalities_of_different_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let folder = brats_case(dir.path(), "d", &OLD, Some("_seg"));
    let t1 = folder.join("d_t1.nii.gz");
    write_volume(&t1, [6, 5, 5], 1.0);
    let err = Dataset::open(dir.path()).unwrap().cases[0]
        .load()
        .unwrap_err();
    assert_error(
        err,
        &t1,
        "the T1w image (6x5x5 RAS) does not match the FLAIR image (6x5x4 RAS)",
    );
}

#[test]
fn unknown_label_value() {
    let dir = tempfile::tempdir().unwrap();
    let folder = brats_case(dir.path(), "u", &OLD, None);
    let seg = folder.join("u_seg.nii.gz");
    let mut label = Array3::<u8>::zeros(SHAPE);
    label[[0, 1, 2]] = 7;
    write_label(&seg, &label, &geometry(SHAPE), None).unwrap();
    let err = Dataset::open(dir.path()).unwrap().cases[0]
        .load()
        .unwrap_err();
    assert_error(err, &seg, "unknown label value 7");
}

#[test]
fn msd_json_naming_a_missing_file_and_bad_split_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dataset.json"),
        r#"{"training": [{"image": "./imagesTr/A.nii.gz", "label": "./labelsTr/A.nii.gz"}]}"#,
    )
    .unwrap();
    assert_error(
        Dataset::open(dir.path()).unwrap_err(),
        &dir.path().join("imagesTr/A.nii.gz"),
        "but missing",
    );

    let split = dir.path().join("split.json");
    std::fs::write(&split, r#"{"train": ["a"]}"#).unwrap();
    assert_error(
        brainseg_volume::Split::load(&split).unwrap_err(),
        &split,
        "not a split file",
    );
}

#[test]
fn modalities_at_different_world_positions() {
    let dir = tempfile::tempdir().unwrap();
    let folder = brats_case(dir.path(), "w", &OLD, Some("_seg"));
    // T2 on the same grid but 0.01 mm off along world z (more than the 0.001 mm allowed).
    let t2 = folder.join("w_t2.nii.gz");
    let mut moved = geometry(SHAPE);
    moved.header.srow_z[3] += 0.01;
    let data = Array4::from_elem((1, 6, 5, 4), 4.0f32);
    write_image(&t2, &data, &moved, "int16").unwrap();
    let flair = folder.join("w_flair.nii.gz");
    let err = Dataset::open(dir.path()).unwrap().cases[0]
        .load()
        .unwrap_err();
    assert_error(
        err,
        &t2,
        &format!(
            "not co-registered with {}: the same voxel lies up to 0.010 mm apart",
            flair.display()
        ),
    );

    // 0.0005 mm off is within the tolerance.
    moved.header.srow_z[3] = 0.0005;
    write_image(&t2, &data, &moved, "int16").unwrap();
    assert!(Dataset::open(dir.path()).unwrap().cases[0].load().is_ok());
}

#[test]
fn non_utf8_folder_names_give_lossy_ids_that_must_be_unique() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let made = brats_case(dir.path(), "x", &OLD, None);
    let first = dir.path().join(std::ffi::OsStr::from_bytes(b"case\xff"));
    std::fs::rename(&made, &first).unwrap();
    let dataset = Dataset::open(dir.path()).unwrap();
    // The invalid byte becomes U+FFFD.
    assert_eq!(dataset.cases[0].id, "case\u{fffd}");
    assert_eq!(
        dataset.cases[0].load().unwrap().image.shape(),
        &[4, 6, 5, 4]
    );

    // A second name with another invalid byte gives the same id: refused, naming both folders.
    let made = brats_case(dir.path(), "x", &OLD, None);
    let second = dir.path().join(std::ffi::OsStr::from_bytes(b"case\xfe"));
    std::fs::rename(&made, &second).unwrap();
    let err = Dataset::open(dir.path()).unwrap_err();
    assert_error(err, dir.path(), "two cases have the id \"case\u{fffd}\"");
    let text = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(text.contains(&first.display().to_string()), "{text}");
    assert!(text.contains(&second.display().to_string()), "{text}");
}

#[test]
fn dataset_json_paths_must_stay_inside_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    std::fs::create_dir_all(root.join("imagesTr")).unwrap();
    let outside = dir.path().join("A.nii.gz");
    write_volume(&outside, SHAPE, 1.0);
    let json = root.join("dataset.json");
    for entry in [
        "../A.nii.gz".to_string(),
        "./imagesTr/../../A.nii.gz".to_string(),
        outside.display().to_string(),
    ] {
        std::fs::write(
            &json,
            format!(r#"{{"training": [{{"image": {entry:?}, "label": null}}]}}"#),
        )
        .unwrap();
        assert_error(
            Dataset::open(&root).unwrap_err(),
            &json,
            &format!("the path {entry:?} must stay inside the dataset"),
        );
    }
    // A listed path that is a folder says so.
    std::fs::create_dir_all(root.join("imagesTr/B.nii.gz")).unwrap();
    std::fs::write(&json, r#"{"training": [{"image": "./imagesTr/B.nii.gz"}]}"#).unwrap();
    assert_error(
        Dataset::open(&root).unwrap_err(),
        &root.join("imagesTr/B.nii.gz"),
        "but it is a folder, not a NIfTI file",
    );
}

#[test]
fn a_modality_name_on_a_folder_or_fifo_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let folder = brats_case(dir.path(), "f", &OLD[..3], None);
    let t2 = folder.join("f_t2.nii.gz");
    std::fs::create_dir(&t2).unwrap();
    assert_error(
        Dataset::open(dir.path()).unwrap_err(),
        &t2,
        "named like the T2w file but it is a folder, not a NIfTI file",
    );
    std::fs::remove_dir(&t2).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&t2)
        .status()
        .unwrap();
    assert!(status.success());
    assert_error(
        Dataset::open(dir.path()).unwrap_err(),
        &t2,
        "named like the T2w file but it is a FIFO (named pipe), not a NIfTI file",
    );
}

#[test]
fn read_label_msd_detects_converts_and_checks() {
    use brainseg_volume::{read_label_msd, LabelNumbering};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, values: &[([usize; 3], u8)]| {
        let mut label = Array3::<u8>::zeros(SHAPE);
        for &(at, v) in values {
            label[at] = v;
        }
        let path = dir.path().join(name);
        write_label(&path, &label, &geometry(SHAPE), None).unwrap();
        path
    };
    // BraTS 1 (core) -> MSD 2, 2 (edema) -> 1, 4 (enhancing) -> 3.
    let brats = write(
        "brats.nii.gz",
        &[([1, 1, 1], 1), ([2, 2, 2], 2), ([3, 3, 3], 4)],
    );
    let map = read_label_msd(&brats, None, Some(SHAPE)).unwrap();
    assert_eq!((map.numbering, map.guessed), (LabelNumbering::Brats, false));
    assert_eq!(
        (
            map.labels[[1, 1, 1]],
            map.labels[[2, 2, 2]],
            map.labels[[3, 3, 3]]
        ),
        (2, 1, 3)
    );
    assert_eq!(map.labels.iter().map(|&v| v as usize).sum::<usize>(), 6);

    // A 3 and no 4: MSD, unchanged.
    let msd = write("msd.nii.gz", &[([1, 1, 1], 1), ([3, 3, 3], 3)]);
    let map = read_label_msd(&msd, None, None).unwrap();
    assert_eq!((map.numbering, map.guessed), (LabelNumbering::Msd, false));
    assert_eq!((map.labels[[1, 1, 1]], map.labels[[3, 3, 3]]), (1, 3));

    // Only 0..=2: either numbering; MSD is assumed and reported as a guess.
    let unsure = write("unsure.nii.gz", &[([1, 1, 1], 1), ([2, 2, 2], 2)]);
    let map = read_label_msd(&unsure, None, None).unwrap();
    assert_eq!((map.numbering, map.guessed), (LabelNumbering::Msd, true));
    assert_eq!((map.labels[[1, 1, 1]], map.labels[[2, 2, 2]]), (1, 2));
    // Given as BraTS, the same file is converted.
    let map = read_label_msd(&unsure, Some(LabelNumbering::Brats), None).unwrap();
    assert_eq!((map.labels[[1, 1, 1]], map.labels[[2, 2, 2]]), (2, 1));

    // Errors: a value of neither numbering, a 4 in a file said to be MSD, a wrong shape.
    let bad = write("bad.nii.gz", &[([0, 0, 0], 7)]);
    assert_error(
        read_label_msd(&bad, None, None).unwrap_err(),
        &bad,
        "unknown label value 7 (neither MSD numbering",
    );
    assert_error(
        read_label_msd(&brats, Some(LabelNumbering::Msd), None).unwrap_err(),
        &brats,
        "unknown label value 4 (Msd numbering has 0, 1, 2, 3)",
    );
    assert_error(
        read_label_msd(&msd, None, Some([6, 5, 3])).unwrap_err(),
        &msd,
        "label shape 6x5x4 differs from the image shape 6x5x3",
    );
}
