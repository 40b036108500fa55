//! Broken DICOM input, made from the shared corpus: each case is a one-line error naming the file,
//! never a panic. Skipped (with a note) without the data.
use brainseg_dicom::{convert_study, read_series_dir, scan_study};
use dicom_dictionary_std::tags;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/dicom/dicom"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("note: {} is absent; skipping", dir.display());
        None
    }
}

fn copy_series(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if keep(&name) {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// The error of reading `folder` as one series: one line, naming `file`.
fn error_naming(folder: &Path, file: &str) -> String {
    let e = read_series_dir(folder).unwrap_err().to_string();
    println!("{e}");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains(file), "{e} does not name {file}");
    e
}

#[test]
fn truncated_files() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read(corpus.join("ts_1_explicitLE/1.dcm")).unwrap();
    // Cut inside the header, and inside the pixel data.
    for (name, len) in [("head.dcm", 1000), ("pixels.dcm", source.len() * 2 / 3)] {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(name), &source[..len]).unwrap();
        let e = error_naming(&folder, name);
        assert!(e.contains(&format!("{name}: ")), "{e}");
    }
}

#[test]
fn missing_pixel_data() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut obj = dicom_object::open_file(corpus.join("ts_1_explicitLE/1.dcm")).unwrap();
    assert!(obj.remove_element(tags::PIXEL_DATA));
    obj.write_to_file(dir.path().join("nopixels.dcm")).unwrap();
    let e = error_naming(dir.path(), "nopixels.dcm");
    assert!(e.contains("no pixel data"), "{e}");
}

#[test]
fn two_series_in_one_folder() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    copy_series(&corpus.join("ca_cl_dti_sag_b0"), dir.path(), |_| true);
    copy_series(
        &corpus.join("ph_cl_t1ffe_ax"),
        &dir.path().join("other"),
        |n| n == "0001.dcm" || n == "0002.dcm",
    );
    let e = error_naming(dir.path(), "other/0001.dcm");
    assert!(e.contains("2 series (SeriesInstanceUIDs) are mixed"), "{e}");
    // As a study both convert, one file each.
    let out = tempfile::tempdir().unwrap();
    let results = convert_study(dir.path(), out.path()).unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.outcome.is_ok()), "{results:?}");
}

#[test]
fn missing_slice() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    copy_series(&corpus.join("ca_cl_dti_sag_b0"), dir.path(), |n| {
        n != "0020.dcm"
    });
    let e = error_naming(dir.path(), ".dcm: a missing slice: 6.000 mm");
    assert!(e.contains("where the series steps 3.000 mm"), "{e}");
    // A study conversion reports it and writes nothing for the series.
    let out = tempfile::tempdir().unwrap();
    let results = convert_study(dir.path(), out.path()).unwrap();
    assert!(results[0].outcome.is_err());
    assert!(results[0]
        .info
        .problem
        .as_deref()
        .unwrap()
        .contains("missing slice"));
}

#[test]
fn unsupported_transfer_syntax() {
    let Some(corpus) = corpus() else { return };
    let e = error_naming(&corpus.join("ts_7_jpegls_gdcm"), "7.dcm: ");
    assert!(
        e.contains("JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)"),
        "{e}"
    );
    // Headers still list it.
    let study = scan_study(&corpus.join("ts_7_jpegls_gdcm")).unwrap();
    assert_eq!(study.series[0].info().size, [64, 64, 35, 1]);
}

#[test]
fn non_dicom_files_are_skipped() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    copy_series(&corpus.join("ts_1_explicitLE"), dir.path(), |_| true);
    std::fs::write(dir.path().join("README.txt"), "not an image").unwrap();
    let study = scan_study(dir.path()).unwrap();
    assert_eq!(study.series.len(), 1);
    assert_eq!(study.skipped, vec![dir.path().join("README.txt")]);
    assert_eq!(
        read_series_dir(dir.path()).unwrap().data.shape(),
        [1, 64, 64, 35]
    );
}

#[test]
fn missing_folder() {
    let e = read_series_dir(Path::new("/no/such/study"))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "/no/such/study: no such file or folder");
}
