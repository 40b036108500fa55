//! Tests of the report: hand-built run and prediction folders, the page's text and tables.
use super::*;
use brainseg_infer::InferenceConfig;
use brainseg_volume::{write_label, Geometry};
use ndarray::{s, Array3};
use std::collections::BTreeMap;

/// A table row as the page writes it: numbers (and "-") in cells of class "n".
fn row(cells: &[&str]) -> String {
    let cells: String = cells
        .iter()
        .map(|cell| {
            if *cell == "-" || cell.parse::<f64>().is_ok() {
                format!("<td class=\"n\">{cell}</td>")
            } else {
                format!("<td>{cell}</td>")
            }
        })
        .collect();
    format!("<tr>{cells}</tr>")
}

/// A folder holding only what `predict` writes: two label maps and predictions.json.
fn titled(title: &str) -> ReportOptions {
    ReportOptions {
        title: title.into(),
        ..ReportOptions::default()
    }
}

fn predictions_only() -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    let layout = PredictionLayout::new(folder.path());
    // Voxels of 4 x 5 x 5 mm = 0.1 mL: 10 edema voxels (1 mL), 4 enhancing (0.4 mL).
    let geometry = Geometry::synthetic([8, 6, 5], [4.0, 5.0, 5.0]);
    let mut labels = Array3::<u8>::zeros((8, 6, 5));
    labels.slice_mut(s![0..5, 0..2, 0]).fill(1);
    labels.slice_mut(s![6..8, 4..6, 4]).fill(3);
    write_label(
        &layout.label_map("case_a"),
        &labels,
        &geometry,
        Some(LabelNumbering::Msd),
    )
    .unwrap();
    write_label(
        &layout.label_map("case_b"),
        &Array3::<u8>::zeros((8, 6, 5)),
        &geometry,
        Some(LabelNumbering::Msd),
    )
    .unwrap();
    let record = Provenance {
        brainseg_version: "9.9.9".into(),
        model: "models/unet_seed_epoch10.safetensors".into(),
        model_fingerprint: "0123456789abcdef".into(),
        numbering: LabelNumbering::Msd,
        inference: InferenceConfig::default(),
        labels: crate::segment::LabelOptions::default(),
        probabilities: false,
        cases: BTreeMap::from([("case_a".to_string(), 12.34), ("case_b".to_string(), 5.0)]),
    };
    std::fs::write(
        layout.provenance(),
        serde_json::to_string_pretty(&record).unwrap(),
    )
    .unwrap();
    folder
}

#[test]
fn a_folder_of_predictions_alone_is_reported() {
    let folder = predictions_only();
    let html = build(folder.path(), &titled("predictions"))
        .unwrap()
        .to_html();
    assert!(html.contains("<h2>Predictions</h2>"), "{html}");
    assert!(
        html.contains("Model: models/unet_seed_epoch10.safetensors (fingerprint 0123456789abcdef)")
    );
    assert!(html.contains("MSD numbering"));
    assert!(
        html.contains(&row(&["Tile size (voxels)", "160 x 160 x 16"])),
        "{html}"
    );
    // case_a: 12.3 s; edema 10 x 0.1 mL, no non-enhancing, enhancing 4 x 0.1 mL, whole tumour 1.4 mL.
    assert!(
        html.contains(&row(&["case_a", "12.3", "1.00", "0.00", "0.40", "1.40"])),
        "{html}"
    );
    assert!(
        html.contains(row(&["case_b", "5.0", "0.00"]).trim_end_matches("</tr>")),
        "{html}"
    );
    assert!(!html.contains("<h2>Evaluation</h2>"));
}

#[test]
fn an_empty_folder_has_nothing_to_report() {
    let folder = tempfile::tempdir().unwrap();
    let error = build(folder.path(), &titled("nothing")).unwrap_err();
    assert!(error.to_string().contains("nothing to report"), "{error}");
}

