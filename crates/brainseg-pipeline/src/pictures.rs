//! Pictures of a case: labelled slice grid, GIF through the axes, the notebook's patch view, and
//! ground truth beside prediction.
use crate::{Error, Result};
use brainseg_transforms::{sample_patch, standardize_slices, PatchConfig};
use brainseg_visualize::{
    labelled_volume, patch_view, prediction_comparison, slice_grid, slices_gif, write_atomic,
    Convention, GridOptions, Overlay, SliceChoice,
};
use brainseg_volume::{Case, Dataset};
use ndarray::{Array3, Axis};
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// How the pictures are drawn.
#[derive(Debug, Clone)]
pub struct PictureOptions {
    /// Random slices and patch from this seed (as the notebook); `None`: slices through the tumour.
    pub seed: Option<u64>,
    pub convention: Convention,
    pub overlay: Overlay,
    /// Voxel (canonical indices) the comparison picture crosses; `None`: the tumour's centre.
    pub point: Option<[usize; 3]>,
    /// Draw the GIF (the slowest and largest picture).
    pub gif: bool,
}

impl Default for PictureOptions {
    fn default() -> Self {
        PictureOptions {
            seed: None,
            convention: Convention::Radiological,
            overlay: Overlay::Replace,
            point: None,
            gif: true,
        }
    }
}

/// The case `id` of the dataset at `input` (its first case when `None`).
pub fn load_case(input: &Path, id: Option<&str>) -> Result<Case> {
    let dataset = Dataset::open(input)?;
    let case_ref = match id {
        Some(id) => dataset
            .case(id)
            .ok_or_else(|| Error::invalid(format!("{}: no case named {id}", input.display())))?,
        None => dataset
            .cases
            .first()
            .ok_or_else(|| Error::invalid(format!("{}: no cases", input.display())))?,
    };
    Ok(case_ref.load()?)
}

/// Centre of mass of the labelled voxels, or the volume's centre.
pub fn tumour_centre(labels: &Array3<u8>) -> [usize; 3] {
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

/// Writes every picture of one case into `out`; returns the files written.
pub fn draw_case(
    case: &Case,
    truth: Option<&Array3<u8>>,
    pred: Option<&Array3<u8>>,
    out: &Path,
    options: &PictureOptions,
) -> Result<Vec<PathBuf>> {
    let shape = &case.image.shape()[1..];
    if let Some(p) = options
        .point
        .filter(|p| p.iter().zip(shape).any(|(i, n)| i >= n))
    {
        return Err(Error::invalid(format!(
            "point {p:?} is outside the volume {shape:?}"
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| {
        brainseg_volume::Error::at(out, format!("cannot create the output folder: {e}"))
    })?;
    let flair = case.image.index_axis(Axis(0), 0);
    let spacing = case.geometry.spacing();
    let empty = Array3::<u8>::zeros(flair.dim());
    let shown = truth.or(pred).unwrap_or(&empty);
    let (convention, overlay) = (options.convention, options.overlay);
    let mut written = vec![];
    let mut save = |name: String, bytes: Vec<u8>| -> Result<()> {
        let path = out.join(name);
        write_atomic(&path, &bytes)?;
        written.push(path);
        Ok(())
    };
    let slices = match options.seed {
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
    if options.gif {
        let volume = labelled_volume(flair, shown.view(), overlay)?;
        save(
            format!("{}_slices.gif", case.id),
            slices_gif(volume.view(), spacing, convention),
        )?;
    }
    if let Some(truth) = truth {
        // The notebook's visualize_patch: a standardised FLAIR patch and its enhancing-tumour mask.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed.unwrap_or(0));
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
        let point = options.point.unwrap_or_else(|| tumour_centre(truth));
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
