//! One self-contained HTML page for a training run or a prediction folder, from what the other
//! steps wrote: a run's `config.json`, `metrics.csv` and `curves.png`, a prediction folder's
//! `predictions.json` and label maps, an `evaluation.json`, and the PNG/GIF pictures in the folder
//! or its `pictures/` subfolder. Whatever of these the folder holds is shown; a folder with none
//! of them is an error.
use crate::layout::{is_nifti, PredictionLayout, PROBABILITIES_SUFFIX};
use crate::segment::Provenance;
use crate::{Error, Result};
use brainseg_core::{Class, LabelNumbering, Region};
use brainseg_infer::Tiling;
use brainseg_metrics::{MetricStats, Summary};
use brainseg_train::RunLayout;
use brainseg_visualize::{HtmlReport, Section};
use brainseg_volume::{read_label_msd, Case, Dataset};
use ndarray::Array3;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What a report shows beyond the folder's own files (the command line's flags, with `clap`).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ReportOptions {
    /// Page title.
    #[cfg_attr(feature = "clap", arg(long, default_value = "brainseg report"))]
    pub title: String,
    /// The predicted cases' images (a dataset or case folder): cases found there get the
    /// interactive viewer, volumes inside the page (~15 MB each)
    #[cfg_attr(feature = "clap", arg(long, value_name = "DATASET"))]
    pub images: Option<PathBuf>,
    /// How many cases get a viewer (with --images)
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 3))]
    pub viewers: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "brainseg report".into(),
            images: None,
            viewers: 3,
        }
    }
}

/// The page for `dir`, a run folder or a prediction folder.
pub fn build(dir: &Path, options: &ReportOptions) -> Result<HtmlReport> {
    let title = options.title.as_str();
    if !dir.is_dir() {
        return Err(Error::invalid(format!("{}: not a folder", dir.display())));
    }
    let run = RunLayout::new(dir);
    let predictions = PredictionLayout::new(dir);
    let mut sections = Vec::new();
    if let Ok(config) = std::fs::read_to_string(run.config()) {
        sections.push(training_run(dir, &config));
    }
    if let Ok(metrics) = std::fs::read_to_string(run.metrics()) {
        let (header, rows) = epoch_table(&metrics);
        let mut section = Section::new("Training curves").table(header, rows);
        if let Ok(png) = std::fs::read(run.curves()) {
            section = section.png("Loss and validation Dice per epoch", png);
        }
        sections.push(section);
    }
    if let Some(section) = prediction_section(&predictions)? {
        sections.push(section);
    }
    if let Some(images) = &options.images {
        let numbering = Provenance::read(&predictions)?.map(|p| p.numbering);
        let dataset = Dataset::open(images)?;
        let mut cases = Vec::new();
        for (id, map) in label_maps(&predictions).into_iter().take(options.viewers) {
            let Some(source) = dataset.case(&id) else {
                continue;
            };
            let case = source.load()?;
            let (_, x, y, z) = case.image.dim();
            let pred = read_label_msd(&map, numbering, Some([x, y, z]))?.labels;
            cases.push((case, Some(pred)));
        }
        if cases.is_empty() {
            return Err(Error::invalid(format!(
                "{}: none of the cases of {} is there, so no viewer can show them",
                images.display(),
                dir.display()
            )));
        }
        sections.push(viewer_section(&cases)?);
    }
    let evaluation = predictions.evaluation_json();
    if evaluation.is_file() {
        let summary: Summary = serde_json::from_slice(&read(&evaluation)?).map_err(|_| {
            Error::invalid(format!(
                "{}: not an evaluation written by `brainseg evaluate --json`",
                evaluation.display()
            ))
        })?;
        sections.push(evaluation_section(&summary));
    }
    let mut pictures = pictures_in(dir, &run.curves());
    pictures.extend(pictures_in(&predictions.pictures(), &run.curves()));
    pictures.sort_by_key(|path| picture_order(path));
    if !pictures.is_empty() {
        let mut section = Section::new("Pictures");
        for path in &pictures {
            let bytes = read(path)?;
            let caption = picture_caption(path);
            section = if path.extension().is_some_and(|e| e == "gif") {
                section.gif(caption, bytes)
            } else {
                section.png(caption, bytes)
            };
        }
        sections.push(section);
    }
    if sections.is_empty() {
        return Err(Error::invalid(format!(
            "{}: nothing to report (no config.json, metrics.csv, predictions.json, label maps, \
             evaluation.json or pictures)",
            dir.display()
        )));
    }
    Ok(sections
        .into_iter()
        .fold(HtmlReport::new(title), HtmlReport::section))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| brainseg_volume::Error::at(path, format!("cannot read: {e}")).into())
}

