//! An 8-bit RGB picture, its drawing primitives, PNG encoding and atomic file writes.
use std::path::Path;

use crate::{Error, Result};

/// Row-major RGB pixels, 3 bytes each, top row first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// A picture filled with one colour.
    pub fn new(width: usize, height: usize, colour: [u8; 3]) -> Self {
        RgbImage {
            width,
            height,
            pixels: colour.repeat(width * height),
        }
    }

    /// The colour at column `x`, row `y` (panics outside the picture).
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside {}x{}",
            self.width,
            self.height
        );
        let at = 3 * (y * self.width + x);
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }

    /// Sets one pixel; coordinates outside the picture are ignored, so shapes may run over the edge.
    pub fn put(&mut self, x: i64, y: i64, colour: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let at = 3 * (y as usize * self.width + x as usize);
            self.pixels[at..at + 3].copy_from_slice(&colour);
        }
    }

    pub fn fill_rect(&mut self, x: i64, y: i64, width: usize, height: usize, colour: [u8; 3]) {
        for row in y..y + height as i64 {
            for column in x..x + width as i64 {
                self.put(column, row, colour);
            }
        }
    }

    /// A one-pixel rectangle just outside the `width` x `height` box whose top-left corner is (`x`, `y`).
    pub fn outline(&mut self, x: i64, y: i64, width: usize, height: usize, colour: [u8; 3]) {
        let (right, bottom) = (x + width as i64, y + height as i64);
        self.fill_rect(x - 1, y - 1, width + 2, 1, colour);
        self.fill_rect(x - 1, bottom, width + 2, 1, colour);
        self.fill_rect(x - 1, y, 1, height, colour);
        self.fill_rect(right, y, 1, height, colour);
    }

    /// The picture `factor` times larger each way, each pixel repeated (nearest neighbour).
    pub fn scaled(&self, factor: usize) -> RgbImage {
        if factor <= 1 {
            return self.clone();
        }
        let (width, height) = (self.width * factor, self.height * factor);
        let mut pixels = Vec::with_capacity(3 * width * height);
        for row in 0..height {
            let source =
                &self.pixels[3 * (row / factor) * self.width..3 * (row / factor + 1) * self.width];
            for rgb in source.chunks_exact(3) {
                for _ in 0..factor {
                    pixels.extend_from_slice(rgb);
                }
            }
        }
        RgbImage {
            width,
            height,
            pixels,
        }
    }

    /// Copies `other` with its top-left corner at (`x`, `y`), clipped to this picture.
    pub fn paste(&mut self, other: &RgbImage, x: i64, y: i64) {
        for row in 0..other.height {
            for column in 0..other.width {
                self.put(x + column as i64, y + row as i64, other.pixel(column, row));
            }
        }
    }

    /// A straight line of the given thickness (Bresenham's walk, a square pen at each step).
    pub fn line(&mut self, from: (i64, i64), to: (i64, i64), thickness: usize, colour: [u8; 3]) {
        let (dx, dy) = ((to.0 - from.0).abs(), -(to.1 - from.1).abs());
        let (step_x, step_y) = ((to.0 - from.0).signum(), (to.1 - from.1).signum());
        let (mut x, mut y, mut error) = (from.0, from.1, dx + dy);
        let offset = thickness as i64 / 2;
        loop {
            self.fill_rect(x - offset, y - offset, thickness, thickness, colour);
            if (x, y) == to {
                break;
            }
            let doubled = 2 * error;
            if doubled >= dy {
                error += dy;
                x += step_x;
            }
            if doubled <= dx {
                error += dx;
                y += step_y;
            }
        }
    }

    /// The picture as PNG file bytes (8-bit RGB).
    pub fn to_png(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .expect("writing to memory cannot fail");
        writer
            .write_image_data(&self.pixels)
            .expect("pixel count matches the header");
        writer.finish().expect("writing to memory cannot fail");
        bytes
    }

    /// Decodes an 8-bit RGB PNG, such as [`RgbImage::to_png`] writes.
    pub fn from_png(bytes: &[u8]) -> Result<Self> {
        let not_png = |problem: String| Error::msg(format!("not an 8-bit RGB PNG: {problem}"));
        let mut reader = png::Decoder::new(bytes)
            .read_info()
            .map_err(|e| not_png(e.to_string()))?;
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader
            .next_frame(&mut pixels)
            .map_err(|e| not_png(e.to_string()))?;
        if (frame.color_type, frame.bit_depth) != (png::ColorType::Rgb, png::BitDepth::Eight) {
            return Err(not_png(format!(
                "{:?} at {:?}",
                frame.color_type, frame.bit_depth
            )));
        }
        pixels.truncate(frame.buffer_size());
        Ok(RgbImage {
            width: frame.width as usize,
            height: frame.height as usize,
            pixels,
        })
    }

    /// Writes the picture as a PNG file, atomically.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        Ok(write_atomic(path, &self.to_png())?)
    }
}

pub use brainseg_volume::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_through_a_file() {
        let mut image = RgbImage::new(5, 3, [10, 20, 30]);
        image.put(4, 2, [255, 0, 0]);
        image.put(9, 9, [1, 1, 1]); // outside: ignored
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("picture.png");
        image.write_png(&path).unwrap();
        let decoded = RgbImage::from_png(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((decoded.width, decoded.height), (5, 3));
        assert_eq!(decoded.pixel(4, 2), [255, 0, 0]);
        assert_eq!(decoded.pixel(0, 0), [10, 20, 30]);
        assert_eq!(decoded, image);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o644
            );
        }
        let leftovers = std::fs::read_dir(folder.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }

    #[test]
    fn writing_into_a_missing_folder_names_the_file() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("missing").join("picture.png");
        let error = RgbImage::new(1, 1, [0; 3]).write_png(&path).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: cannot write", path.display())),
            "{error}"
        );
    }

    #[test]
    fn scaling_repeats_pixels_and_outlines_surround_boxes() {
        let mut image = RgbImage::new(2, 1, [0; 3]);
        image.put(1, 0, [200, 100, 50]);
        let big = image.scaled(3);
        assert_eq!((big.width, big.height), (6, 3));
        for y in 0..3 {
            assert_eq!(big.pixel(2, y), [0; 3]);
            assert_eq!(big.pixel(3, y), [200, 100, 50]);
            assert_eq!(big.pixel(5, y), [200, 100, 50]);
        }
        assert_eq!(image.scaled(1), image);
        let mut framed = RgbImage::new(6, 6, [0; 3]);
        framed.outline(2, 2, 2, 2, [9; 3]);
        let lit: Vec<(usize, usize)> = (0..6)
            .flat_map(|y| (0..6).map(move |x| (x, y)))
            .filter(|&(x, y)| framed.pixel(x, y) == [9; 3])
            .collect();
        assert_eq!(lit.len(), 12, "a 4 x 4 ring around the 2 x 2 box");
        assert!(lit.contains(&(1, 1)) && lit.contains(&(4, 4)) && !lit.contains(&(2, 2)));
    }

    #[test]
    fn lines_reach_both_ends() {
        let mut image = RgbImage::new(10, 10, [0; 3]);
        image.line((1, 8), (8, 2), 1, [9, 9, 9]);
        assert_eq!(image.pixel(1, 8), [9, 9, 9]);
        assert_eq!(image.pixel(8, 2), [9, 9, 9]);
        assert_eq!(image.pixel(8, 8), [0, 0, 0]);
    }
}
