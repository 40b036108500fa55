//! The `brainseg` binary end to end: on real BraTS cases (info, convert, evaluate) and a tiny
//! train -> predict -> evaluate -> show -> report chain on a synthetic dataset. Expected values are
//! computed here from the files with the library, not taken from the CLI.
#[macro_use]
mod common;

use brainseg_volume::nifti_io::{dtype_name, read_header};
use brainseg_volume::synthetic::{write_dataset, SyntheticConfig};
use brainseg_volume::{read_image, read_label, Dataset, LabelNumbering};
use common::*;
use serde_json::Value;
use std::path::Path;

const CASE: &str = "brats2018/Brats18_2013_2_1";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn info_json_label_counts_match_the_raw_segmentation() {
    let case = shared(CASE);
    let report = json(&brainseg_ok!("info", &case, "--json"));

    // Independent count: the raw BraTS file, values as stored, renumbered here (1 -> 2, 2 -> 1, 4 -> 3).
    let (raw, _) = read_label(&case.join("Brats18_2013_2_1_seg.nii.gz")).unwrap();
    let count = |v: u8| raw.iter().filter(|&&x| x == v).count() as u64;
    let expected = [count(0), count(2), count(1), count(4)];
    assert_eq!(
        expected.iter().sum::<u64>(),
        240 * 240 * 155,
        "the raw file holds a value outside 0, 1, 2, 4"
    );
    assert!(
        expected[1..].iter().all(|&n| n > 0),
        "this case has every tumour class"
    );

    let labels = report["labels"].as_array().expect("labels");
    let got: Vec<(u64, u64)> = labels
        .iter()
        .map(|l| (l["label"].as_u64().unwrap(), l["voxels"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, expected[0]),
            (1, expected[1]),
            (2, expected[2]),
            (3, expected[3])
        ]
    );

    assert_eq!(report["layout"], "Brats");
    assert_eq!(report["cases"], serde_json::json!(["Brats18_2013_2_1"]));
    let volumes = report["volumes"].as_array().expect("volumes");
    let names: Vec<&str> = volumes
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["FLAIR", "T1w", "T1Gd", "T2w"]);
    let flair = read_image(&case.join("Brats18_2013_2_1_flair.nii.gz")).unwrap();
    let flair_max = flair.data.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    assert_eq!(volumes[0]["max"].as_f64().unwrap() as f32, flair_max);
    assert_eq!(volumes[0]["shape"], serde_json::json!([240, 240, 155]));
    assert_eq!(volumes[0]["dtype"], "int16");
    assert_eq!(volumes[0]["orientation"], "LPS");
}

#[test]
fn convert_round_trip_keeps_every_voxel() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    let ids = ["Brats18_2013_2_1", "Brats18_2013_3_1"];
    for id in ids {
        std::os::unix::fs::symlink(shared(&format!("brats2018/{id}")), raw.join(id)).unwrap();
    }
    let msd = dir.path().join("msd");
    let stdout = brainseg_ok!("convert", &raw, &msd);
    assert!(stdout.contains("wrote 2 case(s)"), "{stdout}");

    let report = json(&brainseg_ok!("info", &msd, "--json"));
    assert_eq!(report["layout"], "Msd");
    assert_eq!(report["cases"], serde_json::json!(ids));

    let (source, converted) = (Dataset::open(&raw).unwrap(), Dataset::open(&msd).unwrap());
    for id in ids {
        let before = source.case(id).unwrap().load().unwrap();
        let after = converted.case(id).unwrap().load().unwrap();
        assert!(before.image == after.image, "{id}: image voxels changed");
        assert!(before.label == after.label, "{id}: label voxels changed");
        assert_eq!(
            before.geometry.canonical_affine(),
            after.geometry.canonical_affine(),
            "{id}: geometry changed"
        );
        // int16 sources stay int16 (lossless, half the size of float32).
        assert_eq!(
            dtype_name(&read_header(&msd.join(format!("imagesTr/{id}.nii.gz"))).unwrap()),
            "int16"
        );
        // labelsTr holds MSD numbering on disk: the raw BraTS 4 (enhancing) is 3 there.
        let (stored, _) = read_label(&msd.join(format!("labelsTr/{id}.nii.gz"))).unwrap();
        assert!(
            stored.iter().all(|&v| v <= 3),
            "{id}: labelsTr is not in MSD numbering"
        );
    }
}