// ---------------------------------------------------------------------------------------------
// Training run

/// The settings of a run that matter, from `config.json`: what to call them and where they are.
const SETTINGS: [(&str, &str); 19] = [
    ("Model depth (encoder levels)", "/model/depth"),
    ("Filters of the first level", "/model/base_filters"),
    ("Output targets", "/model/targets"),
    ("Normalisation layers", "/model/normalisation"),
    ("Upsampling", "/model/upsampling"),
    ("Output activation", "/model/output_activation"),
    ("Patch size (voxels)", "/sampling/patch/size"),
    (
        "Share of patches centred on tumour",
        "/sampling/patch/foreground_share",
    ),
    ("Batch size", "/sampling/batch_size"),
    ("Epochs", "/epochs"),
    ("Steps per epoch", "/steps_per_epoch"),
    ("Learning rate", "/learning_rate"),
    ("Loss", "/loss"),
    ("Standardisation", "/sampling/standardization"),
    ("Augmentation", "/sampling/augment"),
    ("Seed", "/seed"),
    ("Share of cases for training", "/train_fraction"),
    ("Validation patches per case", "/valid_patches_per_case"),
    ("Data", "/data"),
];

/// The run's settings as a table, the whole `config.json` folded away under it.
fn training_run(dir: &Path, config: &str) -> Section {
    let section = Section::new("Training run").text(format!("Run folder: {}", dir.display()));
    let Ok(json) = serde_json::from_str::<Value>(config) else {
        return section
            .text("config.json is not valid JSON; it is shown as it is.")
            .details("config.json", config);
    };
    let rows: Vec<Vec<String>> = SETTINGS
        .iter()
        .filter_map(|(name, pointer)| {
            let value = json.pointer(pointer)?;
            let shown = if *pointer == "/sampling/augment" {
                augmentation(value)
            } else {
                setting_value(value)
            };
            Some(vec![name.to_string(), shown])
        })
        .collect();
    section
        .table(vec!["setting".into(), "value".into()], rows)
        .details("Every setting (config.json)", config)
}

/// A setting as people read it: sizes as `160 x 160 x 16`, names with spaces, known names explained.
fn setting_value(value: &Value) -> String {
    match value {
        Value::Array(items) => items
            .iter()
            .map(setting_value)
            .collect::<Vec<_>>()
            .join(" x "),
        Value::String(text) => match text.as_str() {
            "seed_slices" | "notebook_slices" => {
                "per patch, channel and z-slice (notebook)".to_string()
            }
            "z_score_brain" => "z-score per channel over brain voxels".to_string(),
            "soft_dice" => "soft Dice (notebook)".to_string(),
            "dice_bce" => "soft Dice + binary cross-entropy".to_string(),
            other => other.replace('_', " "),
        },
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

/// The augmentation settings in a line: "flips; intensity scale ±0.1; intensity shift ±0.1 sd", or "none".
fn augmentation(value: &Value) -> String {
    let on = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
    let range = |key: &str| value.get(key).map(setting_value).unwrap_or_default();
    let mut parts = Vec::new();
    if on("flip") {
        parts.push("random flips of each axis".to_string());
    }
    if on("scale") {
        parts.push(format!("intensity scale ±{}", range("scale_range")));
    }
    if on("shift") {
        parts.push(format!("intensity shift ±{} sd", range("shift_range")));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join("; ")
    }
}

/// `metrics.csv` as a table: readable column names, numbers to 4 decimals, seconds to 1.
fn epoch_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let columns: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let header = columns.iter().map(|c| epoch_column_name(c)).collect();
    let rows = lines
        .map(|line| {
            line.split(',')
                .zip(&columns)
                .map(|(cell, column)| match cell.parse::<f64>() {
                    _ if cell.is_empty() => "-".to_string(),
                    Ok(v) if column == "epoch" => format!("{v}"),
                    Ok(v) if column == "seconds" => format!("{v:.1}"),
                    Ok(v) => format!("{v:.4}"),
                    Err(_) => cell.to_string(),
                })
                .collect()
        })
        .collect();
    (header, rows)
}

fn epoch_column_name(column: &str) -> String {
    if let Some(class) = Class::ALL
        .iter()
        .find(|class| column == format!("dice_{}", class.key()))
    {
        return format!("{} Dice", class.short_name());
    }
    if let Some(region) = Region::ALL
        .iter()
        .find(|region| column == format!("dice_{}", region.abbreviation().to_lowercase()))
    {
        return format!("{} Dice", region.abbreviation());
    }
    match column {
        "train_loss" => "training loss".to_string(),
        "valid_loss" => "validation loss".to_string(),
        "dice_mean" => "mean region Dice".to_string(),
        other => other.replace('_', " "),
    }
}

// ---------------------------------------------------------------------------------------------
// Predictions

/// What made the predictions (from `predictions.json`) and a row per label map in the folder: seconds and
/// tumour volumes. None when the folder has neither.
/// A "Viewer" section: each case in the interactive viewer (the four modalities, its ground truth
/// when it has one, and the given prediction, in MSD numbering), all inside the page.
pub fn viewer_section(cases: &[(Case, Option<Array3<u8>>)]) -> Result<Section> {
    let mut section = Section::new("Viewer").text(
        "Click or drag to move the crosshair, scroll to change slice, drag the 3-D view to turn it. \
         Without WebGL2 each viewer shows three planes through the tumour instead.",
    );
    for (case, pred) in cases {
        let html = brainseg_viewer::embedded_viewer_html(case, case.label.as_ref(), pred.as_ref())?;
        let shown = match (&case.label, pred) {
            (Some(_), Some(_)) => "ground truth and prediction",
            (None, Some(_)) => "prediction",
            (Some(_), None) => "ground truth",
            (None, None) => "no label maps",
        };
        section = section.page(format!("{}: the four modalities, {shown}", case.id), html);
    }
    Ok(section)
}

/// The label maps of a prediction folder by case id, sorted (probability maps left out).
fn label_maps(layout: &PredictionLayout) -> Vec<(String, PathBuf)> {
    let mut maps: Vec<(String, PathBuf)> = std::fs::read_dir(layout.path())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|path| path.is_file() && is_nifti(path))
        .filter(|path| !path.to_string_lossy().contains(PROBABILITIES_SUFFIX))
        .map(|path| (crate::layout::case_id_of_label_file(&path), path))
        .collect();
    maps.sort();
    maps
}

