//! What a new user meets in the first hour: prediction folders that say where they came from,
//! numberings read back or guessed aloud, decoded cases shared between runs, and progress that
//! reads well in a log file.
mod common;

use brainseg_volume::synthetic::{write_dataset, SyntheticConfig};
use common::{text, train_tiny_model};
use serde_json::Value;
use std::path::Path;

/// A tiny labelled dataset and a model trained on it in a second.
fn dataset_and_model(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    let config = SyntheticConfig {
        shape: [32, 32, 16],
        ..SyntheticConfig::default()
    };
    write_dataset(&data, 3, &config, 11).unwrap();
    let model = train_tiny_model(&data, &dir.join("run"));
    (data, model)
}

#[test]
fn predictions_record_their_model_and_refuse_another() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = dataset_and_model(dir.path());
    let out = dir.path().join("pred");
    brainseg_ok!("predict", "-i", &data, "-o", &out, "--model", &model, "--labels", "brats");
    let record: Value =
        serde_json::from_slice(&std::fs::read(out.join("predictions.json")).unwrap()).unwrap();
    assert_eq!(record["numbering"], "Brats");
    assert_eq!(record["model"], model.display().to_string());
    // FNV-1a 64 of the model file's bytes, computed here independently.
    let bytes = std::fs::read(&model).unwrap();
    let fnv = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    assert_eq!(record["model_fingerprint"], format!("{fnv:016x}"));
    let cases = record["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 3, "a time for each case: {record}");
    // Another number of tiles per model call is not another option: the folder is not refused,
    // and the maps come out byte for byte the same.
    let map_before = std::fs::read(out.join("synthetic_001.nii.gz")).unwrap();
    brainseg_ok!(
        "predict",
        "-i",
        &data,
        "-o",
        &out,
        "--model",
        &model,
        "--labels",
        "brats",
        "--batch-size",
        "2"
    );
    assert_eq!(
        std::fs::read(out.join("synthetic_001.nii.gz")).unwrap(),
        map_before
    );
    // The same folder with other options (another numbering) is refused, and nothing changes.
    let before = std::fs::read(out.join("predictions.json")).unwrap();
    let refused = brainseg!("predict", "-i", &data, "-o", &out, "--model", &model);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("another model or other options"));
    assert_eq!(std::fs::read(out.join("predictions.json")).unwrap(), before);
    // evaluate reads the numbering from the record: BraTS maps scored right without a flag.
    let scored = brainseg!("evaluate", "-i", &out, "--truth", &data);
    assert!(scored.status.success(), "{}", text(&scored.stderr));
    assert!(
        !text(&scored.stderr).contains("warning"),
        "{}",
        text(&scored.stderr)
    );
    // Each map names its numbering in its header, so a copy on its own still tells it.
    let map = out.join("synthetic_001.nii.gz");
    let header = brainseg_volume::nifti_io::read_header(&map).unwrap();
    let description = String::from_utf8_lossy(&header.descrip);
    assert_eq!(
        description.trim_end_matches('\0'),
        "brainseg labels, BraTS numbering: 1 necrotic core, 2 edema, 4 enhancing"
    );
    // Colour tables for ITK-SNAP and 3D Slicer, in the folder's numbering (BraTS 4 = enhancing).
    let slicer = std::fs::read_to_string(out.join("labels.ctbl")).unwrap();
    assert!(
        slicer.contains("\n4 enhancing_tumour 0 0 255 255\n"),
        "{slicer}"
    );
    let itksnap = std::fs::read_to_string(out.join("labels.itksnap.txt")).unwrap();
    assert!(
        itksnap.contains("ITK-SnAP Label Description File"),
        "{itksnap}"
    );
}

