//! `brainseg report`: one self-contained HTML page for a training run or a prediction folder.
//!
//! It gathers what the other commands wrote: `config.json` + `metrics.csv` + `curves.png` of a run,
//! `evaluation.json` of `brainseg evaluate --json`, and the PNG/GIF pictures of `brainseg show` found in the
//! folder or its `pictures/` subfolder.
use anyhow::{bail, Context, Result};
use brainseg_metrics::Summary;
use brainseg_visualize::{HtmlReport, Section};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A run folder (from `brainseg train`) or a prediction/evaluation folder.
    pub dir: PathBuf,
    /// Where to write the page; default <dir>/report.html.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Page title.
    #[arg(long, default_value = "brainseg report")]
    pub title: String,
}

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

fn pictures_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    found.retain(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        (name.ends_with(".png") || name.ends_with(".gif")) && name != "curves.png"
    });
    found.sort();
    found
}

/// Build the page for `dir`; the demo calls this too.
pub fn build(dir: &Path, title: &str) -> Result<HtmlReport> {
    if !dir.is_dir() {
        bail!("{}: not a folder", dir.display());
    }
    let mut report = HtmlReport::new(title);
    let mut sections = 0;
    if let Ok(config) = std::fs::read_to_string(dir.join("config.json")) {
        report = report.section(
            Section::new("Training run")
                .text(format!("Run folder: {}", dir.display()))
                .preformatted(config),
        );
        sections += 1;
    }
    if let Ok(metrics) = std::fs::read_to_string(dir.join("metrics.csv")) {
        let (header, rows) = csv_table(&metrics);
        let mut section = Section::new("Training curves").table(header, rows);
        if let Ok(png) = std::fs::read(dir.join("curves.png")) {
            section = section.png("Loss and validation Dice per epoch", png);
        }
        report = report.section(section);
        sections += 1;
    }
    let evaluation = dir.join("evaluation.json");
    if evaluation.is_file() {
        let summary: Summary =
            serde_json::from_slice(&std::fs::read(&evaluation)?).with_context(|| {
                format!(
                    "{}: not an evaluation written by `brainseg evaluate --json`",
                    evaluation.display()
                )
            })?;
        report = report.section(
            Section::new("Evaluation")
                .text("Per case and aggregated: Dice, sensitivity and specificity per class; Dice and HD95 (mm) per BraTS region (WT, TC, ET).")
                .preformatted(summary.to_text()),
        );
        sections += 1;
    }
    let mut pictures = pictures_in(dir);
    pictures.extend(pictures_in(&dir.join("pictures")));
    if !pictures.is_empty() {
        let mut section = Section::new("Pictures");
        for path in &pictures {
            let bytes =
                std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
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
        bail!(
            "{}: nothing to report (no config.json, metrics.csv, evaluation.json or pictures)",
            dir.display()
        );
    }
    Ok(report)
}

pub fn run(args: Args) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dir.join("report.html"));
    build(&args.dir, &args.title)?.write(&out)?;
    println!("wrote {}", out.display());
    Ok(())
}