#[test]
fn evaluate_a_label_map_against_itself() {
    let label = shared("msd-labels/BRATS_001.nii.gz");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("evaluation.json");
    brainseg_ok!("evaluate", "--pred", &label, "--truth", &label, "--json", &out);
    let summary = json(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(summary["cases"].as_array().unwrap().len(), 1);
    let metrics = summary["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 15);
    for stats in metrics {
        let key = stats["metric"].as_str().unwrap();
        let perfect = if key.ends_with("_hd95") { 0.0 } else { 1.0 };
        // Specificity is undefined only when a class fills the volume; the rest are defined for this case.
        assert_eq!(stats["defined"], 1, "{key} undefined");
        assert_eq!(stats["mean"].as_f64(), Some(perfect), "{key}");
    }
}

/// Whole-tumour Dice by hand: 2|P ∩ T| / (|P| + |T|), 1 when both are empty.
fn whole_tumour_dice(pred: &ndarray::Array3<u8>, truth: &ndarray::Array3<u8>) -> f64 {
    let (mut both, mut p, mut t) = (0usize, 0usize, 0usize);
    for (&a, &b) in pred.iter().zip(truth) {
        p += (a > 0) as usize;
        t += (b > 0) as usize;
        both += (a > 0 && b > 0) as usize;
    }
    if p + t == 0 {
        1.0
    } else {
        2.0 * both as f64 / (p + t) as f64
    }
}

fn assert_file(path: &Path) {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "{} is missing or empty", path.display());
}

#[test]
fn train_predict_evaluate_show_report_on_synthetic_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = SyntheticConfig {
        shape: [32, 32, 16],
        ..SyntheticConfig::default()
    };
    let ids = write_dataset(&data, 3, &config, 11).unwrap();

    // Train: one tiny step.
    let run = dir.path().join("run");
    brainseg_ok!(
        "train",
        "--data",
        &data,
        "--out",
        &run,
        "--patch",
        "16,16,8",
        "--depth",
        "2",
        "--base-filters",
        "2",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "1",
        "--valid-patches",
        "1"
    );
    for file in [
        "config.json",
        "split.json",
        "metrics.csv",
        "curves.png",
        "best.safetensors",
    ] {
        assert_file(&run.join(file));
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        2,
        "a header and one epoch:\n{metrics}"
    );
    let model = run.join("best.safetensors");

    // Predict in MSD numbering with probabilities, then in BraTS numbering.
    let msd = dir.path().join("pred_msd");
    brainseg_ok!(
        "predict",
        "--input",
        &data,
        "--out",
        &msd,
        "--model",
        &model,
        "--probabilities"
    );
    let brats = dir.path().join("pred_brats");
    brainseg_ok!(
        "predict", "--input", &data, "--out", &brats, "--model", &model, "--labels", "brats"
    );
    for id in &ids {
        let image = read_image(&data.join(format!("imagesTr/{id}.nii.gz"))).unwrap();
        let (msd_map, geometry) = read_label(&msd.join(format!("{id}.nii.gz"))).unwrap();
        assert_eq!(
            msd_map.shape(),
            &image.data.shape()[1..],
            "{id}: label map shape"
        );
        assert_eq!(geometry.source_shape, image.geometry.source_shape, "{id}");
        assert_eq!(
            geometry.source_affine(),
            image.geometry.source_affine(),
            "{id}: label map affine"
        );
        assert_eq!(
            read_header(&msd.join(format!("{id}.nii.gz"))).unwrap().dim[0],
            3
        );
        assert!(
            msd_map.iter().all(|&v| v <= 3),
            "{id}: MSD map holds a value above 3"
        );

        let (brats_map, _) = read_label(&brats.join(format!("{id}.nii.gz"))).unwrap();
        assert!(
            !brats_map.iter().any(|&v| v == 3),
            "{id}: a BraTS map holds 3"
        );
        assert_eq!(
            brats_map,
            msd_map.mapv(|v| LabelNumbering::Brats.from_msd(v)),
            "{id}: the two numberings disagree"
        );

        let probabilities = msd.join(format!("{id}_probabilities.nii.gz"));
        let header = read_header(&probabilities).unwrap();
        assert_eq!(
            (header.dim[0], header.dim[4]),
            (4, 3),
            "{id}: probabilities are 4-D with 3 channels"
        );
        let maps = read_image(&probabilities).unwrap();
        assert_eq!(&maps.data.shape()[1..], &image.data.shape()[1..]);
        assert_eq!(
            maps.geometry.source_affine(),
            image.geometry.source_affine()
        );
        assert!(
            maps.data.iter().all(|p| (0.0..=1.0).contains(p)),
            "{id}: a probability outside [0, 1]"
        );
        assert!(
            !brats.join(format!("{id}_probabilities.nii.gz")).exists(),
            "probabilities written without --probabilities"
        );
    }

    // Evaluate: per-case whole-tumour Dice equals the one computed here.
    let evaluation = msd.join("evaluation.json");
    brainseg_ok!(
        "evaluate",
        "--pred",
        &msd,
        "--truth",
        &data,
        "--json",
        &evaluation
    );
    let summary = json(&std::fs::read_to_string(&evaluation).unwrap());
    let cases = summary["cases"].as_array().unwrap();
    assert_eq!(
        cases
            .iter()
            .map(|c| c["case"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ids
    );
    for case in cases {
        let id = case["case"].as_str().unwrap();
        let (pred, _) = read_label(&msd.join(format!("{id}.nii.gz"))).unwrap();
        let (truth, _) = read_label(&data.join(format!("labelsTr/{id}.nii.gz"))).unwrap();
        let dice = case["metrics"]["whole_tumour"]["dice"].as_f64().unwrap();
        assert!(
            (dice - whole_tumour_dice(&pred, &truth)).abs() < 1e-9,
            "{id}: WT Dice {dice}"
        );
    }
    // The BraTS-numbered maps score the same once their numbering is given.
    let brats_json = brats.join("evaluation.json");
    brainseg_ok!(
        "evaluate",
        "--pred",
        &brats,
        "--pred-labels",
        "brats",
        "--truth",
        &data,
        "--json",
        &brats_json
    );
    assert_eq!(
        json(&std::fs::read_to_string(&brats_json).unwrap())["cases"],
        summary["cases"]
    );

    // Show: the pictures, PNG files, of the case's ground truth and of the prediction, each named.
    let pictures = msd.join("pictures");
    let first = &ids[0];
    let shown = brainseg_ok!(
        "show",
        "--input",
        &data,
        "--case",
        first,
        "--pred",
        msd.join(format!("{first}.nii.gz")),
        "--out",
        &pictures,
        "--no-gif"
    );
    assert!(
        shown.contains("drawing the ground truth (the case's label map) and the prediction (from"),
        "show does not say what it drew:\n{shown}"
    );
    for kind in [
        "grid_ground_truth",
        "grid_prediction",
        "patch",
        "comparison",
    ] {
        let png = std::fs::read(pictures.join(format!("{first}_{kind}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{kind} is not a PNG");
        assert!(shown.contains(&format!("{first}_{kind}.png")), "{shown}");
    }
    assert_ne!(
        std::fs::read(pictures.join(format!("{first}_grid_ground_truth.png"))).unwrap(),
        std::fs::read(pictures.join(format!("{first}_grid_prediction.png"))).unwrap(),
        "the prediction's grid is drawn from the prediction"
    );
    for map in ["ground_truth", "prediction"] {
        assert!(
            !pictures.join(format!("{first}_slices_{map}.gif")).exists(),
            "--no-gif wrote a GIF"
        );
    }

    // Report: the prediction folder (predictions.json, evaluation + pictures) and the run (config + curves).
    brainseg_ok!("report", &msd);
    let page = std::fs::read_to_string(msd.join("report.html")).unwrap();
    assert!(
        page.contains("<h2>Predictions</h2>")
            && page.contains("<h2>Evaluation</h2>")
            && page.contains(&format!("{first}_comparison.png")),
        "prediction report lacks sections"
    );
    assert_eq!(
        page.matches("data:image/png;base64,").count(),
        4,
        "the four pictures are embedded"
    );
    brainseg_ok!("report", &run);
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains("Training run") && page.contains("Training curves"),
        "run report lacks sections"
    );

    // Resume with more epochs: epoch 1 kept as it was, epoch 2 added.
    brainseg_ok!("train", "--resume", &run, "--epochs", "2");
    let extended = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(
        extended.lines().count(),
        3,
        "a header and two epochs:\n{extended}"
    );
    assert!(
        extended.starts_with(&metrics),
        "resume rewrote epoch 1:\n{metrics}\n{extended}"
    );
    assert!(
        extended.lines().nth(2).unwrap().starts_with("2,"),
        "{extended}"
    );
    // Resume of a finished run: nothing to do, exit 0, the run untouched.
    let stdout = brainseg_ok!("train", "--resume", &run);
    assert!(stdout.contains("nothing left to train"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.csv")).unwrap(),
        extended
    );
}
