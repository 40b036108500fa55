//! The slice stepper GIF: sagittal, coronal and axial side by side, each stepping through the slices that hold
//! tissue, under a header with the title, the convention and the class colours.
use std::collections::HashMap;

use ndarray::{ArrayView4, Axis};

use crate::font::draw_label;
use crate::grid::{FRAME, TILE_GAP};
use crate::header::Header;
use crate::slice::{display_scale, render_slice_scaled, Convention, View};
use crate::RgbImage;

/// Hundredths of a second per frame.
const FRAME_DELAY: u16 = 8;
/// Grey levels in the palette; the other 64 entries are a 4 x 4 x 4 colour cube for labels and text.
const GREY_LEVELS: usize = 192;
/// Space around the header's text, pixels.
const GAP: usize = 4;
/// A slice holds tissue when at least this share of the fullest slice along its axis is not black.
const TISSUE_SHARE: f64 = 0.01;

/// GIF bytes stepping through an `(X, Y, Z, 3)` RGB volume (e.g. from [`crate::labelled_volume`]), looping.
/// Each view steps through its tissue's extent: the slices with any non-black voxel (ignoring slices with less than
/// 1% of the fullest slice's), so no frame is an empty black box; there are as many frames as the longest extent,
/// and shorter ones advance in proportion. `title` (e.g. "BraTS_001: ground truth") heads every frame with the
/// convention and the class colours. Small volumes are enlarged as [`crate::display_scale`] says. Colours are
/// mapped to one fixed palette: fine greys for anatomy and a coarse cube that holds the class colours exactly.
pub fn slices_gif(
    volume: ArrayView4<u8>,
    spacing: [f32; 3],
    convention: Convention,
    title: &str,
) -> Vec<u8> {
    let shape = [volume.shape()[0], volume.shape()[1], volume.shape()[2]];
    let scale = display_scale(shape, spacing);
    let views = [View::Sagittal, View::Coronal, View::Axial];
    let extents = views.map(|view| tissue_extent(volume, view.fixed_axis()));
    let frames = extents
        .iter()
        .map(|(low, high)| high - low + 1)
        .max()
        .unwrap_or(1);
    let mut header = Header::new(GAP);
    header.title(title);
    header.line(convention.describe());
    header.legend();
    let render = |frame: usize| {
        let tiles: Vec<RgbImage> = views
            .iter()
            .zip(extents)
            .map(|(&view, extent)| {
                let index = frame_slice(extent, frame, frames);
                let mut tile = render_slice_scaled(volume, view, index, spacing, convention, scale);
                let axis_name = ["x", "y", "z"][view.fixed_axis()];
                draw_label(
                    &mut tile,
                    2,
                    2,
                    &format!("{axis_name}={index}"),
                    [255, 255, 255],
                );
                tile
            })
            .collect();
        side_by_side(&header, &tiles)
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

/// The first and last slice along `axis` with tissue (non-black voxels, at least [`TISSUE_SHARE`] of the fullest
/// slice's count); the whole axis when there is none.
fn tissue_extent(volume: ArrayView4<u8>, axis: usize) -> (usize, usize) {
    let counts: Vec<usize> = volume
        .axis_iter(Axis(axis))
        .map(|plane| {
            plane
                .lanes(Axis(2))
                .into_iter()
                .filter(|rgb| rgb.iter().any(|&channel| channel > 0))
                .count()
        })
        .collect();
    let fullest = counts.iter().copied().max().unwrap_or(0);
    if fullest == 0 {
        return (0, counts.len().saturating_sub(1));
    }
    let threshold = ((fullest as f64 * TISSUE_SHARE).ceil() as usize).max(1);
    let kept = |count: &usize| *count >= threshold;
    let low = counts.iter().position(kept).expect("the fullest slice");
    let high = counts.iter().rposition(kept).expect("the fullest slice");
    (low, high)
}

/// The slice of `(low, high)` that frame `frame` of `frames` shows: the extent stepped through in proportion,
/// its first slice on the first frame and its last on the last.
fn frame_slice((low, high): (usize, usize), frame: usize, frames: usize) -> usize {
    if frames <= 1 {
        return low;
    }
    low + (frame * (high - low) + (frames - 1) / 2) / (frames - 1)
}

/// The header, then the tiles in one row below it, vertically centred and framed, on a black background.
fn side_by_side(header: &Header, tiles: &[RgbImage]) -> RgbImage {
    let tiles_width: usize = tiles
        .iter()
        .map(|tile| tile.width + TILE_GAP)
        .sum::<usize>()
        + TILE_GAP;
    let width = tiles_width.max(header.width());
    let tiles_height = tiles.iter().map(|tile| tile.height).max().unwrap_or(0);
    let top = header.height();
    let mut image = RgbImage::new(width, top + tiles_height + TILE_GAP, [0, 0, 0]);
    header.draw(&mut image);
    let mut left = TILE_GAP;
    for tile in tiles {
        let y = (top + (tiles_height - tile.height) / 2) as i64;
        image.paste(tile, left as i64, y);
        image.outline(left as i64, y, tile.width, tile.height, FRAME);
        left += tile.width + TILE_GAP;
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
    use ndarray::{s, Array4};

    /// Decoded frames of a GIF as RGBA buffers, and its size.
    fn decode(bytes: &[u8]) -> ((u16, u16), Vec<Vec<u8>>) {
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(bytes).unwrap();
        let size = (decoder.width(), decoder.height());
        let mut frames = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            frames.push(frame.buffer.to_vec());
        }
        (size, frames)
    }

    #[test]
    fn frames_step_through_the_tissue_only_under_a_legend() {
        // Tissue (grey 90) fills x 8..=31, y 6..=29 and z 4..=19 of a 40 x 36 x 24 volume; the rest is black.
        let mut volume = Array4::<u8>::zeros((40, 36, 24, 3));
        volume.slice_mut(s![8..32, 6..30, 4..20, ..]).fill(90);
        volume
            .slice_mut(s![12, 12, 6, ..])
            .assign(&ndarray::arr1(&[255, 0, 0]));
        let bytes = slices_gif(
            volume.view(),
            [1.0; 3],
            Convention::Radiological,
            "case 3: truth",
        );
        let ((width, height), frames) = decode(&bytes);
        // Enlarged 7 times (40 -> 280 px); tiles sagittal 36 x 24, coronal 40 x 24, axial 40 x 36 voxels.
        let tiles_width = 7 * (36 + 40 + 40) as u16 + 4 * TILE_GAP as u16;
        let header_height = 4 + 20 + 12 + 12;
        assert_eq!(
            (width, height),
            (tiles_width, header_height + 7 * 36 + TILE_GAP as u16)
        );
        // The longest tissue extent is 24 slices (x 8..=31 and y 6..=29), so 24 frames.
        assert_eq!(frames.len(), 24);
        let pixel = |frame: &[u8], x: usize, y: usize| {
            let at = 4 * (y * width as usize + x);
            [frame[at], frame[at + 1], frame[at + 2]]
        };
        // The first frame is not empty: every tile shows tissue at its centre (its first tissue slice).
        let centres = [
            (TILE_GAP + 7 * 36 / 2, 7 * 24 / 2 + 7 * 6),
            (2 * TILE_GAP + 7 * 36 + 7 * 40 / 2, 7 * 24 / 2 + 7 * 6),
            (3 * TILE_GAP + 7 * (36 + 40) + 7 * 40 / 2, 7 * 36 / 2),
        ];
        for (x, y) in centres {
            assert_eq!(
                pixel(&frames[0], x, header_height as usize + y),
                [90; 3],
                "({x}, {y})"
            );
        }
        // The class legend is in the header of every frame.
        for frame in [&frames[0], &frames[23]] {
            for colour in crate::CLASS_COLOURS {
                assert!(
                    (0..header_height as usize)
                        .any(|y| (0..width as usize).any(|x| pixel(frame, x, y) == colour)),
                    "{colour:?}"
                );
            }
        }
        // The red voxel (12, 12, 6): the sagittal view reaches x 12 at frame 4 (x 8 + 4), the coronal y 12 at
        // frame 6 (y 6 + 6), the axial z 6 only at frame 3 (z 4 + (3 * 15 + 11) / 23, rounded down: 4 + 2).
        let red_frames: Vec<usize> = frames
            .iter()
            .enumerate()
            .filter(|(_, frame)| {
                frame[4 * width as usize * header_height as usize..]
                    .chunks_exact(4)
                    .any(|p| p[..3] == [255, 0, 0])
            })
            .map(|(index, _)| index)
            .collect();
        assert_eq!(red_frames, [3, 4, 6]);
    }

    #[test]
    fn tissue_extents_and_frame_slices() {
        let mut volume = Array4::<u8>::zeros((10, 4, 4, 3));
        volume.slice_mut(s![3..7, .., .., 1]).fill(50);
        assert_eq!(tissue_extent(volume.view(), 0), (3, 6));
        assert_eq!(tissue_extent(volume.view(), 1), (0, 3));
        assert_eq!(
            tissue_extent(Array4::<u8>::zeros((5, 2, 2, 3)).view(), 0),
            (0, 4)
        );
        let mut big = Array4::<u8>::zeros((6, 40, 25, 3));
        big.slice_mut(s![1..4, .., .., 0]).fill(9);
        big[(5, 0, 0, 2)] = 1; // one voxel of 1000: a speck, not tissue
        assert_eq!(tissue_extent(big.view(), 0), (1, 3));
        assert_eq!(frame_slice((3, 6), 0, 10), 3);
        assert_eq!(frame_slice((3, 6), 9, 10), 6);
        assert_eq!(frame_slice((3, 6), 5, 10), 3 + (15 + 4) / 9);
        assert_eq!(frame_slice((5, 5), 0, 1), 5);
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
