//! Ground truth beside prediction through one point (the notebook's `predict_and_viz` figure): rows ground truth
//! and prediction, columns sagittal, coronal and axial.
use ndarray::ArrayView3;

use crate::font::{draw_text, text_width, GLYPH_SIZE};
use crate::grid::{FRAME, TILE_GAP};
use crate::header::Header;
use crate::labelled::{labelled_volume, Overlay};
use crate::slice::{display_scale, render_slice_scaled, rendered_size, Convention, View};
use crate::{Error, Result, RgbImage};

const GAP: usize = 4;

/// The labelled FLAIR through `point` (`[x, y, z]` voxel indices) with the ground truth in the top row and the
/// prediction in the bottom row, under a header that says so, names the convention and shows the class colours.
/// Small volumes are enlarged as [`crate::display_scale`] says.
pub fn prediction_comparison(
    flair: ArrayView3<f32>,
    truth: ArrayView3<u8>,
    prediction: ArrayView3<u8>,
    spacing: [f32; 3],
    point: [usize; 3],
    convention: Convention,
    overlay: Overlay,
) -> Result<RgbImage> {
    crate::error::check_same_shape(
        "ground truth and prediction",
        truth.shape(),
        prediction.shape(),
    )?;
    let shape = [flair.shape()[0], flair.shape()[1], flair.shape()[2]];
    if (0..3).any(|axis| point[axis] >= shape[axis]) {
        return Err(Error::msg(format!(
            "point {point:?} is outside the volume {shape:?}"
        )));
    }
    let rows = [
        ("ground truth", labelled_volume(flair, truth, overlay)?),
        ("prediction", labelled_volume(flair, prediction, overlay)?),
    ];
    let views = [View::Sagittal, View::Coronal, View::Axial];
    let scale = display_scale(shape, spacing);
    let sizes = views.map(|view| {
        let (width, height) = rendered_size(shape, view, spacing);
        (width * scale, height * scale)
    });
    let headings = views.map(|view| {
        let axis = view.fixed_axis();
        format!("{} {}={}", view.name(), ["x", "y", "z"][axis], point[axis])
    });
    // Narrow tiles: widen the cells so the column headings do not run into each other.
    let widest_heading = headings
        .iter()
        .map(|h| text_width(h, 1))
        .max()
        .expect("three views");
    let cell_width = sizes
        .iter()
        .map(|size| size.0)
        .max()
        .expect("three views")
        .max(widest_heading + GAP);
    let cell_height = sizes.iter().map(|size| size.1).max().expect("three views");
    let label_width = text_width("ground truth", 1) + 4 * GAP;
    let mut header = Header::new(GAP);
    header.title("ground truth (top) and prediction (bottom)");
    header.line(convention.describe());
    header.legend();
    let line = GLYPH_SIZE + GAP;
    let top = header.height() + line;
    let width = (label_width + views.len() * (cell_width + TILE_GAP)).max(header.width());
    let height = top + rows.len() * (cell_height + TILE_GAP);

    let mut image = RgbImage::new(width, height, [0, 0, 0]);
    let white = [255, 255, 255];
    header.draw(&mut image);
    for (column, view) in views.into_iter().enumerate() {
        let left = (label_width + column * (cell_width + TILE_GAP)) as i64;
        let axis = view.fixed_axis();
        draw_text(
            &mut image,
            left,
            header.height() as i64,
            &headings[column],
            white,
            1,
        );
        for (row, (_, volume)) in rows.iter().enumerate() {
            let tile =
                render_slice_scaled(volume.view(), view, point[axis], spacing, convention, scale);
            let (x, y) = (
                left + ((cell_width - tile.width) / 2) as i64,
                (top + row * (cell_height + TILE_GAP) + (cell_height - tile.height) / 2) as i64,
            );
            image.paste(&tile, x, y);
            image.outline(x, y, tile.width, tile.height, FRAME);
        }
    }
    for (row, (name, _)) in rows.iter().enumerate() {
        let middle = top + row * (cell_height + TILE_GAP) + cell_height / 2;
        draw_text(&mut image, GAP as i64, middle as i64, name, white, 1);
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn truth_on_top_prediction_below() {
        let flair = Array3::from_elem((40, 40, 30), 1.0f32);
        let mut truth = Array3::<u8>::zeros((40, 40, 30));
        let mut prediction = truth.clone();
        truth[(20, 20, 15)] = 3;
        prediction[(20, 20, 15)] = 1;
        let image = prediction_comparison(
            flair.view(),
            truth.view(),
            prediction.view(),
            [1.0; 3],
            [20, 20, 15],
            Convention::Radiological,
            Overlay::Replace,
        )
        .unwrap();
        // 40 voxels are enlarged 7 times: tiles 280 x 280 (axial), 280 x 210 (coronal, sagittal: 30 slices).
        let (label_width, scale, cell) = (96 + 16, 7, 280);
        // Header: a 16-px title, the convention and the legend lines (8 px), a 4-px gap after each and on top;
        // then a line of column headings (8 + 4 px).
        let top = 4 + 20 + 12 + 12 + 12;
        let step = cell + TILE_GAP;
        assert_eq!(
            (image.width, image.height),
            (label_width + 3 * step, top + 2 * step)
        );
        // Axial column (third): radiological column 39 - 20 = 19, anterior-up row 39 - 20 = 19, in 7 x 7 blocks.
        let axial = |row: usize| {
            image.pixel(
                label_width + 2 * step + 19 * scale + 3,
                top + row * step + 19 * scale + 3,
            )
        };
        assert_eq!(axial(0), [0, 0, 255], "enhancing in the truth");
        assert_eq!(axial(1), [255, 0, 0], "edema predicted");
        // The legend: every class colour in the header.
        for colour in crate::CLASS_COLOURS {
            assert!(
                (0..top).any(|y| (0..image.width).any(|x| image.pixel(x, y) == colour)),
                "{colour:?}"
            );
        }
        let outside = prediction_comparison(
            flair.view(),
            truth.view(),
            prediction.view(),
            [1.0; 3],
            [20, 40, 15],
            Convention::Radiological,
            Overlay::Replace,
        );
        assert!(outside.is_err());
    }
}