#[test]
fn evaluation_is_two_tables_with_names_and_undefined_explained() {
    use brainseg_metrics::{CaseMetrics, CaseRow};
    let folder = tempfile::tempdir().unwrap();
    let mut truth = Array3::<u8>::zeros((10, 10, 10));
    truth.slice_mut(s![2..6, 2..6, 2..6]).fill(1);
    let mut pred = truth.clone();
    pred.slice_mut(s![2..6, 2..6, 2..3]).fill(0);
    // Edema only: Dice 2 * 48 / (48 + 64) = 0.8571; the other classes are absent from both maps.
    let metrics = CaseMetrics::compute(pred.view(), truth.view(), [1.0; 3]).unwrap();
    let summary = Summary::new(vec![CaseRow {
        case: "case_a".into(),
        metrics,
    }]);
    let layout = PredictionLayout::new(folder.path());
    std::fs::write(layout.evaluation_json(), summary.to_json()).unwrap();
    let html = build(folder.path(), &titled("evaluation"))
        .unwrap()
        .to_html();
    assert!(!html.contains("<pre>"), "no monospace block: {html}");
    assert!(html.contains("<th colspan=\"3\" class=\"group\">edema</th>"));
    assert!(html.contains("<th colspan=\"2\" class=\"group\">WT (whole tumour)</th>"));
    assert!(html.contains("TC (tumour core), ET (enhancing tumour)"));
    assert!(html.contains(summary.hd95_convention.description()));
    assert!(
        html.contains(
            row(&["case_a", "0.8571", "0.7500", "1.0000", "-"]).trim_end_matches("</tr>")
        ),
        "{html}"
    );
    // The undefined row: edema defined; non-enhancing and enhancing Dice and sensitivity undefined.
    assert!(
        html.contains(&row(&[
            "undefined",
            "0",
            "0",
            "0",
            "1",
            "1",
            "0",
            "1",
            "1",
            "0"
        ])),
        "{html}"
    );
    assert!(html.contains("Dice is undefined when the class is absent from both maps"));
}

#[test]
fn run_settings_are_a_table() {
    let folder = tempfile::tempdir().unwrap();
    let config = r#"{"data": "d", "model": {"depth": 4, "base_filters": 32, "targets": "Classes",
        "normalisation": "None"}, "sampling": {"patch": {"size": [160, 160, 16]}, "batch_size": 1,
        "standardization": "seed_slices", "augment": {"flip": true, "scale": false, "scale_range": 0.1,
        "shift": true, "shift_range": 0.2}}, "epochs": 10, "steps_per_epoch": 100,
        "learning_rate": 0.0001, "loss": "soft_dice", "seed": 7}"#;
    std::fs::write(folder.path().join("config.json"), config).unwrap();
    let html = build(folder.path(), &titled("run")).unwrap().to_html();
    for expected in [
        row(&["Model depth (encoder levels)", "4"]),
        row(&["Patch size (voxels)", "160 x 160 x 16"]),
        row(&["Learning rate", "0.0001"]),
        row(&["Loss", "soft Dice (notebook)"]),
        row(&[
            "Augmentation",
            "random flips of each axis; intensity shift ±0.2 sd",
        ]),
        row(&["Seed", "7"]),
    ] {
        assert!(html.contains(&expected), "{expected} missing:\n{html}");
    }
    assert!(html.contains("<details><summary>Every setting (config.json)</summary>"));
}

#[test]
fn pictures_are_ordered_and_captioned_by_kind() {
    let names = [
        "c1_slices_prediction.gif",
        "c1_patch.png",
        "c1_grid_prediction.png",
        "c1_grid_ground_truth.png",
        "c1_comparison.png",
        "other.png",
    ];
    let mut paths: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
    paths.sort_by_key(|p| picture_order(p));
    let sorted: Vec<String> = paths.iter().map(|p| file_name(p)).collect();
    assert_eq!(
        sorted,
        [
            "c1_comparison.png",
            "c1_grid_ground_truth.png",
            "c1_grid_prediction.png",
            "c1_slices_prediction.gif",
            "c1_patch.png",
            "other.png"
        ]
    );
    assert_eq!(
        picture_caption(Path::new("c1_grid_prediction.png")),
        "c1: slice grid of the prediction (c1_grid_prediction.png)"
    );
}
