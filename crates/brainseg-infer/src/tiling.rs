//! Whole-scan prediction by tiling.
//!
//! - [`Tiling::Notebook`]: the notebook's grid of non-overlapping tiles from 0 in steps of the tile size
//!   (160 x 160 x 16 on 240 x 240 x 155 gives x, y in {0, 160}, z in {0, 16, ..., 144}), zero-padded past
//!   the volume's end; unlike the notebook, tiles get the training preprocessing.
//! - [`Tiling::Sliding`]: nnU-Net's sliding window: per axis `ceil((dim - tile) / (tile * (1 - overlap))) + 1`
//!   evenly spread starts, the last flush with the end; predictions weighted by a Gaussian importance map.
//!
//! Memory stays bounded: only a `(K, X, Y, Z)` sum, an `(X, Y, Z)` weight sum and one batch of tiles are
//! held. An axis shorter than the tile is zero-padded at its end.
use crate::PatchPredictor;
use crate::{Error, Result};
use brainseg_transforms::{crop_padded4, Standardization};
use ndarray::{s, Array3, Array4, Array5, ArrayView4, ArrayView5, Axis, Zip};

/// Where tiles go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Tiling {
    /// The notebook's non-overlapping grid, uniform weights (fast).
    #[cfg_attr(feature = "clap", value(name = "notebook", alias = "seed"))]
    #[serde(alias = "seed")]
    Notebook,
    /// Overlapping sliding window with Gaussian weighting (nnU-Net, MONAI; more accurate).
    #[default]
    Sliding,
}

impl Tiling {
    /// In words, for progress lines: "the notebook's grid" or "a Gaussian sliding window".
    pub fn description(self) -> &'static str {
        match self {
            Tiling::Notebook => "the notebook's grid",
            Tiling::Sliding => "a Gaussian sliding window",
        }
    }
}

/// How a whole scan is predicted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct InferenceConfig {
    /// Tile shape in voxels; the model's training patch size.
    pub tile: [usize; 3],
    pub tiling: Tiling,
    /// Fraction of a tile shared with its neighbour along each axis (sliding only), in [0, 1).
    pub overlap: f64,
    /// Tiles per model call. 1 by default (as nnU-Net): the convolutions already split one tile
    /// over every core, and a second tile only doubles the activations held (on a BraTS case,
    /// 2 cores: 22 s and 1.06 GiB peak with 1, 23-25 s and 1.5-2.2 GiB with 2, the same labels).
    pub batch_size: usize,
    /// Mirroring test-time augmentation: average over all 8 flip combinations of the spatial axes.
    pub mirror: bool,
    /// Must match training: per-tile for [`Standardization::NotebookSlices`] (a padded edge tile's
    /// statistics include its zeros, as for padded training patches), whole volume otherwise.
    pub standardization: Standardization,
    /// Tile only the bounding box of the voxels that are non-zero in any channel (the head or the
    /// skull-stripped brain), as nnU-Net crops; outside it every probability is 0. Tiles whose
    /// input is all zero are not run either.
    pub crop_to_nonzero: bool,
    /// BraTS post-processing: an enhancing tumour smaller than this many voxels becomes necrosis
    /// (0: off). Chosen by cross-validation and stored with the model.
    pub min_enhancing_voxels: usize,
    /// Keep only the largest connected component of the whole tumour
    /// ([`crate::keep_largest_tumour`]). Chosen by cross-validation and stored with the model.
    pub keep_largest_tumour: bool,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            tile: [160, 160, 16],
            tiling: Tiling::Sliding,
            overlap: 0.5,
            batch_size: 1,
            mirror: false,
            standardization: Standardization::default(),
            crop_to_nonzero: true,
            min_enhancing_voxels: 0,
            keep_largest_tumour: false,
        }
    }
}

