//! Bad input through the `brainseg` binary: every user mistake ends with exit code 1, one `error: ...` line
//! that names the file and the problem, no panic, and no partial output.
#[macro_use]
mod common;

use brainseg_model::checkpoint::{save_checkpoint, StorageDtype};
use brainseg_model::{cpu_device, UNet3d, UNet3dConfig};
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::write_label;
use common::*;
use ndarray::{Array3, Array4};
use std::path::Path;

fn info(path: &Path) -> std::process::Output {
    brainseg!("info", path)
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn info_on_a_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("Brats18_nowhere");
    assert_one_line_error(&info(&missing), &[&show(&missing), "no such file"]);
}

#[test]
fn info_on_an_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_error(&info(dir.path()), &[&show(dir.path()), "no dataset here"]);
}

#[test]
fn info_on_a_case_missing_a_modality() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_brats_case(dir.path(), "Brats_test_1", [8, 6, 4]);
    std::fs::remove_file(case.join("Brats_test_1_t1ce.nii.gz")).unwrap();
    assert_one_line_error(&info(&case), &[&show(&case), "missing the T1Gd file"]);
}

#[test]
fn info_on_a_truncated_nii_gz() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("truncated.nii.gz");
    write_volume(&file, [24, 24, 24], 0);
    let bytes = std::fs::read(&file).unwrap();
    // Cut inside the voxel data: the header inflates, the voxels end early.
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert_one_line_error(&info(&file), &[&show(&file), "truncated"]);
}

#[test]
fn info_on_a_corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corrupt.nii.gz");
    write_volume(&file, [24, 24, 24], 0);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 32] {
        *b = 0xff;
    }
    std::fs::write(&file, &bytes).unwrap();
    assert_one_line_error(&info(&file), &[&show(&file), "corrupt gzip"]);
}

#[test]
fn info_on_impossible_dims() {
    let dir = tempfile::tempdir().unwrap();
    // NIfTI-1 keeps dim[0..8] as little-endian i16 from byte 40.
    for (k, value, problem) in [
        (0, 0i16, "dim[0] = 0"),
        (0, 9, "dim[0] = 9"),
        (2, -6, "dim[2] = -6"),
    ] {
        let file = dir.path().join(format!("dims_{k}_{value}.nii"));
        write_volume(&file, [8, 6, 4], 0);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[40 + 2 * k..42 + 2 * k].copy_from_slice(&value.to_le_bytes());
        std::fs::write(&file, &bytes).unwrap();
        assert_one_line_error(&info(&file), &[&show(&file), "impossible dims", problem]);
    }
}

#[test]
fn info_on_image_and_label_of_different_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_brats_case(dir.path(), "Brats_test_1", [8, 6, 4]);
    let seg = case.join("Brats_test_1_seg.nii.gz");
    write_label(&seg, &brats_label([8, 6, 5]), &geometry([8, 6, 5]), None).unwrap();
    assert_one_line_error(
        &info(&case),
        &[
            &show(&seg),
            "label shape 8x6x5 differs from the image shape 8x6x4",
        ],
    );
}

#[test]
fn info_on_modalities_of_different_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_brats_case(dir.path(), "Brats_test_1", [8, 6, 4]);
    let t2 = case.join("Brats_test_1_t2.nii.gz");
    write_volume(&t2, [8, 7, 4], 3);
    assert_one_line_error(
        &info(&case),
        &[
            &show(&t2),
            "T2w image (8x7x4",
            "does not match the FLAIR image (8x6x4",
        ],
    );
}

#[test]
fn info_on_an_unknown_label_value() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_brats_case(dir.path(), "Brats_test_1", [8, 6, 4]);
    let seg = case.join("Brats_test_1_seg.nii.gz");
    let mut label = brats_label([8, 6, 4]);
    label[[3, 2, 1]] = 5;
    write_label(&seg, &label, &geometry([8, 6, 4]), None).unwrap();
    assert_one_line_error(&info(&case), &[&show(&seg), "unknown label value 5"]);
}

#[test]
fn info_on_a_nan_voxel() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nan.nii.gz");
    let mut image = varied_volume([8, 6, 4], 0);
    image[[0, 5, 4, 3]] = f32::NAN;
    write_image(&file, &image, &geometry([8, 6, 4]), "float32").unwrap();
    assert_one_line_error(&info(&file), &[&show(&file), "voxel (5, 4, 3) holds NaN"]);
}

/// A valid 4-D MSD-style image (4 channels) for commands that must fail for another reason.
fn write_four_channel_image(path: &Path, channels: usize) {
    let shape = [8, 8, 8];
    let image = Array4::from_shape_fn((channels, 8, 8, 8), |(c, x, y, z)| (c + x + y + z) as f32);
    write_image(path, &image, &geometry(shape), "int16").unwrap();
}