fn prediction_section(layout: &PredictionLayout) -> Result<Option<Section>> {
    let provenance = Provenance::read(layout)?;
    let maps = label_maps(layout);
    if provenance.is_none() && maps.is_empty() {
        return Ok(None);
    }
    let mut section = Section::new("Predictions");
    let numbering = provenance.as_ref().map(|p| p.numbering);
    if let Some(record) = &provenance {
        section = section
            .text(format!(
                "Model: {} (fingerprint {}), brainseg {}. Label maps in {} numbering ({}).",
                record.model,
                record.model_fingerprint,
                record.brainseg_version,
                record.numbering.name(),
                record.numbering.known_values()
            ))
            .table(
                vec!["option".into(), "value".into()],
                prediction_options(record),
            );
    } else {
        section = section.text(
            "No predictions.json here: the model and options that made these label maps are not recorded.",
        );
    }
    let mut ids: Vec<String> = maps.iter().map(|(id, _)| id.clone()).collect();
    if let Some(record) = &provenance {
        ids.extend(record.cases.keys().cloned());
    }
    ids.sort();
    ids.dedup();
    let mut volume_note = None;
    let rows: Vec<Vec<String>> = ids
        .iter()
        .map(|id| {
            let seconds = provenance
                .as_ref()
                .and_then(|record| record.cases.get(id))
                .map_or("-".to_string(), |s| format!("{s:.1}"));
            let mut row = vec![id.clone(), seconds];
            let path = maps.iter().find(|(map_id, _)| map_id == id).map(|(_, p)| p);
            match path.map(|path| tumour_volumes(path, numbering)) {
                Some(Ok(volumes)) => {
                    row.extend(volumes.iter().map(|ml| format!("{ml:.2}")));
                }
                Some(Err(error)) => {
                    volume_note.get_or_insert(error.to_string());
                    row.extend(["-".to_string(), "-".into(), "-".into(), "-".into()]);
                }
                None => row.extend(["no file".to_string(), "-".into(), "-".into(), "-".into()]),
            }
            row
        })
        .collect();
    let mut header = vec!["case".to_string(), "seconds".to_string()];
    header.extend(
        Class::ALL
            .iter()
            .map(|class| format!("{} (mL)", class.name())),
    );
    header.push(format!("{} (mL)", Region::WholeTumour.name()));
    section = section
        .text(format!(
            "{} case{}. Seconds: time to predict the case, from predictions.json. Volumes: voxels of each class \
             in the predicted label map times the voxel volume; the {} is all three classes.",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            Region::WholeTumour.name()
        ))
        .table(header, rows);
    if let Some(note) = volume_note {
        section = section.text(format!("Some label maps could not be read: {note}"));
    }
    Ok(Some(section))
}

