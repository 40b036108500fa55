//! A shared BraTS case written as a DICOM study (four axial series named as a Siemens scanner names
//! them, one file per slice, written with dicom-rs) is segmented exactly as the same voxels given
//! as a 4-D NIfTI: the same label map, in the T1Gd series' geometry. A 64 x 64 x 32 crop around the
//! tumour keeps the test fast. Skipped, with a note, without the shared data.
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::{read_label, Dataset, Geometry};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use ndarray::{s, Array4};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../crates/brainseg-dicom/tests/support/mr_image.rs"]
mod mr_image;
use mr_image::{mr_image, write_file};

const CASE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/brats2018/Brats18_2013_2_1"
);
const CROP: [usize; 3] = [64, 64, 32];

/// Series descriptions as a Siemens scanner writes them, in FLAIR, T1w, T1Gd, T2w order.
const SERIES: [(&str, i32); 4] = [
    ("t2_tirm_tra_dark-fluid", 3),
    ("t1_se_tra", 4),
    ("t1_se_tra_Gd", 9),
    ("t2_tse_tra", 5),
];

/// The case's four modalities cropped around the tumour's centre, raw intensities.
fn crop_around_tumour() -> Array4<f32> {
    let case = Dataset::open(Path::new(CASE)).unwrap().cases[0]
        .load()
        .unwrap();
    let label = case.label.expect("the case has a segmentation");
    let (mut sum, mut count) = ([0usize; 3], 0);
    for ((i, j, k), &v) in label.indexed_iter() {
        if v > 0 {
            sum = [sum[0] + i, sum[1] + j, sum[2] + k];
            count += 1;
        }
    }
    let shape = label.shape();
    let start: Vec<usize> = (0..3)
        .map(|a| {
            (sum[a] / count)
                .saturating_sub(CROP[a] / 2)
                .min(shape[a] - CROP[a])
        })
        .collect();
    case.image
        .slice(s![
            ..,
            start[0]..start[0] + CROP[0],
            start[1]..start[1] + CROP[1],
            start[2]..start[2] + CROP[2]
        ])
        .to_owned()
}

/// Slice `k` of one series. The NIfTI's voxel (i, j, k) lies at RAS (i, j, k) mm, which is LPS
/// (-i, -j, k): columns run along -x (row direction -1,0,0), rows along -y (column direction
/// 0,-1,0), and slice k sits at z = k.
fn write_slice(dir: &Path, volume: ndarray::ArrayView3<f32>, series: usize, k: usize) {
    let (description, number) = SERIES[series];
    // Rows (j) outer, columns (i) inner, as DICOM stores a frame.
    let pixels: Vec<u16> = (0..CROP[1])
        .flat_map(|j| (0..CROP[0]).map(move |i| volume[[i, j, k]] as i16 as u16))
        .collect();
    let mut obj = mr_image(CROP[1], CROP[0], pixels);
    let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
    put(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        format!("1.2.826.0.1.3680043.10.1.{number}.{}", k + 1).into(),
    );
    put(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.10.1".into(),
    );
    put(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        format!("1.2.826.0.1.3680043.10.1.{number}").into(),
    );
    put(tags::MODALITY, VR::CS, "MR".into());
    put(tags::MANUFACTURER, VR::LO, "SIEMENS".into());
    put(tags::PATIENT_ID, VR::LO, "brats-2013-2".into());
    put(tags::SERIES_NUMBER, VR::IS, number.to_string().into());
    put(tags::SERIES_DESCRIPTION, VR::LO, description.into());
    put(tags::PROTOCOL_NAME, VR::LO, description.into());
    put(tags::INSTANCE_NUMBER, VR::IS, (k + 1).to_string().into());
    put(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        format!("0\\0\\{k}").into(),
    );
    put(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        "-1\\0\\0\\0\\-1\\0".into(),
    );
    put(tags::PIXEL_SPACING, VR::DS, "1\\1".into());
    put(tags::SLICE_THICKNESS, VR::DS, "1".into());
    let folder = dir.join(format!("{number:03}_{description}"));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(format!("IM{:04}.dcm", k + 1));
    write_file(obj, &path, uids::EXPLICIT_VR_LITTLE_ENDIAN);
}

fn predict(input: &Path, out: &Path) -> PathBuf {
    let output = Command::new(env!("CARGO_BIN_EXE_brainseg"))
        .args(["predict", "-i"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "predict on {}: {}",
        input.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let maps: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".nii.gz"))
        .collect();
    assert_eq!(maps.len(), 1, "{maps:?}");
    maps[0].clone()
}

#[test]
fn a_dicom_study_segments_like_the_same_voxels_in_nifti() {
    if !Path::new(CASE).is_dir() {
        eprintln!("note: DICOM predict test skipped: no case at {CASE}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = crop_around_tumour();
    let nifti = dir.path().join("case.nii.gz");
    write_image(
        &nifti,
        &image,
        &Geometry::synthetic(CROP, [1.0; 3]),
        "int16",
    )
    .unwrap();
    let study = dir.path().join("study");
    for (series, volume) in image.outer_iter().enumerate() {
        for k in 0..CROP[2] {
            write_slice(&study, volume, series, k);
        }
    }

    let from_nifti = predict(&nifti, &dir.path().join("out_nifti"));
    let from_dicom = predict(&study, &dir.path().join("out_dicom"));
    let (labels_nifti, geometry_nifti) = read_label(&from_nifti).unwrap();
    let (labels_dicom, geometry_dicom) = read_label(&from_dicom).unwrap();
    assert_eq!(labels_dicom.shape(), labels_nifti.shape());
    // The T1Gd series' grid is the NIfTI's: the same voxel corners in the world.
    let distance = geometry_dicom.max_world_distance(&geometry_nifti);
    assert!(distance < 1e-3, "grids {distance} mm apart");
    let tumour = labels_nifti.iter().filter(|&&v| v > 0).count();
    assert!(
        tumour > 1000,
        "only {tumour} tumour voxels found in the crop"
    );
    let differing = labels_nifti
        .iter()
        .zip(&labels_dicom)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "{differing} of {tumour} tumour voxels differ");
}
