//! `brainseg show`: pictures of a case — labelled slice grid, GIF, patch view, ground truth beside prediction.
use anyhow::{bail, Context, Result};
use brainseg_transforms::{sample_patch, standardize_slices, PatchConfig};
use brainseg_visualize::{
    labelled_volume, patch_view, prediction_comparison, slice_grid, slices_gif, write_atomic,
    Convention, GridOptions, Overlay, SliceChoice,
};
use brainseg_volume::{read_label, Case, Dataset, LabelNumbering};
use ndarray::{Array3, Axis};
use rand::SeedableRng;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A BraTS case folder, a 4-D NIfTI, or a dataset folder (then --case picks the case; default the first).
    #[arg(short, long)]
    pub input: PathBuf,
    /// Case id within a dataset.
    #[arg(long)]
    pub case: Option<String>,
    /// Ground-truth label map to draw instead of the case's own (e.g. for a 4-D NIfTI without labels).
    #[arg(long)]
    pub label: Option<PathBuf>,
    /// A predicted label map: adds the ground-truth-beside-prediction picture.
    #[arg(long)]
    pub pred: Option<PathBuf>,
    /// Label numbering of --label and --pred files.
    #[arg(long, value_enum, default_value = "msd")]
    pub labels: super::predict::Labels,
    /// Output folder for the pictures.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Random slices and patch from this seed (as the notebook); default: slices through the tumour.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Neurological convention (patient's left on image left); default radiological.
    #[arg(long)]
    pub neurological: bool,
    /// Blend labels over FLAIR with this opacity (0..1) instead of painting them opaque as the notebook.
    #[arg(long)]
    pub blend: Option<f32>,
    /// Point x,y,z (canonical voxel indices) for the comparison picture; default: the tumour's centre.
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub point: Option<Vec<usize>>,
    /// Skip the GIF (the slowest and largest picture).
    #[arg(long)]
    pub no_gif: bool,
}

fn read_msd_label(path: &Path, numbering: LabelNumbering, shape: &[usize]) -> Result<Array3<u8>> {
    let (mut labels, _) = read_label(path)?;
    if labels.shape() != shape {
        bail!(
            "{}: label shape {:?} does not match the image's {:?}",
            path.display(),
            labels.shape(),
            shape
        );
    }
    for v in labels.iter_mut() {
        *v = numbering.to_msd(*v).with_context(|| {
            format!(
                "{}: label value {} is not a {numbering:?} label",
                path.display(),
                *v
            )
        })?;
    }
    Ok(labels)
}

/// Centre of mass of the labelled voxels, or the volume's centre.
fn tumour_centre(labels: &Array3<u8>) -> [usize; 3] {
    let (mut sum, mut n) = ([0usize; 3], 0usize);
    for ((x, y, z), &v) in labels.indexed_iter() {
        if v > 0 {
            sum = [sum[0] + x, sum[1] + y, sum[2] + z];
            n += 1;
        }
    }
    let shape = labels.shape();
    if n == 0 {
        return [shape[0] / 2, shape[1] / 2, shape[2] / 2];
    }
    [sum[0] / n, sum[1] / n, sum[2] / n]
}

pub fn load_case(input: &Path, case: Option<&str>) -> Result<Case> {
    let dataset = Dataset::open(input)?;
    let case_ref = match case {
        Some(id) => dataset
            .case(id)
            .with_context(|| format!("{}: no case named {id}", input.display()))?,
        None => dataset
            .cases
            .first()
            .with_context(|| format!("{}: no cases", input.display()))?,
    };
    Ok(case_ref.load()?)
}

