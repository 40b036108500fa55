//! The slice grid: rows axial, coronal, sagittal; six slices each, through the tumour or at random.
use ndarray::{ArrayView3, Axis};
use rand::SeedableRng;

use crate::font::{draw_label, draw_text, text_width};
use crate::header::Header;
use crate::labelled::{labelled_volume, Overlay};
use crate::slice::{display_scale, render_slice_scaled, rendered_size, Convention, View};
use crate::{Result, RgbImage};

/// Slices per row.
const COLUMNS: usize = 6;
/// Space around text, pixels.
const GAP: usize = 4;
/// Space between tiles, wide enough that the side letters of neighbouring tiles read apart.
pub(crate) const TILE_GAP: usize = 14;
/// The thin frame drawn around each tile.
pub(crate) const FRAME: [u8; 3] = [90, 90, 90];

/// Which slices the grid shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SliceChoice {
    /// Spread evenly through the labelled voxels' extent along each axis (the whole axis when there are none).
    #[default]
    ThroughTumour,
    /// Drawn at random inside the head (where FLAIR is above its minimum), reproducibly from a seed (like the
    /// notebook's grid).
    Random { seed: u64 },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GridOptions {
    pub slices: SliceChoice,
    pub convention: Convention,
    pub overlay: Overlay,
    /// A first header line, larger, saying what the picture shows (e.g. "BraTS_001: prediction"); none when empty.
    pub title: String,
}

/// A picture of 3 rows (axial, coronal, sagittal) by 6 slices of the labelled FLAIR, each tile named by its
/// slice, the sides lettered, and a header with the title, the convention and the class colours. Small volumes are
/// enlarged (see [`crate::display_scale`]).
pub fn slice_grid(
    flair: ArrayView3<f32>,
    labels: ArrayView3<u8>,
    spacing: [f32; 3],
    options: &GridOptions,
) -> Result<RgbImage> {
    let volume = labelled_volume(flair, labels, options.overlay)?;
    let shape = [flair.shape()[0], flair.shape()[1], flair.shape()[2]];
    let scale = display_scale(shape, spacing);
    let tile_sizes = View::ALL.map(|view| rendered_size(shape, view, spacing));
    let cell_width = scale
        * tile_sizes
            .iter()
            .map(|size| size.0)
            .max()
            .expect("three views");
    let cell_height = scale
        * tile_sizes
            .iter()
            .map(|size| size.1)
            .max()
            .expect("three views");
    let label_width = text_width("sagittal", 1) + 2 * GAP;
    let mut header = Header::new(GAP);
    header.title(&options.title);
    header.line(options.convention.describe());
    header.legend();
    let width = (label_width + COLUMNS * (cell_width + TILE_GAP)).max(header.width());
    let height = header.height() + View::ALL.len() * (cell_height + TILE_GAP);

    let mut image = RgbImage::new(width, height, [0, 0, 0]);
    header.draw(&mut image);
    // Random slices are drawn inside the head: where FLAIR rises above its minimum.
    let background = flair
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::INFINITY, f32::min);
    let mut random = match options.slices {
        SliceChoice::Random { seed } => Some(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
        SliceChoice::ThroughTumour => None,
    };
    for (row, view) in View::ALL.into_iter().enumerate() {
        let top = (header.height() + row * (cell_height + TILE_GAP)) as i64;
        draw_text(
            &mut image,
            GAP as i64,
            top + (cell_height / 2) as i64,
            view.name(),
            [255, 255, 255],
            1,
        );
        let slices = match random.as_mut() {
            Some(rng) => random_slices(extent(flair, view, |&value| value > background), rng),
            None => slices_through_tumour(labels, view),
        };
        for (column, index) in slices.into_iter().enumerate() {
            let tile = render_slice_scaled(
                volume.view(),
                view,
                index,
                spacing,
                options.convention,
                scale,
            );
            let left = (label_width + column * (cell_width + TILE_GAP)) as i64;
            // Centred in its cell, so views of different sizes line up.
            let (x, y) = (
                left + ((cell_width - tile.width) / 2) as i64,
                top + ((cell_height - tile.height) / 2) as i64,
            );
            image.paste(&tile, x, y);
            image.outline(x, y, tile.width, tile.height, FRAME);
            let axis_name = ["x", "y", "z"][view.fixed_axis()];
            draw_label(
                &mut image,
                x + 2,
                y + 2,
                &format!("{axis_name}={index}"),
                [255, 255, 255],
            );
        }
    }
    Ok(image)
}

/// Six slices spread evenly inside the extent of labelled voxels along the view's fixed axis, away from its
/// ends where the tumour is thin.
pub(crate) fn slices_through_tumour(labels: ArrayView3<u8>, view: View) -> [usize; COLUMNS] {
    let (low, high) = extent(labels, view, |&label| label > 0);
    std::array::from_fn(|i| low + (high - low) * (i + 1) / (COLUMNS + 1))
}

/// The first and last slice along the view's fixed axis holding a voxel that passes `keep` (the whole axis when
/// none does).
fn extent<T>(volume: ArrayView3<T>, view: View, keep: impl Fn(&T) -> bool) -> (usize, usize) {
    let axis = Axis(view.fixed_axis());
    let kept: Vec<usize> = volume
        .axis_iter(axis)
        .enumerate()
        .filter(|(_, plane)| plane.iter().any(&keep))
        .map(|(index, _)| index)
        .collect();
    match (kept.first(), kept.last()) {
        (Some(&low), Some(&high)) => (low, high),
        _ => (0, volume.len_of(axis) - 1),
    }
}