fn prediction_options(record: &Provenance) -> Vec<Vec<String>> {
    let inference = &record.inference;
    let tile = inference.tile.map(|n| n.to_string()).join(" x ");
    let mut rows = vec![
        (
            "Tiling",
            match inference.tiling {
                Tiling::Notebook => "notebook: non-overlapping tiles".to_string(),
                Tiling::Sliding => format!(
                    "sliding window, Gaussian weights, overlap {}",
                    inference.overlap
                ),
            },
        ),
        ("Tile size (voxels)", tile),
        ("Tiles per model call", inference.batch_size.to_string()),
        (
            "Mirroring (test-time augmentation)",
            if inference.mirror {
                "yes, 8 flips"
            } else {
                "no"
            }
            .to_string(),
        ),
        (
            "Standardisation",
            setting_value(&serde_json::to_value(inference.standardization).unwrap_or(Value::Null)),
        ),
        ("Probability threshold", record.labels.threshold.to_string()),
        (
            "Smallest component kept (voxels)",
            match record.labels.min_component {
                0 => "all kept".to_string(),
                n => n.to_string(),
            },
        ),
        (
            "Only the largest tumour kept",
            if inference.keep_largest_tumour {
                "yes"
            } else {
                "no"
            }
            .to_string(),
        ),
        (
            "Enhancing tumour below this becomes necrosis (voxels)",
            match inference.min_enhancing_voxels {
                0 => "off".to_string(),
                n => n.to_string(),
            },
        ),
        (
            "Probability maps written",
            if record.probabilities { "yes" } else { "no" }.to_string(),
        ),
    ];
    rows.push(("Label numbering", numbering_text(record.numbering)));
    rows.into_iter()
        .map(|(name, value)| vec![name.to_string(), value])
        .collect()
}

fn numbering_text(numbering: LabelNumbering) -> String {
    format!("{} ({})", numbering.name(), numbering.known_values())
}