/// Write every picture of one case; returns the files written.
#[allow(clippy::too_many_arguments)]
pub fn draw_case(
    case: &Case,
    truth: Option<&Array3<u8>>,
    pred: Option<&Array3<u8>>,
    out: &Path,
    seed: Option<u64>,
    convention: Convention,
    overlay: Overlay,
    point: Option<[usize; 3]>,
    gif: bool,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create the output folder", out.display()))?;
    let flair = case.image.index_axis(Axis(0), 0);
    let spacing = case.geometry.spacing();
    let empty = Array3::<u8>::zeros(flair.dim());
    let shown = truth.or(pred).unwrap_or(&empty);
    let mut written = vec![];
    let mut save = |name: String, bytes: Vec<u8>| -> Result<()> {
        let path = out.join(name);
        write_atomic(&path, &bytes)?;
        written.push(path);
        Ok(())
    };
    let slices = match seed {
        Some(seed) => SliceChoice::Random { seed },
        None => SliceChoice::ThroughTumour,
    };
    let grid = slice_grid(
        flair,
        shown.view(),
        spacing,
        &GridOptions {
            slices,
            convention,
            overlay,
        },
    )?;
    save(format!("{}_grid.png", case.id), grid.to_png())?;
    if gif {
        let volume = labelled_volume(flair, shown.view(), overlay)?;
        save(
            format!("{}_slices.gif", case.id),
            slices_gif(volume.view(), spacing, convention),
        )?;
    }
    if let Some(truth) = truth {
        // The notebook's visualize_patch: a standardised FLAIR patch and its enhancing-tumour mask.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.unwrap_or(0));
        let config = PatchConfig {
            size: [
                160.min(flair.dim().0),
                160.min(flair.dim().1),
                16.min(flair.dim().2),
            ],
            ..PatchConfig::seed()
        };
        let patch = sample_patch(case.image.view(), truth.view(), &config, &mut rng)?;
        let mut image = patch.image;
        standardize_slices(&mut image);
        let z = image.shape()[3] / 2;
        let picture = patch_view(
            image.index_axis(Axis(0), 0),
            patch.target.index_axis(Axis(0), 2),
            z,
            spacing,
            convention,
        )?;
        save(format!("{}_patch.png", case.id), picture.to_png())?;
    }
    if let (Some(truth), Some(pred)) = (truth, pred) {
        let point = point.unwrap_or_else(|| tumour_centre(truth));
        let picture = prediction_comparison(
            flair,
            truth.view(),
            pred.view(),
            spacing,
            point,
            convention,
            overlay,
        )?;
        save(format!("{}_comparison.png", case.id), picture.to_png())?;
    }
    Ok(written)
}

pub fn run(args: Args) -> Result<()> {
    let case = load_case(&args.input, args.case.as_deref())?;
    let numbering = match args.labels {
        super::predict::Labels::Msd => LabelNumbering::Msd,
        super::predict::Labels::Brats => LabelNumbering::Brats,
    };
    let shape = &case.image.shape()[1..];
    let truth = match &args.label {
        Some(path) => Some(read_msd_label(path, numbering, shape)?),
        None => case.label.clone(),
    };
    let pred = args
        .pred
        .as_ref()
        .map(|p| read_msd_label(p, numbering, shape))
        .transpose()?;
    let convention = if args.neurological {
        Convention::Neurological
    } else {
        Convention::Radiological
    };
    let overlay = match args.blend {
        Some(alpha) if (0.0..=1.0).contains(&alpha) => Overlay::Blend { alpha },
        Some(alpha) => bail!("--blend {alpha} must be between 0 and 1"),
        None => Overlay::Replace,
    };
    let point = args
        .point
        .as_deref()
        .map(|p| {
            <[usize; 3]>::try_from(p).map_err(|_| anyhow::anyhow!("--point needs 3 indices x,y,z"))
        })
        .transpose()?;
    // Checked before drawing, so a bad point leaves no pictures behind.
    if let Some(p) = point.filter(|p| p.iter().zip(shape).any(|(i, n)| i >= n)) {
        bail!("--point {p:?} is outside the volume {shape:?}");
    }
    let written = draw_case(
        &case,
        truth.as_ref(),
        pred.as_ref(),
        &args.out,
        args.seed,
        convention,
        overlay,
        point,
        !args.no_gif,
    )?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
