//! The slice stepper GIF: frame i shows slice i of each axis (clamped), sagittal, coronal and axial side by side.
use std::collections::HashMap;

use ndarray::ArrayView4;

use crate::font::draw_label;
use crate::slice::{render_slice, Convention, View};
use crate::RgbImage;

/// Hundredths of a second per frame.
const FRAME_DELAY: u16 = 8;
/// Grey levels in the palette; the other 64 entries are a 4 x 4 x 4 colour cube for labels and text.
const GREY_LEVELS: usize = 192;

/// GIF bytes stepping through an `(X, Y, Z, 3)` RGB volume (e.g. from [`crate::labelled_volume`]): as many
/// frames as the longest axis, looping. Colours are mapped to one fixed palette: fine greys for anatomy and a
/// coarse cube that holds the class colours exactly.
pub fn slices_gif(volume: ArrayView4<u8>, spacing: [f32; 3], convention: Convention) -> Vec<u8> {
    let shape = [volume.shape()[0], volume.shape()[1], volume.shape()[2]];
    let views = [View::Sagittal, View::Coronal, View::Axial];
    let frames = shape.iter().copied().max().unwrap_or(0);
    let render = |frame: usize| {
        let tiles = views.map(|view| {
            let index = frame.min(shape[view.fixed_axis()] - 1);
            let mut tile = render_slice(volume, view, index, spacing, convention);
            let axis_name = ["x", "y", "z"][view.fixed_axis()];
            draw_label(
                &mut tile,
                2,
                2,
                &format!("{axis_name}={index}"),
                [255, 255, 255],
            );
            tile
        });
        side_by_side(&tiles)
    };
    let first = render(0);
    let palette = Palette::new();
    let mut bytes = Vec::new();
    {
        let mut encoder = gif::Encoder::new(
            &mut bytes,
            first.width as u16,
            first.height as u16,
            &palette.rgb,
        )
        .expect("writing to memory cannot fail");
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .expect("writing to memory cannot fail");
        let mut indices = HashMap::new();
        for frame_index in 0..frames {
            let picture = if frame_index == 0 {
                first.clone()
            } else {
                render(frame_index)
            };
            let pixels: Vec<u8> = picture
                .pixels
                .chunks_exact(3)
                .map(|rgb| {
                    let rgb = [rgb[0], rgb[1], rgb[2]];
                    *indices.entry(rgb).or_insert_with(|| palette.nearest(rgb))
                })
                .collect();
            let mut frame = gif::Frame::from_indexed_pixels(
                picture.width as u16,
                picture.height as u16,
                pixels,
                None,
            );
            frame.delay = FRAME_DELAY;
            encoder
                .write_frame(&frame)
                .expect("writing to memory cannot fail");
        }
    }
    bytes
}

/// Pictures in one row, vertically centred on a black background.
fn side_by_side(tiles: &[RgbImage]) -> RgbImage {
    let width = tiles.iter().map(|tile| tile.width).sum();
    let height = tiles.iter().map(|tile| tile.height).max().unwrap_or(0);
    let mut image = RgbImage::new(width, height, [0, 0, 0]);
    let mut left = 0;
    for tile in tiles {
        image.paste(tile, left as i64, ((height - tile.height) / 2) as i64);
        left += tile.width;
    }
    image
}

/// The fixed 256-colour palette as GIF wants it (RGB triplets).
struct Palette {
    rgb: Vec<u8>,
}

impl Palette {
    fn new() -> Self {
        let greys = (0..GREY_LEVELS)
            .map(|i| (i * 255 / (GREY_LEVELS - 1)) as u8)
            .flat_map(|g| [g, g, g]);
        let cube = (0..64).flat_map(|i| [i / 16, i / 4 % 4, i % 4].map(|level| (level * 85) as u8));
        Palette {
            rgb: greys.chain(cube).collect(),
        }
    }

    /// The index of the palette colour closest to `rgb` (squared Euclidean distance).
    fn nearest(&self, rgb: [u8; 3]) -> u8 {
        let distance = |entry: &[u8]| {
            entry
                .iter()
                .zip(rgb)
                .map(|(&a, b)| (a as i32 - b as i32).pow(2))
                .sum::<i32>()
        };
        let (index, _) = self
            .rgb
            .chunks_exact(3)
            .enumerate()
            .min_by_key(|(_, entry)| distance(entry))
            .expect("256 entries");
        index as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn one_frame_per_slice_of_the_longest_axis() {
        let mut volume = Array4::<u8>::from_elem((40, 36, 24, 3), 90);
        // Away from the lettered edges of every view.
        volume
            .slice_mut(ndarray::s![12, 12, 6, ..])
            .assign(&ndarray::arr1(&[255, 0, 0]));
        let bytes = slices_gif(volume.view(), [1.0, 1.0, 2.0], Convention::Radiological);
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(bytes.as_slice()).unwrap();
        // Sagittal 36 x 48, coronal 40 x 48, axial 40 x 36 (z voxels are 2 mm).
        assert_eq!((decoder.width(), decoder.height()), (36 + 40 + 40, 48));
        let mut red_frames = Vec::new();
        let mut frames = 0;
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            if frame.buffer.chunks_exact(4).any(|p| p[..3] == [255, 0, 0]) {
                red_frames.push(frames);
            }
            frames += 1;
        }
        assert_eq!(frames, 40);
        // Slice 6 crosses the voxel axially, slice 12 sagittally and coronally; its colour stays exact.
        assert_eq!(red_frames, [6, 12]);
    }

    #[test]
    fn palette_keeps_class_colours_and_greys_close() {
        let palette = Palette::new();
        for colour in [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 0],
            [255, 255, 255],
        ] {
            let index = palette.nearest(colour) as usize;
            assert_eq!(&palette.rgb[3 * index..3 * index + 3], &colour);
        }
        let index = palette.nearest([100, 100, 100]) as usize;
        assert!((palette.rgb[3 * index] as i32 - 100).abs() <= 1);
    }
}
