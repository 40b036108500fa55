//! A training patch at a glance (the notebook's `visualize_patch`): one modality slice beside class masks.
use ndarray::{ArrayView3, Axis};

use crate::font::{draw_text, text_width, GLYPH_SIZE};
use crate::grid::{FRAME, TILE_GAP};
use crate::header::Header;
use crate::labelled::GreyScale;
use crate::slice::{display_scale, letter_sides, render_plain, Convention, View};
use crate::{Error, Result, RgbImage};

const GAP: usize = 4;
const WHITE: [u8; 3] = [255, 255, 255];

/// Axial slice `z` of a patch `(X, Y, Z)`: the modality min-max scaled over that slice in grey, and beside it each
/// of `masks` (values above 0.5 white), each captioned (e.g. `("ground truth", mask)`) and lettered, under a header
/// whose legend says what white means (`mask_meaning`, e.g. "enhancing tumour"). Small patches are enlarged as
/// [`crate::display_scale`] says.
pub fn patch_view(
    modality: ArrayView3<f32>,
    masks: &[(&str, ArrayView3<f32>)],
    mask_meaning: &str,
    z: usize,
    spacing: [f32; 3],
    convention: Convention,
) -> Result<RgbImage> {
    for (caption, mask) in masks {
        crate::error::check_same_shape(
            &format!("patch image and mask ({caption})"),
            modality.shape(),
            mask.shape(),
        )?;
    }
    let depth = modality.len_of(Axis(2));
    if z >= depth {
        return Err(Error::msg(format!(
            "slice {z} is outside a patch of {depth} slices"
        )));
    }
    let shape = [modality.shape()[0], modality.shape()[1], depth];
    let scale = display_scale(shape, spacing);
    let grey = GreyScale::of(modality.index_axis(Axis(2), z).insert_axis(Axis(2)));
    let image_tile = render_plain(shape, View::Axial, z, spacing, convention, |[x, y, z]| {
        [grey.level(modality[(x, y, z)]); 3]
    });
    let mut tiles = vec![(format!("image z={z}"), image_tile)];
    for (caption, mask) in masks {
        let tile = render_plain(shape, View::Axial, z, spacing, convention, |[x, y, z]| {
            if mask[(x, y, z)] > 0.5 {
                WHITE
            } else {
                [0; 3]
            }
        });
        tiles.push((caption.to_string(), tile));
    }
    let tiles: Vec<(String, RgbImage)> = tiles
        .into_iter()
        .map(|(caption, tile)| {
            let mut tile = tile.scaled(scale);
            letter_sides(&mut tile, View::Axial, convention);
            (caption, tile)
        })
        .collect();

    let mut header = Header::new(GAP);
    header.line(convention.describe());
    header.swatch(WHITE, &format!("{mask_meaning} (mask)"));
    let caption_height = GLYPH_SIZE + 2 * GAP;
    let top = header.height() + caption_height;
    let tile_width = tiles[0].1.width;
    let cell_width = tiles
        .iter()
        .map(|(caption, _)| text_width(caption, 1))
        .max()
        .expect("the image tile")
        .max(tile_width);
    let width = (TILE_GAP + tiles.len() * (cell_width + TILE_GAP)).max(header.width());
    let mut picture = RgbImage::new(width, top + tiles[0].1.height + TILE_GAP, [0, 0, 0]);
    header.draw(&mut picture);
    for (index, (caption, tile)) in tiles.iter().enumerate() {
        let left = (TILE_GAP + index * (cell_width + TILE_GAP)) as i64;
        draw_text(
            &mut picture,
            left,
            (header.height() + GAP) as i64,
            caption,
            WHITE,
            1,
        );
        picture.paste(tile, left, top as i64);
        picture.outline(left, top as i64, tile.width, tile.height, FRAME);
    }
    Ok(picture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn image_and_mask_side_by_side() {
        let modality = Array3::from_shape_fn((40, 30, 3), |(x, _, z)| (x + 100 * z) as f32);
        let mut mask = Array3::<f32>::zeros((40, 30, 3));
        mask[(20, 15, 1)] = 1.0;
        let mut predicted = Array3::<f32>::zeros((40, 30, 3));
        predicted[(21, 15, 1)] = 1.0;
        let picture = patch_view(
            modality.view(),
            &[
                ("ground truth", mask.view()),
                ("prediction", predicted.view()),
            ],
            "enhancing tumour",
            1,
            [1.0; 3],
            Convention::Neurological,
        )
        .unwrap();
        // 40 voxels wide: enlarged 7 times, tiles 280 x 210, 14 px apart. Header: the convention and the legend
        // lines (8 px, 4-px gaps: 28 px), then the captions (16 px).
        let (scale, step, top) = (7, 280 + TILE_GAP, 28 + 16);
        assert_eq!(
            (picture.width, picture.height),
            (TILE_GAP + 3 * step, top + 210 + TILE_GAP)
        );
        // Neurological: column = x; rows run from y 29 at the top. The slice spans x 0..39 -> grey 0..255.
        let at = |tile: usize, x: usize, y: usize| {
            picture.pixel(
                TILE_GAP + tile * step + x * scale + 3,
                top + (29 - y) * scale + 3,
            )
        };
        assert_eq!(
            at(0, 20, 15),
            [131; 3],
            "20/39 of the range: 130.77 rounds up"
        );
        assert_eq!(at(1, 20, 15), [255; 3]);
        assert_eq!(at(1, 21, 15), [0; 3]);
        assert_eq!(at(2, 20, 15), [0; 3]);
        assert_eq!(at(2, 21, 15), [255; 3], "the prediction's own mask");
        // The legend's white swatch: the first 8 x 8 pixels of the second header line.
        assert_eq!(picture.pixel(4, 16), [255; 3]);
        assert_eq!(picture.pixel(4 + 7, 16 + 7), [255; 3]);
        assert!(patch_view(
            modality.view(),
            &[("ground truth", mask.view())],
            "enhancing tumour",
            3,
            [1.0; 3],
            Convention::Neurological
        )
        .is_err());
    }
}