#[test]
fn predict_with_a_missing_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("case.nii.gz");
    write_four_channel_image(&input, 4);
    let model = dir.path().join("no_such_model.safetensors");
    let out = dir.path().join("predictions");
    let output = brainseg!("predict", "--input", &input, "--out", &out, "--model", &model);
    assert_one_line_error(&output, &[&show(&model), "cannot read the checkpoint"]);
    assert!(
        !out.exists(),
        "predict created {} before failing",
        out.display()
    );
}

#[test]
fn predict_with_a_corrupt_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("case.nii.gz");
    write_four_channel_image(&input, 4);
    let model = dir.path().join("garbage.safetensors");
    std::fs::write(&model, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
    let out = dir.path().join("predictions");
    let output = brainseg!("predict", "--input", &input, "--out", &out, "--model", &model);
    assert_one_line_error(
        &output,
        &[&show(&model), "not a valid safetensors checkpoint"],
    );
    assert!(
        !out.exists(),
        "predict created {} before failing",
        out.display()
    );
}

#[test]
fn predict_on_a_three_channel_image() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("tiny.safetensors");
    let config = UNet3dConfig {
        depth: 2,
        base_filters: 2,
        ..UNet3dConfig::default()
    };
    let model = UNet3d::new(&config, 0, &cpu_device()).unwrap();
    save_checkpoint(&model, &model_path, StorageDtype::F32).unwrap();
    let input = dir.path().join("three.nii.gz");
    write_four_channel_image(&input, 3);
    let out = dir.path().join("predictions");
    let output = brainseg!(
        "predict",
        "--input",
        &input,
        "--out",
        &out,
        "--model",
        &model_path
    );
    assert_user_error(&output, &[&show(&input), "4 channels", "3 volumes"]);
    assert_eq!(
        files_under(&out),
        Vec::<std::path::PathBuf>::new(),
        "predict left files behind"
    );
}

#[test]
fn evaluate_a_prediction_of_another_shape() {
    let dir = tempfile::tempdir().unwrap();
    let pred = dir.path().join("pred.nii.gz");
    let truth = dir.path().join("truth.nii.gz");
    write_label(
        &pred,
        &Array3::from_elem([8, 6, 4], 1),
        &geometry([8, 6, 4]),
        None,
    )
    .unwrap();
    write_label(
        &truth,
        &Array3::from_elem([8, 6, 5], 1),
        &geometry([8, 6, 5]),
        None,
    )
    .unwrap();
    let (json, csv) = (
        dir.path().join("evaluation.json"),
        dir.path().join("evaluation.csv"),
    );
    let output =
        brainseg!("evaluate", "--pred", &pred, "--truth", &truth, "--json", &json, "--csv", &csv);
    assert_user_error(
        &output,
        &[
            &show(&pred),
            &show(&truth),
            "shape [8, 6, 4] differs from the ground truth's [8, 6, 5]",
        ],
    );
    assert!(
        !json.exists() && !csv.exists(),
        "evaluate wrote a summary of no case"
    );
}

#[test]
fn convert_of_a_dataset_with_a_broken_case() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("raw");
    write_brats_case(&src, "Brats_a_1", [8, 6, 4]);
    let broken = write_brats_case(&src, "Brats_b_1", [8, 6, 4]);
    let seg = broken.join("Brats_b_1_seg.nii.gz");
    write_label(
        &seg,
        &Array3::from_elem([8, 6, 4], 7),
        &geometry([8, 6, 4]),
        None,
    )
    .unwrap();
    let out = dir.path().join("msd");
    let output = brainseg!("convert", &src, &out);
    assert_one_line_error(&output, &[&show(&seg), "unknown label value 7"]);
    // dataset.json is what makes a folder a dataset: it must not exist after a failed conversion.
    assert!(
        !out.join("dataset.json").exists(),
        "a failed convert left a dataset.json"
    );
}

#[test]
fn train_with_a_patch_the_network_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_brats_case(&data, "Brats_a_1", [16, 16, 8]);
    let run = dir.path().join("run");
    // Depth 3 halves twice: every side must be a multiple of 4.
    let output =
        brainseg!("train", "--data", &data, "--out", &run, "--patch", "16,14,8", "--depth", "3");
    assert_one_line_error(&output, &["16x14x8", "multiple of 4"]);
    // Nothing is left that would make the corrected command fail with "already holds a run".
    assert!(
        !run.exists(),
        "a refused training start left {}",
        run.display()
    );
}

#[test]
fn show_with_a_point_outside_the_volume() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_brats_case(dir.path(), "Brats_a_1", [16, 16, 8]);
    let seg = case.join("Brats_a_1_seg.nii.gz");
    let pictures = dir.path().join("pictures");
    let output = brainseg!(
        "show", "--input", &case, "--pred", &seg, "--labels", "brats", "--out", &pictures,
        "--point", "3,16,2"
    );
    assert_one_line_error(
        &output,
        &["--point [3, 16, 2] is outside the volume [16, 16, 8]"],
    );
    assert_eq!(
        files_under(&pictures),
        Vec::<std::path::PathBuf>::new(),
        "show drew pictures before failing"
    );
}
