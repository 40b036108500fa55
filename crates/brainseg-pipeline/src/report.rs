//! One self-contained HTML page for a training run or a prediction folder, from what the other
//! steps wrote: a run's `config.json`, `metrics.csv` and `curves.png`, an `evaluation.json`, and
//! the PNG/GIF pictures in the folder or its `pictures/` subfolder.
use crate::layout::PredictionLayout;
use crate::{Error, Result};
use brainseg_metrics::Summary;
use brainseg_train::RunLayout;
use brainseg_visualize::{HtmlReport, Section};
use std::path::{Path, PathBuf};

fn csv_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

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

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| brainseg_volume::Error::at(path, format!("cannot read: {e}")).into())
}

/// The page for `dir`, a run folder or a prediction folder.
pub fn build(dir: &Path, title: &str) -> Result<HtmlReport> {
    if !dir.is_dir() {
        return Err(Error::invalid(format!("{}: not a folder", dir.display())));
    }
    let run = RunLayout::new(dir);
    let predictions = PredictionLayout::new(dir);
    let mut report = HtmlReport::new(title);
    let mut sections = 0;
    if let Ok(config) = std::fs::read_to_string(run.config()) {
        report = report.section(
            Section::new("Training run")
                .text(format!("Run folder: {}", dir.display()))
                .preformatted(config),
        );
        sections += 1;
    }
    if let Ok(metrics) = std::fs::read_to_string(run.metrics()) {
        let (header, rows) = csv_table(&metrics);
        let mut section = Section::new("Training curves").table(header, rows);
        if let Ok(png) = std::fs::read(run.curves()) {
            section = section.png("Loss and validation Dice per epoch", png);
        }
        report = report.section(section);
        sections += 1;
    }
    let evaluation = predictions.evaluation_json();
    if evaluation.is_file() {
        let summary: Summary = serde_json::from_slice(&read(&evaluation)?).map_err(|_| {
            Error::invalid(format!(
                "{}: not an evaluation written by `brainseg evaluate --json`",
                evaluation.display()
            ))
        })?;
        report = report.section(
            Section::new("Evaluation")
                .text("Per case and aggregated: Dice, sensitivity and specificity per class; Dice and HD95 (mm) per BraTS region (WT, TC, ET).")
                .preformatted(summary.to_text()),
        );
        sections += 1;
    }
    let mut pictures = pictures_in(dir, &run.curves());
    pictures.extend(pictures_in(&predictions.pictures(), &run.curves()));
    if !pictures.is_empty() {
        let mut section = Section::new("Pictures");
        for path in &pictures {
            let bytes = read(path)?;
            let caption = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            section = if caption.ends_with(".gif") {
                section.gif(caption, bytes)
            } else {
                section.png(caption, bytes)
            };
        }
        report = report.section(section);
        sections += 1;
    }
    if sections == 0 {
        return Err(Error::invalid(format!(
            "{}: nothing to report (no config.json, metrics.csv, evaluation.json or pictures)",
            dir.display()
        )));
    }
    Ok(report)
}
