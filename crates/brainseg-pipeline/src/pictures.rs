//! Pictures of a case: labelled slice grid and GIF through the axes for each label map given (ground truth,
//! prediction), the notebook's patch view, and ground truth beside prediction.
use crate::{Error, Result};
use brainseg_core::Class;
use brainseg_transforms::{crop_padded3, sample_patch, standardize_slices, PatchConfig};
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

/// One picture [`draw_case`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    pub path: PathBuf,
    /// What it shows, for people: e.g. "slice grid of the prediction".
    pub what: String,
}

/// Which label map a picture shows; its name goes into file names and captions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    GroundTruth,
    Prediction,
}

impl MapKind {
    /// "ground truth" or "prediction", as captions say.
    pub fn name(self) -> &'static str {
        match self {
            MapKind::GroundTruth => "ground truth",
            MapKind::Prediction => "prediction",
        }
    }

    /// "ground_truth" or "prediction", as file names say.
    pub fn file_part(self) -> &'static str {
        match self {
            MapKind::GroundTruth => "ground_truth",
            MapKind::Prediction => "prediction",
        }
    }
}

/// Writes every picture of one case into `out` and returns them. Each label map given is drawn: a slice grid and a
/// GIF per map (`<case>_grid_ground_truth.png`, `<case>_grid_prediction.png`, `<case>_slices_ground_truth.gif`,
/// ...), their headers naming the map; the patch view (`<case>_patch.png`) shows the enhancing-tumour mask of
/// each map in one patch, chosen from the ground truth when there is one; with both maps, the ground truth beside
/// the prediction (`<case>_comparison.png`). With neither, `<case>_grid.png` shows FLAIR alone.
pub fn draw_case(
    case: &Case,
    truth: Option<&Array3<u8>>,
    pred: Option<&Array3<u8>>,
    out: &Path,
    options: &PictureOptions,
) -> Result<Vec<Drawn>> {
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
    let (convention, overlay) = (options.convention, options.overlay);
    let mut written = vec![];
    let mut save = |name: String, what: String, bytes: Vec<u8>| -> Result<()> {
        let path = out.join(name);
        write_atomic(&path, &bytes)?;
        written.push(Drawn { path, what });
        Ok(())
    };
    let slices = match options.seed {
        Some(seed) => SliceChoice::Random { seed },
        None => SliceChoice::ThroughTumour,
    };
    let maps: Vec<(MapKind, &Array3<u8>)> =
        [(MapKind::GroundTruth, truth), (MapKind::Prediction, pred)]
            .into_iter()
            .filter_map(|(kind, map)| map.map(|map| (kind, map)))
            .collect();
    if maps.is_empty() {
        let empty = Array3::<u8>::zeros(flair.dim());
        let grid = slice_grid(
            flair,
            empty.view(),
            spacing,
            &GridOptions {
                slices,
                convention,
                overlay,
                title: format!("{}: FLAIR, no label map", case.id),
            },
        )?;
        save(
            format!("{}_grid.png", case.id),
            "slice grid of FLAIR (no label map)".into(),
            grid.to_png(),
        )?;
    }
    for &(kind, labels) in &maps {
        let grid = slice_grid(
            flair,
            labels.view(),
            spacing,
            &GridOptions {
                slices,
                convention,
                overlay,
                title: format!("{}: {}", case.id, kind.name()),
            },
        )?;
        save(
            format!("{}_grid_{}.png", case.id, kind.file_part()),
            format!("slice grid of the {}", kind.name()),
            grid.to_png(),
        )?;
    }
    if options.gif {
        for &(kind, labels) in &maps {
            let volume = labelled_volume(flair, labels.view(), overlay)?;
            let title = format!("{}: {}", case.id, kind.name());
            save(
                format!("{}_slices_{}.gif", case.id, kind.file_part()),
                format!("slice stepper GIF of the {}", kind.name()),
                slices_gif(volume.view(), spacing, convention, &title),
            )?;
        }
    }
    if let Some(&(_, reference)) = maps.first() {
        // The notebook's visualize_patch: a standardised FLAIR patch and its enhancing-tumour masks, the patch
        // drawn as training draws it from the first map (the ground truth when there is one).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed.unwrap_or(0));
        let config = PatchConfig {
            size: [
                160.min(flair.dim().0),
                160.min(flair.dim().1),
                16.min(flair.dim().2),
            ],
            ..PatchConfig::seed()
        };
        let patch = sample_patch(case.image.view(), reference.view(), &config, &mut rng)?;
        let mut image = patch.image;
        standardize_slices(&mut image);
        let z = image.shape()[3] / 2;
        let enhancing = Class::Enhancing.msd_label();
        let masks: Vec<(MapKind, Array3<f32>)> = maps
            .iter()
            .map(|&(kind, labels)| {
                let crop = crop_padded3(labels.view(), patch.corner, config.size);
                (kind, crop.mapv(|label| f32::from(label == enhancing)))
            })
            .collect();
        let captioned: Vec<(&str, ndarray::ArrayView3<f32>)> = masks
            .iter()
            .map(|(kind, mask)| (kind.name(), mask.view()))
            .collect();
        let picture = patch_view(
            image.index_axis(Axis(0), 0),
            &captioned,
            Class::Enhancing.name(),
            z,
            spacing,
            convention,
        )?;
        let shown: Vec<&str> = maps.iter().map(|(kind, _)| kind.name()).collect();
        save(
            format!("{}_patch.png", case.id),
            format!(
                "patch view: FLAIR and the {} mask of the {}",
                Class::Enhancing.name(),
                shown.join(" and the ")
            ),
            picture.to_png(),
        )?;
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
        save(
            format!("{}_comparison.png", case.id),
            "ground truth beside prediction".into(),
            picture.to_png(),
        )?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainseg_visualize::RgbImage;
    use brainseg_volume::Geometry;
    use ndarray::{s, Array4};

    /// A 40 x 40 x 20 case: FLAIR 1 inside x, y 4..36 and z 2..18, 0 outside; edema at x, y 10..14, z 8..12 in
    /// its ground truth.
    fn case() -> Case {
        let mut image = Array4::<f32>::zeros((4, 40, 40, 20));
        image.slice_mut(s![.., 4..36, 4..36, 2..18]).fill(1.0);
        let mut truth = Array3::<u8>::zeros((40, 40, 20));
        truth.slice_mut(s![10..14, 10..14, 8..12]).fill(1);
        Case {
            id: "c1".into(),
            image,
            label: Some(truth),
            geometry: Geometry::synthetic([40, 40, 20], [1.0; 3]),
            sources: vec![],
        }
    }

    #[test]
    fn each_label_map_is_drawn_and_named() {
        let case = case();
        let truth = case.label.clone().unwrap();
        // The prediction: enhancing tumour where the truth has none, nothing where the truth has edema.
        let mut pred = Array3::<u8>::zeros((40, 40, 20));
        pred.slice_mut(s![24..28, 24..28, 8..12]).fill(3);
        let folder = tempfile::tempdir().unwrap();
        let drawn = draw_case(
            &case,
            Some(&truth),
            Some(&pred),
            folder.path(),
            &PictureOptions::default(),
        )
        .unwrap();
        let names: Vec<String> = drawn
            .iter()
            .map(|d| d.path.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "c1_grid_ground_truth.png",
                "c1_grid_prediction.png",
                "c1_slices_ground_truth.gif",
                "c1_slices_prediction.gif",
                "c1_patch.png",
                "c1_comparison.png"
            ]
        );
        assert_eq!(drawn[1].what, "slice grid of the prediction");
        assert_eq!(drawn[3].what, "slice stepper GIF of the prediction");
        let picture = |name: &str| {
            RgbImage::from_png(&std::fs::read(folder.path().join(name)).unwrap()).unwrap()
        };
        let (truth_grid, pred_grid) = (
            picture("c1_grid_ground_truth.png"),
            picture("c1_grid_prediction.png"),
        );
        // Both grids' axial tiles show z 8..11. Layout: 40 voxels enlarged 7 times; a 48-px header (title 16,
        // convention 8, legend 8, a 4-px gap after each and on top); 72 px of row names. Voxel (x, y) of the first
        // axial tile: radiological column 39 - x, anterior-up row 39 - y, each a 7 x 7 block (its middle +3).
        let at = |grid: &RgbImage, x: usize, y: usize| {
            grid.pixel(72 + (39 - x) * 7 + 3, 48 + (39 - y) * 7 + 3)
        };
        assert_eq!(
            at(&pred_grid, 26, 26),
            [0, 0, 255],
            "enhancing only in the prediction"
        );
        assert_eq!(
            at(&truth_grid, 26, 26),
            [255; 3],
            "FLAIR under no label in the truth"
        );
        assert_eq!(
            at(&truth_grid, 12, 12),
            [255, 0, 0],
            "edema only in the truth"
        );
        assert_eq!(at(&pred_grid, 12, 12), [255; 3]);
        assert_ne!(
            std::fs::read(folder.path().join("c1_slices_ground_truth.gif")).unwrap(),
            std::fs::read(folder.path().join("c1_slices_prediction.gif")).unwrap()
        );
    }

    #[test]
    fn a_prediction_alone_is_drawn_as_the_prediction() {
        let case = case();
        let mut pred = Array3::<u8>::zeros((40, 40, 20));
        pred.slice_mut(s![24..28, 24..28, 8..12]).fill(3);
        let folder = tempfile::tempdir().unwrap();
        let options = PictureOptions {
            gif: false,
            ..PictureOptions::default()
        };
        let drawn = draw_case(&case, None, Some(&pred), folder.path(), &options).unwrap();
        let names: Vec<String> = drawn
            .iter()
            .map(|d| d.path.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["c1_grid_prediction.png", "c1_patch.png"]);
        assert!(
            drawn[1].what.ends_with("mask of the prediction"),
            "{}",
            drawn[1].what
        );
    }
}