#[test]
fn keep_largest_leaves_one_tumour_per_map_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = dataset_and_model(dir.path());
    let out = dir.path().join("pred");
    brainseg_ok!(
        "predict",
        "-i",
        &data,
        "-o",
        &out,
        "--model",
        &model,
        "--keep-largest",
        "true"
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(out.join("predictions.json")).unwrap()).unwrap();
    assert_eq!(record["inference"]["keep_largest_tumour"], true);
    for case in ["synthetic_001", "synthetic_002", "synthetic_003"] {
        let (labels, _) = brainseg_volume::read_label(&out.join(format!("{case}.nii.gz"))).unwrap();
        // Flood-fill the tumour from one voxel (26-connectivity): it must reach every tumour voxel.
        let (nx, ny, nz) = labels.dim();
        let tumour: Vec<[usize; 3]> = labels
            .indexed_iter()
            .filter(|(_, &v)| v != 0)
            .map(|((i, j, k), _)| [i, j, k])
            .collect();
        let Some(&start) = tumour.first() else {
            continue;
        };
        let mut seen = std::collections::HashSet::from([start]);
        let mut stack = vec![start];
        while let Some([i, j, k]) = stack.pop() {
            for a in i.saturating_sub(1)..=(i + 1).min(nx - 1) {
                for b in j.saturating_sub(1)..=(j + 1).min(ny - 1) {
                    for c in k.saturating_sub(1)..=(k + 1).min(nz - 1) {
                        if labels[[a, b, c]] != 0 && seen.insert([a, b, c]) {
                            stack.push([a, b, c]);
                        }
                    }
                }
            }
        }
        assert_eq!(
            seen.len(),
            tumour.len(),
            "{case}: more than one tumour component"
        );
    }
}

#[test]
fn a_numbering_that_cannot_be_told_is_guessed_aloud() {
    let dir = tempfile::tempdir().unwrap();
    // Labels 0, 1 and 2 only: MSD and BraTS both allow them.
    let labels = ndarray::Array3::from_shape_fn((8, 8, 8), |(x, _, _)| (x % 3) as u8);
    let file = dir.path().join("case.nii.gz");
    brainseg_volume::write_label(&file, &labels, &common::geometry([8, 8, 8]), None).unwrap();
    let out = brainseg!("evaluate", "-i", &file, "--truth", &file);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("neither label 3 nor 4"), "{stderr}");
    // Told, it says nothing.
    let told = brainseg!(
        "evaluate",
        "-i",
        &file,
        "--truth",
        &file,
        "--pred-labels",
        "msd",
        "--truth-labels",
        "msd"
    );
    assert!(!text(&told.stderr).contains("neither label 3 nor 4"));
}

#[test]
fn a_second_run_reuses_the_decoded_cases_and_logs_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let data = dir.path().join("data");
    let config = SyntheticConfig {
        shape: [32, 32, 16],
        ..SyntheticConfig::default()
    };
    write_dataset(&data, 3, &config, 5).unwrap();
    let train = |run: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_brainseg"))
            .args([
                "train",
                "--patch",
                "16,16,8",
                "--depth",
                "2",
                "--base-filters",
                "2",
            ])
            .args([
                "--epochs",
                "1",
                "--steps-per-epoch",
                "1",
                "--batch-size",
                "1",
            ])
            .args(["--valid-patches", "1", "-i"])
            .arg(&data)
            .arg("-o")
            .arg(dir.path().join(run))
            .env("BRAINSEG_CACHE", &cache)
            .output()
            .unwrap()
    };
    let first = train("run1");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let entries = |suffix: &str| {
        std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .filter(|e| e.path().to_string_lossy().ends_with(suffix))
            .map(|e| (e.path(), e.metadata().unwrap().modified().unwrap()))
            .collect::<Vec<_>>()
    };
    let decoded = entries(".i16");
    assert_eq!(decoded.len(), 3, "one entry per case");
    let second = train("run2");
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        entries(".i16"),
        decoded,
        "the second run decoded nothing again"
    );
    assert!(
        !dir.path().join("run2").join("cache").exists(),
        "no cache of its own"
    );
    // Standard error is not a terminal here: an epoch is one plain line, no bar drawing.
    let log = text(&second.stderr);
    assert!(
        log.lines().any(|l| l.starts_with("epoch   1: train loss")),
        "{log}"
    );
    assert!(
        !log.contains('\r') && !log.contains("\u{1b}["),
        "no terminal control codes: {log:?}"
    );
}
