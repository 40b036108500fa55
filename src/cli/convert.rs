//! `brainseg convert`: raw BraTS folders -> MSD Task01 layout; optionally a compact training copy.
use super::progress::Reporter;
use anyhow::Result;
use brainseg_pipeline::{input::convert_dicom, Progress};
use brainseg_volume::convert::{compact_copy, to_msd, CompactOptions, QUANTISATION_FILE};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset to convert (raw BraTS: a folder per case; an MSD dataset is rewritten as is).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Output folder: dataset.json, imagesTr/<case>.nii.gz (4-D), labelsTr/<case>.nii.gz (MSD labels 0..3).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Compact training copy for carrying a training set (e.g. to a GPU machine): each case
    /// cropped to the bounding box of its non-zero voxels (+ --crop-margin; world positions
    /// kept), each modality quantised to 32 levels in uint8 (--levels; the steps go to
    /// quantisation.json), gzip level 9 (--gzip-level). Lossy: only for training with a
    /// per-channel standardisation (zscore, notebook), which does not see the scale. 32 levels:
    /// the 16 shared BraTS cases take ~1.9 MB each in xz (256 levels: ~4.1 MB, 64: ~2.7 MB).
    #[arg(long)]
    pub compact: bool,
    /// Lossy copy: each modality of each case is scaled to whole values 1..255 (0 stays 0) and
    /// stored as uint8, about 3x smaller; the step of each modality (intensity ≈ code × step) is
    /// written to quantisation.json. Only for training with `--standardization zscore` (or notebook).
    #[arg(long)]
    pub quantize_u8: bool,
    /// Quantise each modality to this many levels (3..=256; code levels-2 is the 99.9th
    /// percentile of the non-zero voxels) in uint8 [--compact: 32; --quantize-u8: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(3..=256))]
    pub levels: Option<u16>,
    /// Crop each case to its non-zero bounding box widened by this many voxels [with --compact: 2].
    #[arg(long, value_name = "VOXELS")]
    pub crop_margin: Option<usize>,
    /// gzip level of the copy's files, 0 (stored, for packing the folder with xz) to 9 [--compact: 9; else 1].
    #[arg(long, value_name = "0..9", value_parser = clap::value_parser!(u32).range(0..=9))]
    pub gzip_level: Option<u32>,
    /// INPUT is a DICOM study: write each series as NIfTI (<number>_<description>.nii.gz).
    #[arg(long, conflicts_with_all = ["quantize_u8", "levels", "cases", "compact", "crop_margin", "gzip_level"])]
    pub dicom: bool,
    /// Only these cases (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub cases: Option<Vec<String>>,
}

impl Args {
    /// The compact-copy options the flags ask for, or None for a plain conversion.
    fn compact_options(&self) -> Option<CompactOptions> {
        let any = self.compact
            || self.quantize_u8
            || self.levels.is_some()
            || self.cases.is_some()
            || self.crop_margin.is_some()
            || self.gzip_level.is_some();
        if !any {
            return None;
        }
        let base = if self.compact {
            CompactOptions::compact()
        } else {
            CompactOptions::default()
        };
        Some(CompactOptions {
            levels: self
                .levels
                .or(self.quantize_u8.then_some(256))
                .or(base.levels),
            crop_margin: self.crop_margin.or(base.crop_margin),
            gzip_level: self.gzip_level.unwrap_or(base.gzip_level),
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.dicom {
        let written = convert_dicom(&args.input, &args.output, &mut Reporter::new())?;
        written
            .iter()
            .for_each(|p| println!("wrote {}", p.display()));
        return Ok(());
    }
    let Some(options) = args.compact_options() else {
        let n = to_msd(&args.input, &args.output)?;
        println!(
            "wrote {n} case(s) in the MSD layout to {}",
            args.output.display()
        );
        return Ok(());
    };
    let mut progress = Reporter::new();
    let written = compact_copy(
        &args.input,
        &args.output,
        args.cases.as_deref(),
        &options,
        |done, total| progress.advance("cases", done, total, ""),
    )?;
    progress.finish("cases");
    let voxels = |s: [usize; 3]| s.iter().product::<usize>() as f64;
    let kept: f64 = written.iter().map(|c| voxels(c.cropped_shape)).sum::<f64>()
        / written
            .iter()
            .map(|c| voxels(c.shape))
            .sum::<f64>()
            .max(1.0);
    let mut kind = vec![if let Some(levels) = options.levels {
        format!("uint8, {levels} levels per modality, lossy, steps in {QUANTISATION_FILE}")
    } else {
        "float32 as read".to_string()
    }];
    if let Some(margin) = options.crop_margin {
        kind.push(format!(
            "cropped (margin {margin}) to {:.0}% of the voxels",
            100.0 * kept
        ));
    }
    kind.push(format!("gzip level {}", options.gzip_level));
    println!(
        "wrote {} case(s) ({}) in the MSD layout to {}",
        written.len(),
        kind.join(", "),
        args.output.display()
    );
    Ok(())
}
