//! A tiny sagittal series written from scratch (no shared data needed): files named and numbered
//! out of position order, signed pixels with rescaling. The expected affine and values are worked
//! by hand from the DICOM attributes.
use brainseg_dicom::{read_series_dir, scan_study, write_nifti, Modality, SliceOrientation};
use brainseg_volume::read_image;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use std::path::Path;

#[path = "support/mr_image.rs"]
mod support;
use support::{mr_image, write_file};

const COLS: usize = 3;
const ROWS: usize = 2;

fn stored(k: usize, r: usize, c: usize) -> i16 {
    (100 * k + 10 * r + c) as i16 - 50
}

/// Slice `k` of the series: row direction +y, column direction -z (so the normal is -x), pixel
/// spacing 2 mm between rows and 0.5 mm between columns, slices 3 mm apart from x = 10.
fn write_slice(dir: &Path, name: &str, k: usize, instance: i32, series_uid: &str) {
    write_slice_as(
        dir,
        name,
        k,
        instance,
        series_uid,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
    );
}

fn write_slice_as(dir: &Path, name: &str, k: usize, instance: i32, series_uid: &str, syntax: &str) {
    let pixels: Vec<u16> = (0..ROWS)
        .flat_map(|r| (0..COLS).map(move |c| stored(k, r, c) as u16))
        .collect();
    let mut obj = mr_image(ROWS, COLS, pixels);
    let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
    put(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        format!("1.2.3.4.{instance}").into(),
    );
    put(tags::SERIES_INSTANCE_UID, VR::UI, series_uid.into());
    put(tags::SERIES_NUMBER, VR::IS, "7".into());
    put(tags::SERIES_DESCRIPTION, VR::LO, "sag T1 post".into());
    put(tags::INSTANCE_NUMBER, VR::IS, instance.to_string().into());
    put(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        format!("{}\\-20\\30", 10.0 - 3.0 * k as f64).into(),
    );
    put(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        "0\\1\\0\\0\\0\\-1".into(),
    );
    put(tags::PIXEL_SPACING, VR::DS, "2\\0.5".into());
    put(tags::RESCALE_SLOPE, VR::DS, "2".into());
    put(tags::RESCALE_INTERCEPT, VR::DS, "-1".into());
    write_file(obj, &dir.join(name), syntax);
}

/// Four slices in files whose names and instance numbers run against the slice positions.
fn write_series(dir: &Path) {
    for (name, k, instance) in [
        ("a.dcm", 2, 1),
        ("b.dcm", 0, 4),
        ("c.dcm", 3, 2),
        ("d.dcm", 1, 3),
    ] {
        write_slice(dir, name, k, instance, "1.2.3.9");
    }
}

#[test]
fn sagittal_series_geometry_and_values() {
    let dir = tempfile::tempdir().unwrap();
    write_series(dir.path());
    let study = scan_study(dir.path()).unwrap();
    let info = study.series[0].info();
    assert_eq!(info.orientation, SliceOrientation::Sagittal);
    assert_eq!(info.size, [3, 2, 4, 1]);
    assert_eq!(info.spacing, [0.5, 2.0, 3.0]);
    assert_eq!(info.modality, Modality::T1Gd);
    assert_eq!(info.name, "7_sag_T1_post");
    let image = read_series_dir(dir.path()).unwrap();
    // LPS columns: row_dir * 0.5 = (0, 0.5, 0), col_dir * 2 = (0, 0, -2), step (-3, 0, 0),
    // origin (10, -20, 30); RAS negates the x and y rows.
    let want = [
        [0.0, 0.0, 3.0, -10.0],
        [-0.5, 0.0, 0.0, 20.0],
        [0.0, -2.0, 0.0, 30.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    assert_eq!(image.geometry.source_affine(), want);
    // Canonical axes: x = slice k (step +3 mm in R), y = column i reversed (i runs to -A),
    // z = row j reversed (j runs to -S).
    assert_eq!(image.data.shape(), [1, 4, COLS, ROWS]);
    assert_eq!(image.source_dtype, "int16");
    for ((_, x, y, z), &v) in image.data.indexed_iter() {
        let (k, c, r) = (x, COLS - 1 - y, ROWS - 1 - z);
        assert_eq!(v, 2.0 * stored(k, r, c) as f32 - 1.0, "voxel {x} {y} {z}");
    }
    // Written and read back through brainseg-volume: same affine and values.
    let path = dir.path().join("out.nii.gz");
    write_nifti(&path, &image).unwrap();
    let back = read_image(&path).unwrap();
    assert_eq!(back.geometry.source_affine(), want);
    assert_eq!(back.data, image.data);
}

#[test]
fn a_missing_slice_and_a_foreign_slice_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_series(dir.path());
    std::fs::remove_file(dir.path().join("d.dcm")).unwrap(); // k = 1
    let e = read_series_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("b.dcm: a missing slice: 6.000 mm"), "{e}");
    // A slice of another series at the missing position: two series, not one.
    write_slice(dir.path(), "x.dcm", 1, 9, "1.2.3.10");
    let e = read_series_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("2 series (SeriesInstanceUIDs) are mixed"), "{e}");
}

#[test]
fn deflated_big_endian_and_implicit_files_read_alike() {
    let reference = {
        let dir = tempfile::tempdir().unwrap();
        write_series(dir.path());
        read_series_dir(dir.path()).unwrap()
    };
    for syntax in [
        uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        "1.2.840.10008.1.2.2", // explicit VR big endian (retired, still found in archives)
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
    ] {
        let dir = tempfile::tempdir().unwrap();
        for (name, k, instance) in [
            ("a.dcm", 2, 1),
            ("b.dcm", 0, 4),
            ("c.dcm", 3, 2),
            ("d.dcm", 1, 3),
        ] {
            write_slice_as(dir.path(), name, k, instance, "1.2.3.9", syntax);
        }
        let image = read_series_dir(dir.path()).unwrap_or_else(|e| panic!("{syntax}: {e}"));
        assert_eq!(image.data, reference.data, "{syntax}");
        assert_eq!(
            image.geometry.source_affine(),
            reference.geometry.source_affine()
        );
    }
}