impl InferenceConfig {
    pub fn validate(&self) -> Result<()> {
        if self.tile.contains(&0) {
            return Err(Error::msg(format!(
                "tile size {:?} has a zero side",
                self.tile
            )));
        }
        if !(0.0..1.0).contains(&self.overlap) {
            return Err(Error::msg(format!(
                "overlap {} must be in [0, 1)",
                self.overlap
            )));
        }
        if self.batch_size == 0 {
            return Err(Error::msg("batch size must be at least 1"));
        }
        Ok(())
    }
}

/// Tile starts along one axis of length `dim` (see the module docs); `[0]` when `dim <= tile`.
pub fn tile_starts(dim: usize, tile: usize, tiling: Tiling, overlap: f64) -> Vec<usize> {
    match tiling {
        Tiling::Notebook => (0..dim.max(1)).step_by(tile).collect(),
        Tiling::Sliding => {
            if dim <= tile {
                return vec![0];
            }
            let span = (dim - tile) as f64;
            let steps = (span / (tile as f64 * (1.0 - overlap))).ceil() as usize + 1;
            let actual_step = span / (steps - 1) as f64;
            // Ties to even, as numpy's round in nnU-Net.
            (0..steps)
                .map(|i| (actual_step * i as f64).round_ties_even() as usize)
                .collect()
        }
    }
}

/// nnU-Net's importance map: a separable Gaussian with sigma = tile / 8 per axis, centred on the
/// tile's middle ((n - 1) / 2, so it is mirror-symmetric), normalised so its maximum is 1. It is not
/// truncated, so its smallest value (a corner) is about e^-24, never zero.
pub fn gaussian_importance(tile: [usize; 3]) -> Array3<f32> {
    let profile = |n: usize| -> Vec<f64> {
        let sigma = n as f64 / 8.0;
        let centre = (n as f64 - 1.0) / 2.0;
        (0..n)
            .map(|i| (-(i as f64 - centre).powi(2) / (2.0 * sigma * sigma)).exp())
            .collect()
    };
    let [px, py, pz] = tile.map(profile);
    let max = |p: &[f64]| p.iter().copied().fold(0.0, f64::max);
    let peak = max(&px) * max(&py) * max(&pz);
    Array3::from_shape_fn(tile, |(i, j, k)| (px[i] * py[j] * pz[k] / peak) as f32)
}

/// Predict `(K, X, Y, Z)` probabilities for a `(C, X, Y, Z)` image, calling `progress(done, total)`
/// after each batch of tiles.
pub fn predict_probabilities<P: PatchPredictor + ?Sized>(
    predictor: &mut P,
    image: ArrayView4<f32>,
    config: &InferenceConfig,
    progress: impl FnMut(usize, usize),
) -> Result<Array4<f32>> {
    config.validate()?;
    let (channels, x, y, z) = image.dim();
    if channels == 0 || x == 0 || y == 0 || z == 0 {
        return Err(Error::msg(format!(
            "cannot predict an empty image of shape {:?}",
            image.shape()
        )));
    }
    if !config.crop_to_nonzero {
        return predict_tiles(predictor, image, config, progress);
    }
    let mut probabilities = Array4::<f32>::zeros((predictor.out_channels(), x, y, z));
    if let Some(bounds) = nonzero_bounds(image) {
        let window = s![.., bounds[0].clone(), bounds[1].clone(), bounds[2].clone()];
        let inner = predict_tiles(predictor, image.slice(window), config, progress)?;
        probabilities.slice_mut(window).assign(&inner);
    }
    Ok(probabilities)
}