/// Six distinct slices from `low..=high` in increasing order (repeating the last when there are fewer).
fn random_slices(
    (low, high): (usize, usize),
    rng: &mut rand_chacha::ChaCha8Rng,
) -> [usize; COLUMNS] {
    let length = high - low + 1;
    let mut chosen = rand::seq::index::sample(rng, length, COLUMNS.min(length)).into_vec();
    chosen.sort_unstable();
    std::array::from_fn(|i| low + chosen[i.min(chosen.len() - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array3};

    #[test]
    fn slices_spread_through_the_tumour_or_the_whole_axis() {
        let mut labels = Array3::<u8>::zeros((10, 8, 30));
        assert_eq!(
            slices_through_tumour(labels.view(), View::Axial),
            [4, 8, 12, 16, 20, 24],
            "29 * k / 7"
        );
        labels.slice_mut(s![3, 2, 7..=20]).fill(1);
        assert_eq!(
            slices_through_tumour(labels.view(), View::Axial),
            [8, 10, 12, 14, 16, 18],
            "7 + 13 * k / 7"
        );
        assert_eq!(slices_through_tumour(labels.view(), View::Sagittal), [3; 6]);
    }

    #[test]
    fn grid_has_three_rows_of_six_tiles_with_labels_in_colour() {
        let flair = Array3::from_elem((48, 40, 12), 7.0f32);
        let mut labels = Array3::<u8>::zeros((48, 40, 12));
        labels.slice_mut(s![30..32, 12..14, 4..6]).fill(3);
        let options = GridOptions {
            title: "case 7: prediction".into(),
            ..GridOptions::default()
        };
        let image = slice_grid(flair.view(), labels.view(), [1.0; 3], &options).unwrap();
        // The longest side, 48 voxels, is enlarged 6 times (288 px): cells 288 x 240 (the axial view). The
        // header: a 16-px title, the convention and the legend (8 px each), a 4-px gap after each and on top.
        let scale = 6;
        let (header, cell_height, label_width, cell_step) =
            (4 + 20 + 12 + 12, 40 * scale, 72, 48 * scale + TILE_GAP);
        assert_eq!(
            (image.width, image.height),
            (
                label_width + 6 * cell_step,
                header + 3 * (cell_height + TILE_GAP)
            )
        );
        // Every axial tile shows z = 4 (the tumour spans z 4..5). Voxel (30, 12): radiological column
        // 47 - 30 = 17, anterior-up row 39 - 12 = 27; each voxel is a 6 x 6 block.
        let at = |column: usize, voxel_column: usize, voxel_row: usize| {
            image.pixel(
                label_width + column * cell_step + voxel_column * scale + 3,
                header + voxel_row * scale + 3,
            )
        };
        for column in 0..COLUMNS {
            assert_eq!(at(column, 17, 27), [0, 0, 255]);
        }
        assert_eq!(at(0, 17, 26), [0, 0, 255]);
        assert_eq!(at(0, 17, 25), [0, 0, 0], "constant FLAIR scales to black");
        // The legend: a swatch of each class colour in the header, left to right as the classes.
        let legend_top = 4 + 20 + 12;
        let swatch_at =
            |colour: [u8; 3]| (0..image.width).find(|&x| image.pixel(x, legend_top + 4) == colour);
        let swatches = crate::CLASS_COLOURS.map(swatch_at);
        assert!(
            swatches.iter().all(Option::is_some) && swatches.windows(2).all(|w| w[0] < w[1]),
            "{swatches:?}"
        );
        // The title is drawn: white pixels in its band.
        assert!((4..20).any(|y| (4..200).any(|x| image.pixel(x, y) == [255; 3])));
        // A frame separates neighbouring tiles: the column just right of the first tile is grey.
        assert_eq!(image.pixel(label_width + 48 * scale, header + 100), FRAME);
    }

    #[test]
    fn random_slices_are_reproducible_from_the_seed() {
        let flair = Array3::from_shape_fn((40, 40, 30), |(x, y, z)| (x + y + z) as f32);
        let labels = Array3::<u8>::zeros((40, 40, 30));
        let options = |seed| GridOptions {
            slices: SliceChoice::Random { seed },
            ..GridOptions::default()
        };
        let first = slice_grid(flair.view(), labels.view(), [1.0; 3], &options(1)).unwrap();
        assert_eq!(
            first,
            slice_grid(flair.view(), labels.view(), [1.0; 3], &options(1)).unwrap()
        );
        assert_ne!(
            first,
            slice_grid(flair.view(), labels.view(), [1.0; 3], &options(2)).unwrap()
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let chosen = random_slices((10, 25), &mut rng);
        assert!(
            chosen.windows(2).all(|pair| pair[0] < pair[1]),
            "{chosen:?}"
        );
        assert!(chosen[0] >= 10 && chosen[5] <= 25, "{chosen:?}");
        assert_eq!(
            random_slices((4, 6), &mut rng),
            [4, 5, 6, 6, 6, 6],
            "short ranges repeat their last slice"
        );
    }
}