/// Millilitres of each class and of the whole tumour in a label map.
fn tumour_volumes(path: &Path, numbering: Option<LabelNumbering>) -> Result<[f64; 4]> {
    let map = brainseg_volume::read_label_msd(path, numbering, None)?;
    let [sx, sy, sz] = map.geometry.spacing();
    let millilitres_per_voxel = sx as f64 * sy as f64 * sz as f64 / 1000.0;
    let mut counts = [0usize; 4];
    for &label in map.labels.iter() {
        counts[label.min(3) as usize] += 1;
    }
    let class = |label: usize| counts[label] as f64 * millilitres_per_voxel;
    Ok([
        class(1),
        class(2),
        class(3),
        (counts[1] + counts[2] + counts[3]) as f64 * millilitres_per_voxel,
    ])
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Two tables, per class and per region, one row per case then mean, median, std (and undefined counts for
/// the classes), with sentences that say what the columns and "undefined" mean.
fn evaluation_section(summary: &Summary) -> Section {
    let regions: Vec<String> = Region::ALL
        .iter()
        .map(|region| format!("{} ({})", region.abbreviation(), region.name()))
        .collect();
    let cases = summary.cases.len();
    let intro = format!(
        "{cases} case{} scored against the ground truth. Per tumour class: Dice, sensitivity and specificity. \
         Per BraTS region — {} — Dice and HD95, the 95th-percentile Hausdorff distance in mm, here {}.",
        if cases == 1 { "" } else { "s" },
        regions.join(", "),
        summary.hd95_convention.description()
    );
    let undefined = "A dash marks an undefined value: a metric with no value for that case. Dice is undefined \
         when the class is absent from both maps, sensitivity when it is absent from the ground truth, specificity \
         when the ground truth is that class everywhere. Mean, median and std leave undefined values out; the \
         \"undefined\" row counts them. Regions always have values: when both maps lack a region its Dice is 1 \
         and HD95 0, when only one does Dice is 0 and HD95 373.13 mm (nnU-Net's BraTS convention).";
    let number = |value: Option<f64>, decimals: usize| {
        value.map_or("-".to_string(), |v| format!("{v:.decimals$}"))
    };
    type Statistic = (&'static str, fn(&MetricStats) -> Option<f64>);
    let statistics: [Statistic; 3] = [
        ("mean", |s| s.mean),
        ("median", |s| s.median),
        ("std", |s| s.std),
    ];
    let stats = |key: String| summary.stats(&key).cloned();

    // Per class.
    let mut class_groups = vec![(String::new(), 1)];
    class_groups.extend(Class::ALL.iter().map(|class| (class.name().to_string(), 3)));
    let mut class_header = vec!["case".to_string()];
    for _ in Class::ALL {
        class_header.extend(["Dice", "sensitivity", "specificity"].map(String::from));
    }
    let mut class_rows: Vec<Vec<String>> = summary
        .cases
        .iter()
        .map(|row| {
            let mut cells = vec![row.case.clone()];
            for class in row.metrics.classes() {
                cells.extend(
                    [class.dice, class.sensitivity, class.specificity].map(|v| number(v, 4)),
                );
            }
            cells
        })
        .collect();
    let class_keys: Vec<String> = Class::ALL
        .iter()
        .flat_map(|class| {
            ["dice", "sensitivity", "specificity"].map(|metric| format!("{}_{metric}", class.key()))
        })
        .collect();
    for (label, statistic) in statistics {
        let mut cells = vec![label.to_string()];
        cells.extend(
            class_keys
                .iter()
                .map(|key| number(stats(key.clone()).as_ref().and_then(statistic), 4)),
        );
        class_rows.push(cells);
    }
    let mut counts = vec!["undefined".to_string()];
    counts.extend(
        class_keys
            .iter()
            .map(|key| stats(key.clone()).map_or("-".to_string(), |s| s.undefined.to_string())),
    );
    class_rows.push(counts);

    // Per region.
    let mut region_groups = vec![(String::new(), 1)];
    region_groups.extend(
        Region::ALL
            .iter()
            .map(|region| (format!("{} ({})", region.abbreviation(), region.name()), 2)),
    );
    let mut region_header = vec!["case".to_string()];
    for _ in Region::ALL {
        region_header.extend(["Dice".to_string(), "HD95 (mm)".to_string()]);
    }
    let mut region_rows: Vec<Vec<String>> = summary
        .cases
        .iter()
        .map(|row| {
            let mut cells = vec![row.case.clone()];
            for region in row.metrics.regions() {
                cells.extend([number(Some(region.dice), 4), number(Some(region.hd95), 2)]);
            }
            cells
        })
        .collect();
    for (label, statistic) in statistics {
        let mut cells = vec![label.to_string()];
        for region in Region::ALL {
            let key = region.abbreviation().to_lowercase();
            cells.push(number(
                stats(format!("{key}_dice")).as_ref().and_then(statistic),
                4,
            ));
            cells.push(number(
                stats(format!("{key}_hd95")).as_ref().and_then(statistic),
                2,
            ));
        }
        region_rows.push(cells);
    }

    Section::new("Evaluation")
        .text(intro)
        .grouped_table(class_groups, class_header, class_rows)
        .grouped_table(region_groups, region_header, region_rows)
        .text(undefined)
}

// ---------------------------------------------------------------------------------------------
// Pictures

fn pictures_in(dir: &Path, curves: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    found.retain(|p| {
        let name = p.to_string_lossy();
        (name.ends_with(".png") || name.ends_with(".gif")) && p.file_name() != curves.file_name()
    });
    found.sort();
    found
}

/// The kinds of picture `brainseg show` draws, by the end of their file name, in page order, and what they show.
const PICTURE_KINDS: [(&str, &str); 7] = [
    (
        "_comparison.png",
        "ground truth (top) beside prediction (bottom)",
    ),
    ("_grid_ground_truth.png", "slice grid of the ground truth"),
    ("_grid_prediction.png", "slice grid of the prediction"),
    ("_grid.png", "slice grid of FLAIR"),
    (
        "_slices_ground_truth.gif",
        "slices of the ground truth, stepped through",
    ),
    (
        "_slices_prediction.gif",
        "slices of the prediction, stepped through",
    ),
    (
        "_patch.png",
        "a training patch: FLAIR and enhancing-tumour masks",
    ),
];

/// The pictures `show` draws first, by case and then by their kind's place in [`PICTURE_KINDS`]; other pictures
/// after them, by name.
fn picture_order(path: &Path) -> (bool, String, usize) {
    let name = file_name(path);
    match PICTURE_KINDS
        .iter()
        .position(|(suffix, _)| name.ends_with(suffix))
    {
        Some(kind) => {
            let case = name[..name.len() - PICTURE_KINDS[kind].0.len()].to_string();
            (false, case, kind)
        }
        None => (true, name, 0),
    }
}

/// "<case>: <what it shows> (<file name>)" for the pictures `show` draws, the file name for others.
fn picture_caption(path: &Path) -> String {
    let name = file_name(path);
    match PICTURE_KINDS
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix))
    {
        Some((suffix, what)) => format!("{}: {what} ({name})", &name[..name.len() - suffix.len()]),
        None => name,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