/// The tiling itself, over the whole of `image`.
fn predict_tiles<P: PatchPredictor + ?Sized>(
    predictor: &mut P,
    image: ArrayView4<f32>,
    config: &InferenceConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<Array4<f32>> {
    let (channels, x, y, z) = image.dim();
    let whole_volume;
    let source = if config.standardization.per_patch() {
        image
    } else {
        let mut standardized = image.to_owned();
        config.standardization.apply(&mut standardized);
        whole_volume = standardized;
        whole_volume.view()
    };
    let tile = config.tile;
    let weights = match config.tiling {
        Tiling::Notebook => Array3::ones(tile),
        Tiling::Sliding => gaussian_importance(tile),
    };
    let starts: Vec<Vec<usize>> = [x, y, z]
        .iter()
        .zip(tile)
        .map(|(&dim, t)| tile_starts(dim, t, config.tiling, config.overlap))
        .collect();
    let mut corners = Vec::with_capacity(starts.iter().map(Vec::len).product());
    for &cx in &starts[0] {
        for &cy in &starts[1] {
            for &cz in &starts[2] {
                corners.push([cx, cy, cz]);
            }
        }
    }
    let out_channels = predictor.out_channels();
    let mut sum = Array4::<f32>::zeros((out_channels, x, y, z));
    let mut weight_sum = Array3::<f32>::zeros((x, y, z));
    let mut done = 0;
    // Tiles of nothing but zeros (air around a cropped head's corners) are not run: 0 there.
    if config.crop_to_nonzero {
        corners.retain(|&corner| crop_padded4(image, corner, tile).iter().any(|&v| v != 0.0));
    }
    for batch_corners in corners.chunks(config.batch_size) {
        let mut batch =
            Array5::<f32>::zeros((batch_corners.len(), channels, tile[0], tile[1], tile[2]));
        for (mut slot, &corner) in batch.axis_iter_mut(Axis(0)).zip(batch_corners) {
            let mut patch = crop_padded4(source, corner, tile);
            if config.standardization.per_patch() {
                config.standardization.apply(&mut patch);
            }
            slot.assign(&patch);
        }
        let expected = (batch_corners.len(), out_channels, tile[0], tile[1], tile[2]);
        let predicted = predict_mirrored(predictor, batch.view(), config.mirror, expected)?;
        for (probabilities, &[cx, cy, cz]) in predicted.axis_iter(Axis(0)).zip(batch_corners) {
            let [ex, ey, ez] =
                [(x, cx, 0), (y, cy, 1), (z, cz, 2)].map(|(dim, c, a)| tile[a].min(dim - c));
            let tile_weights = weights.slice(s![..ex, ..ey, ..ez]);
            let volume_window = s![cx..cx + ex, cy..cy + ey, cz..cz + ez];
            for (mut target, channel) in sum
                .axis_iter_mut(Axis(0))
                .zip(probabilities.axis_iter(Axis(0)))
            {
                Zip::from(target.slice_mut(volume_window))
                    .and(channel.slice(s![..ex, ..ey, ..ez]))
                    .and(tile_weights)
                    .for_each(|acc, &p, &w| *acc += p * w);
            }
            weight_sum
                .slice_mut(volume_window)
                .zip_mut_with(&tile_weights, |acc, &w| *acc += w);
        }
        done += batch_corners.len();
        progress(done, corners.len());
    }
    for mut channel in sum.axis_iter_mut(Axis(0)) {
        // Every voxel is covered by a tile with a positive weight, unless all its tiles were empty.
        channel.zip_mut_with(&weight_sum, |p, &w| {
            if w > 0.0 {
                *p /= w
            }
        });
    }
    Ok(sum)
}

/// Index ranges along x, y, z of the voxels non-zero in any channel; None when all are zero.
pub fn nonzero_bounds(image: ArrayView4<f32>) -> Option<[std::ops::Range<usize>; 3]> {
    let (_, x, y, z) = image.dim();
    let mut low = [x, y, z];
    let mut high = [0usize; 3];
    for channel in image.outer_iter() {
        for ((i, j, k), &v) in channel.indexed_iter() {
            if v != 0.0 {
                for (a, index) in [i, j, k].into_iter().enumerate() {
                    low[a] = low[a].min(index);
                    high[a] = high[a].max(index + 1);
                }
            }
        }
    }
    (high[0] > 0).then(|| [low[0]..high[0], low[1]..high[1], low[2]..high[2]])
}

/// One model call, or the mean over the 8 mirrorings (flip input, predict, flip back).
fn predict_mirrored<P: PatchPredictor + ?Sized>(
    predictor: &mut P,
    batch: ArrayView5<f32>,
    mirror: bool,
    expected: (usize, usize, usize, usize, usize),
) -> Result<Array5<f32>> {
    if !mirror {
        return predict_checked(predictor, batch, expected);
    }
    let mut mean = Array5::<f32>::zeros(expected);
    for flips in 0..8usize {
        let axes: Vec<Axis> = (0..3)
            .filter(|a| flips >> a & 1 == 1)
            .map(|a| Axis(a + 2))
            .collect();
        let mut flipped = batch;
        for &axis in &axes {
            flipped.invert_axis(axis);
        }
        // Models expect contiguous input.
        let contiguous = flipped.as_standard_layout();
        let mut predicted = predict_checked(predictor, contiguous.view(), expected)?;
        for &axis in &axes {
            predicted.invert_axis(axis);
        }
        mean += &predicted;
    }
    mean /= 8.0;
    Ok(mean)
}

fn predict_checked<P: PatchPredictor + ?Sized>(
    predictor: &mut P,
    batch: ArrayView5<f32>,
    expected: (usize, usize, usize, usize, usize),
) -> Result<Array5<f32>> {
    let predicted = predictor.predict(batch);
    if predicted.dim() != expected {
        return Err(Error::msg(format!(
            "the model returned shape {:?} for input {:?}; expected {:?}",
            predicted.shape(),
            batch.shape(),
            expected
        )));
    }
    Ok(predicted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainseg_transforms::{standardize_slices, zscore_brain};

    /// Returns channel 0 unchanged and sigmoid(channel 1 + channel 2): a known voxel-wise function.
    struct VoxelwiseModel {
        batch_sizes: Vec<usize>,
    }

    impl PatchPredictor for VoxelwiseModel {
        fn out_channels(&self) -> usize {
            2
        }
        fn predict(&mut self, batch: ArrayView5<f32>) -> Array5<f32> {
            self.batch_sizes.push(batch.len_of(Axis(0)));
            let (b, _, x, y, z) = batch.dim();
            Array5::from_shape_fn((b, 2, x, y, z), |(n, k, i, j, l)| {
                let v = |c| batch[[n, c, i, j, l]];
                if k == 0 {
                    v(0)
                } else {
                    sigmoid(v(1) + v(2))
                }
            })
        }
    }

    fn sigmoid(v: f32) -> f32 {
        1.0 / (1.0 + (-v).exp())
    }

    /// Channel-and-position-dependent values, non-zero, no symmetry.
    fn coded_image(shape: (usize, usize, usize)) -> Array4<f32> {
        let (x, y, z) = shape;
        Array4::from_shape_fn((3, x, y, z), |(c, i, j, k)| {
            1.0 + c as f32 + 0.01 * i as f32 + 0.1 * ((j * 7 + k * 3) % 11) as f32 - 0.05 * k as f32
        })
    }

    fn expected_voxelwise(image: &Array4<f32>) -> Array4<f32> {
        let (_, x, y, z) = image.dim();
        Array4::from_shape_fn((2, x, y, z), |(k, i, j, l)| {
            if k == 0 {
                image[[0, i, j, l]]
            } else {
                sigmoid(image[[1, i, j, l]] + image[[2, i, j, l]])
            }
        })
    }

    fn config(tiling: Tiling) -> InferenceConfig {
        InferenceConfig {
            tile: [16, 16, 8],
            tiling,
            batch_size: 3,
            standardization: Standardization::None,
            crop_to_nonzero: false,
            ..InferenceConfig::default()
        }
    }

    #[test]
    fn cropping_to_the_nonzero_box_changes_nothing_inside_it() {
        let mut image = coded_image((40, 36, 20));
        // Non-zero only in x 7..29, y 3..20, z 2..15 (in some channel).
        let mut outside = Array4::<bool>::from_elem(image.raw_dim(), true);
        outside.slice_mut(s![.., 7..29, 3..20, 2..15]).fill(false);
        image.zip_mut_with(&outside, |v, &o| {
            if o {
                *v = 0.0
            }
        });
        image[[2, 28, 19, 14]] = 1.5;
        assert_eq!(nonzero_bounds(image.view()), Some([7..29, 3..20, 2..15]));
        let uncropped = config(Tiling::Sliding);
        let cropped = InferenceConfig {
            crop_to_nonzero: true,
            ..uncropped.clone()
        };
        let run = |config: &InferenceConfig| {
            let mut model = VoxelwiseModel {
                batch_sizes: vec![],
            };
            predict_probabilities(&mut model, image.view(), config, |_, _| {}).unwrap()
        };
        let (whole, boxed) = (run(&uncropped), run(&cropped));
        // A voxel-wise model gives every covering tile the same value: equal up to rounding.
        let window = s![.., 7..29, 3..20, 2..15];
        let inside = max_abs_difference(
            &whole.slice(window).to_owned(),
            &boxed.slice(window).to_owned(),
        );
        assert!(inside < 1e-6, "inside the box: {inside}");
        // Outside, the uncropped run saw sigmoid(0) = 0.5 on channel 1; the cropped one writes 0.
        assert_eq!(whole[[1, 0, 0, 0]], 0.5);
        let mut outside_values = boxed.clone();
        outside_values.slice_mut(window).fill(0.0);
        assert!(outside_values.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn empty_images_and_empty_tiles_are_not_run() {
        let cropped = InferenceConfig {
            crop_to_nonzero: true,
            ..config(Tiling::Notebook)
        };
        let mut model = VoxelwiseModel {
            batch_sizes: vec![],
        };
        let zeros = Array4::<f32>::zeros((3, 20, 20, 10));
        let got = predict_probabilities(&mut model, zeros.view(), &cropped, |_, _| {}).unwrap();
        assert!(got.iter().all(|&v| v == 0.0));
        assert!(
            model.batch_sizes.is_empty(),
            "no tile of an empty image runs"
        );
        // Two voxels at opposite corners of a 48 x 48 x 8 box: of its 3 x 3 x 1 tiles of 16 x 16 x 8,
        // only the two corner tiles hold anything.
        let mut sparse = Array4::<f32>::zeros((3, 48, 48, 8));
        sparse[[0, 0, 0, 0]] = 1.0;
        sparse[[0, 47, 47, 7]] = 2.0;
        let got = predict_probabilities(&mut model, sparse.view(), &cropped, |_, _| {}).unwrap();
        assert_eq!(model.batch_sizes.iter().sum::<usize>(), 2);
        assert_eq!(got[[0, 47, 47, 7]], 2.0);
        assert_eq!(got[[0, 20, 20, 4]], 0.0);
    }

    fn max_abs_difference(a: &Array4<f32>, b: &Array4<f32>) -> f32 {
        assert_eq!(a.dim(), b.dim());
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn tile_starts_match_the_notebook_and_nnunet() {
        assert_eq!(tile_starts(240, 160, Tiling::Notebook, 0.5), vec![0, 160]);
        assert_eq!(
            tile_starts(155, 16, Tiling::Notebook, 0.5),
            (0..10).map(|i| 16 * i).collect::<Vec<_>>()
        );
        // nnU-Net by hand: 37 with 16, step 8 -> ceil(21/8)+1 = 4 steps of 21/3 = 7.
        assert_eq!(
            tile_starts(37, 16, Tiling::Sliding, 0.5),
            vec![0, 7, 14, 21]
        );
        // 41: ceil(25/8)+1 = 5 steps of 6.25: round(12.5) = 12 (ties to even), round(18.75) = 19.
        assert_eq!(
            tile_starts(41, 16, Tiling::Sliding, 0.5),
            vec![0, 6, 12, 19, 25]
        );
        // 19 with 8: ceil(11/4)+1 = 4 steps of 11/3.
        assert_eq!(tile_starts(19, 8, Tiling::Sliding, 0.5), vec![0, 4, 7, 11]);
        assert_eq!(tile_starts(240, 160, Tiling::Sliding, 0.5), vec![0, 80]);
        assert_eq!(tile_starts(16, 16, Tiling::Sliding, 0.5), vec![0]);
        assert_eq!(tile_starts(5, 16, Tiling::Sliding, 0.5), vec![0]);
        // No overlap: step = tile, last flush with the end.
        assert_eq!(tile_starts(40, 16, Tiling::Sliding, 0.0), vec![0, 12, 24]);
    }

    #[test]
    fn gaussian_is_symmetric_max_normalised_and_sigma_is_an_eighth() {
        let tile = [16, 12, 8];
        let g = gaussian_importance(tile);
        assert_eq!(g.iter().copied().fold(0.0, f32::max), 1.0);
        assert!(g.iter().all(|&w| w > 0.0));
        for ((i, j, k), &w) in g.indexed_iter() {
            assert_eq!(w, g[[15 - i, j, k]]);
            assert_eq!(w, g[[i, 11 - j, k]]);
            assert_eq!(w, g[[i, j, 7 - k]]);
        }
        // x: sigma 2, centre 7.5; g(0) / g(7) = exp(-(7.5^2 - 0.5^2) / 8) = exp(-7).
        assert!((g[[0, 5, 3]] - (-7.0f32).exp()).abs() < 1e-7);
        // z: sigma 1, centre 3.5; g(1) / g(3) = exp(-(2.5^2 - 0.5^2) / 2) = exp(-3).
        assert!((g[[7, 6, 1]] - (-3.0f32).exp()).abs() < 1e-6);
    }

    #[test]
    fn stitching_reproduces_a_voxelwise_model_for_both_tilings_with_padding() {
        for shape in [(37, 41, 19), (10, 41, 5)] {
            let image = coded_image(shape);
            let expected = expected_voxelwise(&image);
            for tiling in [Tiling::Notebook, Tiling::Sliding] {
                let mut model = VoxelwiseModel {
                    batch_sizes: vec![],
                };
                let mut calls = vec![];
                let got = predict_probabilities(
                    &mut model,
                    image.view(),
                    &config(tiling),
                    |done, total| calls.push((done, total)),
                )
                .unwrap();
                let difference = max_abs_difference(&got, &expected);
                assert!(difference < 1e-5, "{tiling:?} {shape:?}: {difference}");
                let tiles = [shape.0, shape.1, shape.2]
                    .iter()
                    .zip([16, 16, 8])
                    .map(|(&d, t)| tile_starts(d, t, tiling, 0.5).len())
                    .product::<usize>();
                assert_eq!(calls.last(), Some(&(tiles, tiles)));
                assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
                assert!(model.batch_sizes.iter().all(|&b| (1..=3).contains(&b)));
                assert_eq!(model.batch_sizes.iter().sum::<usize>(), tiles);
            }
        }
        // The grids: seed 3 x 3 x 3 tiles, sliding 4 x 5 x 4.
        assert_eq!(tile_starts(41, 16, Tiling::Notebook, 0.5), vec![0, 16, 32]);
    }

    #[test]
    fn seed_slices_standardise_each_tile() {
        let image = coded_image((20, 16, 8));
        let config = InferenceConfig {
            standardization: Standardization::NotebookSlices,
            ..config(Tiling::Notebook)
        };
        let mut model = VoxelwiseModel {
            batch_sizes: vec![],
        };
        let got = predict_probabilities(&mut model, image.view(), &config, |_, _| {}).unwrap();
        // Tiles at x = 0 and x = 16 (the second zero-padded to 16 wide), each standardised on its own.
        for corner in [[0, 0, 0], [16, 0, 0]] {
            let mut tile = crop_padded4(image.view(), corner, [16, 16, 8]);
            standardize_slices(&mut tile);
            let width = if corner[0] == 0 { 16 } else { 4 };
            for i in 0..width {
                for (j, k) in [(0, 0), (5, 3), (15, 7)] {
                    assert!((got[[0, corner[0] + i, j, k]] - tile[[0, i, j, k]]).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn zscore_standardises_the_whole_volume_once() {
        let mut image = coded_image((37, 41, 19));
        image.slice_mut(s![.., ..5, .., ..]).fill(0.0); // some background
        let config = InferenceConfig {
            standardization: Standardization::ZScoreBrain,
            ..config(Tiling::Sliding)
        };
        let mut model = VoxelwiseModel {
            batch_sizes: vec![],
        };
        let got = predict_probabilities(&mut model, image.view(), &config, |_, _| {}).unwrap();
        let mut standardized = image.clone();
        zscore_brain(&mut standardized);
        assert!(max_abs_difference(&got, &expected_voxelwise(&standardized)) < 1e-5);
    }

    /// Per tile, a 3x3x3 box mean with zeros outside the tile: mirror-equivariant. With `shift`,
    /// output voxel i reads input voxel i + 1 along x instead: not equivariant.
    struct NeighbourhoodModel {
        shift: bool,
    }

    impl PatchPredictor for NeighbourhoodModel {
        fn out_channels(&self) -> usize {
            1
        }
        fn predict(&mut self, batch: ArrayView5<f32>) -> Array5<f32> {
            let (b, _, x, y, z) = batch.dim();
            Array5::from_shape_fn((b, 1, x, y, z), |(n, _, i, j, k)| {
                if self.shift {
                    return batch.get([n, 0, i + 1, j, k]).copied().unwrap_or(0.0);
                }
                let mut total = 0.0;
                for di in -1i64..=1 {
                    for dj in -1i64..=1 {
                        for dk in -1i64..=1 {
                            let at = [i as i64 + di, j as i64 + dj, k as i64 + dk];
                            if at.iter().all(|&v| v >= 0) {
                                let at = at.map(|v| v as usize);
                                total += batch
                                    .get([n, 0, at[0], at[1], at[2]])
                                    .copied()
                                    .unwrap_or(0.0);
                            }
                        }
                    }
                }
                total / 27.0
            })
        }
    }

    #[test]
    fn mirroring_changes_nothing_for_a_mirror_symmetric_model() {
        let image = coded_image((37, 41, 19));
        for tiling in [Tiling::Notebook, Tiling::Sliding] {
            let plain = config(tiling);
            let mirrored = InferenceConfig {
                mirror: true,
                ..plain.clone()
            };
            let run = |shift, config: &InferenceConfig| {
                predict_probabilities(
                    &mut NeighbourhoodModel { shift },
                    image.view(),
                    config,
                    |_, _| {},
                )
                .unwrap()
            };
            assert!(max_abs_difference(&run(false, &plain), &run(false, &mirrored)) < 1e-5);
            // Control: the TTA path really flips (a shifted model gives a different answer).
            assert!(max_abs_difference(&run(true, &plain), &run(true, &mirrored)) > 0.01);
        }
    }

    struct WrongShape;

    impl PatchPredictor for WrongShape {
        fn out_channels(&self) -> usize {
            3
        }
        fn predict(&mut self, batch: ArrayView5<f32>) -> Array5<f32> {
            Array5::zeros((batch.len_of(Axis(0)), 2, 1, 1, 1))
        }
    }

    #[test]
    fn bad_settings_and_bad_models_are_errors() {
        let image = coded_image((8, 8, 8));
        let run = |config: &InferenceConfig| {
            predict_probabilities(&mut WrongShape, image.view(), config, |_, _| {})
        };
        let message = run(&config(Tiling::Sliding)).unwrap_err().to_string();
        assert!(message.contains("expected"), "{message}");
        assert!(run(&InferenceConfig {
            overlap: 1.0,
            ..config(Tiling::Sliding)
        })
        .is_err());
        assert!(run(&InferenceConfig {
            batch_size: 0,
            ..config(Tiling::Sliding)
        })
        .is_err());
        assert!(run(&InferenceConfig {
            tile: [0, 8, 8],
            ..config(Tiling::Sliding)
        })
        .is_err());
    }
}
