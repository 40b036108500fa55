//! Ground truth beside prediction through one point (the notebook's `predict_and_viz` figure): rows ground truth
//! and prediction, columns sagittal, coronal and axial.
use ndarray::ArrayView3;

use crate::font::{draw_text, text_width, GLYPH_SIZE};
use crate::labelled::{draw_legend, labelled_volume, legend_width, Overlay};
use crate::slice::{render_slice, rendered_size, Convention, View};
use crate::{Error, Result, RgbImage};

const GAP: usize = 4;

/// The labelled FLAIR through `point` (`[x, y, z]` voxel indices) with the ground truth in the top row and the
/// prediction in the bottom row, a header naming the convention and a colour legend.
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
    let sizes = views.map(|view| rendered_size(shape, view, spacing));
    let headings = views.map(|view| {
        let axis = view.fixed_axis();
        format!("{} {}={}", view.name(), ["x", "y", "z"][axis], point[axis])
    });
    // Small volumes: widen the cells so the column headings do not run into each other.
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
    let line = GLYPH_SIZE + GAP;
    let header_height = 3 * line + GAP;
    let header_width = text_width(convention.describe(), 1).max(legend_width()) + 2 * GAP;
    let width = (label_width + views.len() * (cell_width + GAP)).max(header_width);
    let height = header_height + rows.len() * (cell_height + GAP);

    let mut image = RgbImage::new(width, height, [0, 0, 0]);
    let white = [255, 255, 255];
    draw_text(
        &mut image,
        GAP as i64,
        GAP as i64,
        convention.describe(),
        white,
        1,
    );
    draw_legend(&mut image, GAP as i64, (GAP + line) as i64);
    for (column, view) in views.into_iter().enumerate() {
        let left = (label_width + column * (cell_width + GAP)) as i64;
        let axis = view.fixed_axis();
        draw_text(
            &mut image,
            left,
            (GAP + 2 * line) as i64,
            &headings[column],
            white,
            1,
        );
        for (row, (_, volume)) in rows.iter().enumerate() {
            let tile = render_slice(volume.view(), view, point[axis], spacing, convention);
            let top = (header_height + row * (cell_height + GAP)) as i64;
            image.paste(
                &tile,
                left + ((cell_width - tile.width) / 2) as i64,
                top + ((cell_height - tile.height) / 2) as i64,
            );
        }
    }
    for (row, (name, _)) in rows.iter().enumerate() {
        let top = header_height + row * (cell_height + GAP) + cell_height / 2;
        draw_text(&mut image, GAP as i64, top as i64, name, white, 1);
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
        let (label_width, header, cell) = (96 + 16, 3 * 12 + 4, 40);
        // Tiles are 40 px, narrower than the widest heading ("sagittal x=20", 13 glyphs of 8 px),
        // so cells are 13 * 8 + 4 = 108 px wide and the tiles sit centred, 34 px in.
        let cell_width = 13 * 8 + 4;
        assert_eq!(
            (image.width, image.height),
            (label_width + 3 * (cell_width + 4), header + 2 * (cell + 4))
        );
        // Axial column (third): radiological column 39 - 20 = 19, anterior-up row 39 - 20 = 19.
        let axial_left = label_width + 2 * (cell_width + 4) + (cell_width - cell) / 2;
        assert_eq!(
            image.pixel(axial_left + 19, header + 19),
            [0, 0, 255],
            "enhancing in the truth"
        );
        assert_eq!(
            image.pixel(axial_left + 19, header + cell + 4 + 19),
            [255, 0, 0],
            "edema predicted"
        );
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
