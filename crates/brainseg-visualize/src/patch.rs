//! A training patch at a glance (the notebook's `visualize_patch`): one modality slice beside one class mask.
use ndarray::{ArrayView3, Axis};

use crate::font::{draw_text, GLYPH_SIZE};
use crate::labelled::GreyScale;
use crate::slice::{letter_sides, render_plain, Convention, View};
use crate::{Error, Result, RgbImage};

const GAP: usize = 4;

/// Axial slice `z` of a patch `(X, Y, Z)`: the modality min-max scaled over that slice in grey, and beside it the
/// mask (values above 0.5 white), each captioned and lettered.
pub fn patch_view(
    modality: ArrayView3<f32>,
    mask: ArrayView3<f32>,
    z: usize,
    spacing: [f32; 3],
    convention: Convention,
) -> Result<RgbImage> {
    crate::error::check_same_shape("patch image and mask", modality.shape(), mask.shape())?;
    let depth = modality.len_of(Axis(2));
    if z >= depth {
        return Err(Error::msg(format!(
            "slice {z} is outside a patch of {depth} slices"
        )));
    }
    let shape = [modality.shape()[0], modality.shape()[1], depth];
    let grey = GreyScale::of(modality.index_axis(Axis(2), z).insert_axis(Axis(2)));
    let mut image_tile = render_plain(shape, View::Axial, z, spacing, convention, |[x, y, z]| {
        [grey.level(modality[(x, y, z)]); 3]
    });
    let mut mask_tile = render_plain(shape, View::Axial, z, spacing, convention, |[x, y, z]| {
        if mask[(x, y, z)] > 0.5 {
            [255; 3]
        } else {
            [0; 3]
        }
    });
    letter_sides(&mut image_tile, View::Axial, convention);
    letter_sides(&mut mask_tile, View::Axial, convention);

    let caption_height = GLYPH_SIZE + 2 * GAP;
    let width = 2 * image_tile.width + 3 * GAP;
    let mut picture = RgbImage::new(width, image_tile.height + caption_height + GAP, [0, 0, 0]);
    let right = (2 * GAP + image_tile.width) as i64;
    draw_text(
        &mut picture,
        GAP as i64,
        GAP as i64,
        &format!("image z={z}"),
        [255, 255, 255],
        1,
    );
    draw_text(&mut picture, right, GAP as i64, "mask", [255, 255, 255], 1);
    picture.paste(&image_tile, GAP as i64, caption_height as i64);
    picture.paste(&mask_tile, right, caption_height as i64);
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
        let picture = patch_view(
            modality.view(),
            mask.view(),
            1,
            [1.0; 3],
            Convention::Neurological,
        )
        .unwrap();
        assert_eq!((picture.width, picture.height), (2 * 40 + 12, 30 + 16 + 4));
        // Neurological: column = x; rows run from y 29 at the top. The slice spans x 0..39 -> grey 0..255.
        let (image_left, mask_left, top) = (4, 8 + 40, 16);
        assert_eq!(
            picture.pixel(image_left + 20, top + 29 - 15),
            [131; 3],
            "20/39 of the range: 130.77 rounds up"
        );
        assert_eq!(picture.pixel(mask_left + 20, top + 29 - 15), [255; 3]);
        assert_eq!(picture.pixel(mask_left + 21, top + 29 - 15), [0; 3]);
        assert!(patch_view(
            modality.view(),
            mask.view(),
            3,
            [1.0; 3],
            Convention::Neurological
        )
        .is_err());
    }
}
