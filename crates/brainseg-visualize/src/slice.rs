//! One slice of an RGB volume as a picture, oriented the usual way and resampled to true aspect ratio.
use ndarray::ArrayView4;

use crate::font::{draw_label, text_width, GLYPH_SIZE};
use crate::RgbImage;

/// The plane a slice lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Fixed z, anterior up.
    Axial,
    /// Fixed y, superior up.
    Coronal,
    /// Fixed x, superior up, anterior on the left.
    Sagittal,
}

/// Which side of axial and coronal pictures shows the patient's right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention {
    /// Patient's right on the image's left, as if facing the patient (radiology viewers' default).
    #[default]
    Radiological,
    /// Patient's right on the image's right, as if looking from behind.
    Neurological,
}

impl View {
    /// Rows of the slice grid, in order.
    pub const ALL: [View; 3] = [View::Axial, View::Coronal, View::Sagittal];

    pub fn name(self) -> &'static str {
        match self {
            View::Axial => "axial",
            View::Coronal => "coronal",
            View::Sagittal => "sagittal",
        }
    }

    /// The volume axis a slice of this view holds fixed.
    pub fn fixed_axis(self) -> usize {
        match self {
            View::Sagittal => 0,
            View::Coronal => 1,
            View::Axial => 2,
        }
    }

    /// The volume axes along the picture's columns and rows.
    fn plane_axes(self) -> (usize, usize) {
        match self {
            View::Axial => (0, 1),
            View::Coronal => (0, 2),
            View::Sagittal => (1, 2),
        }
    }

    /// Whether picture columns run against the column axis (the leftmost column is the highest index).
    fn columns_reversed(self, convention: Convention) -> bool {
        match self {
            // x runs to the patient's right, which radiologists put on the left.
            View::Axial | View::Coronal => convention == Convention::Radiological,
            // Anterior (high y) on the left.
            View::Sagittal => true,
        }
    }

    /// Letters for the picture's left, right, top and bottom edges.
    fn side_letters(self, convention: Convention) -> [&'static str; 4] {
        let (left, right) = match (self, convention) {
            (View::Sagittal, _) => ("A", "P"),
            (_, Convention::Radiological) => ("R", "L"),
            (_, Convention::Neurological) => ("L", "R"),
        };
        let (top, bottom) = if self == View::Axial {
            ("A", "P")
        } else {
            ("S", "I")
        };
        [left, right, top, bottom]
    }
}

impl Convention {
    /// One line for a picture's caption.
    pub fn describe(self) -> &'static str {
        match self {
            Convention::Radiological => "radiological: patient's right on image left",
            Convention::Neurological => "neurological: patient's right on image right",
        }
    }
}

/// The size of a rendered slice: each in-plane axis's extent in millimetres over the pixel size, the finest of
/// the three spacings (so every view of a volume shares one scale).
pub(crate) fn rendered_size(shape: [usize; 3], view: View, spacing: [f32; 3]) -> (usize, usize) {
    let pixel = pixel_size(spacing);
    let (column_axis, row_axis) = view.plane_axes();
    let extent =
        |axis: usize| ((shape[axis] as f64 * spacing[axis] as f64 / pixel).round() as usize).max(1);
    (extent(column_axis), extent(row_axis))
}

/// Panels whose longest side is below this many pixels are enlarged.
const SMALL_PANEL: usize = 192;
/// The side small panels are enlarged to, at least.
const READABLE_PANEL: usize = 256;

/// The whole factor every view of a volume is enlarged by (nearest neighbour) so its pictures are readable:
/// 1 when the longest rendered side is at least 192 pixels (a BraTS scan), else the smallest factor that
/// brings it to 256 or more.
pub fn display_scale(shape: [usize; 3], spacing: [f32; 3]) -> usize {
    let longest = View::ALL
        .iter()
        .map(|&view| {
            let (width, height) = rendered_size(shape, view, spacing);
            width.max(height)
        })
        .max()
        .expect("three views");
    if longest >= SMALL_PANEL {
        1
    } else {
        READABLE_PANEL.div_ceil(longest)
    }
}

fn pixel_size(spacing: [f32; 3]) -> f64 {
    spacing.iter().copied().fold(f32::INFINITY, f32::min) as f64
}

/// Slice `index` (along [`View::fixed_axis`], clamped to the volume) of an `(X, Y, Z, 3)` RGB volume, oriented for
/// `view` and `convention`, nearest-neighbour resampled to square pixels, with the sides lettered.
pub fn render_slice(
    volume: ArrayView4<u8>,
    view: View,
    index: usize,
    spacing: [f32; 3],
    convention: Convention,
) -> RgbImage {
    render_slice_scaled(volume, view, index, spacing, convention, 1)
}

/// [`render_slice`] enlarged `scale` times (nearest neighbour) before the sides are lettered.
pub fn render_slice_scaled(
    volume: ArrayView4<u8>,
    view: View,
    index: usize,
    spacing: [f32; 3],
    convention: Convention,
    scale: usize,
) -> RgbImage {
    let shape = [volume.shape()[0], volume.shape()[1], volume.shape()[2]];
    let image = render_plain(shape, view, index, spacing, convention, |voxel| {
        [
            volume[(voxel[0], voxel[1], voxel[2], 0)],
            volume[(voxel[0], voxel[1], voxel[2], 1)],
            volume[(voxel[0], voxel[1], voxel[2], 2)],
        ]
    });
    let mut image = image.scaled(scale);
    letter_sides(&mut image, view, convention);
    image
}

/// The slice picture without letters: `colour` gives each voxel's colour from its `[x, y, z]` index.
pub(crate) fn render_plain(
    shape: [usize; 3],
    view: View,
    index: usize,
    spacing: [f32; 3],
    convention: Convention,
    colour: impl Fn([usize; 3]) -> [u8; 3],
) -> RgbImage {
    let (width, height) = rendered_size(shape, view, spacing);
    let pixel = pixel_size(spacing);
    let (column_axis, row_axis) = view.plane_axes();
    // The voxel under the centre of each picture column / row, counted along the axis.
    let voxel_along = |axis: usize, position: usize, reversed: bool| {
        let voxel = (((position as f64 + 0.5) * pixel / spacing[axis] as f64) as usize)
            .min(shape[axis] - 1);
        if reversed {
            shape[axis] - 1 - voxel
        } else {
            voxel
        }
    };
    let columns: Vec<usize> = (0..width)
        .map(|c| voxel_along(column_axis, c, view.columns_reversed(convention)))
        .collect();
    let rows: Vec<usize> = (0..height)
        .map(|r| voxel_along(row_axis, r, true))
        .collect();
    let mut voxel = [0; 3];
    voxel[view.fixed_axis()] = index.min(shape[view.fixed_axis()] - 1);
    let mut image = RgbImage::new(width, height, [0; 3]);
    for (r, &row_voxel) in rows.iter().enumerate() {
        voxel[row_axis] = row_voxel;
        for (c, &column_voxel) in columns.iter().enumerate() {
            voxel[column_axis] = column_voxel;
            image.put(c as i64, r as i64, colour(voxel));
        }
    }
    image
}

/// Letters on the left, right, top and bottom edges, e.g. "R" / "L" / "A" / "P" on an axial radiological slice.
pub(crate) fn letter_sides(image: &mut RgbImage, view: View, convention: Convention) {
    let [left, right, top, bottom] = view.side_letters(convention);
    let (width, height) = (image.width as i64, image.height as i64);
    let glyph = GLYPH_SIZE as i64;
    let colour = [255, 255, 0];
    draw_label(image, 2, (height - glyph) / 2, left, colour);
    draw_label(
        image,
        width - 2 - text_width(right, 1) as i64,
        (height - glyph) / 2,
        right,
        colour,
    );
    draw_label(image, (width - glyph) / 2, 2, top, colour);
    draw_label(
        image,
        (width - glyph) / 2,
        height - 2 - glyph,
        bottom,
        colour,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    /// A 4 x 3 x 2 volume whose red channel is x*40 + y*10 + z, so every voxel differs.
    fn coded_volume() -> Array4<u8> {
        Array4::from_shape_fn((4, 3, 2, 3), |(x, y, z, c)| {
            if c == 0 {
                (x * 40 + y * 10 + z) as u8
            } else {
                0
            }
        })
    }

    fn red(image: &RgbImage, x: usize, y: usize) -> u8 {
        image.pixel(x, y)[0]
    }

    #[test]
    fn axial_radiological_puts_patient_right_left_and_anterior_up() {
        let volume = coded_volume();
        let image = render_plain(
            [4, 3, 2],
            View::Axial,
            1,
            [1.0; 3],
            Convention::Radiological,
            |v| [volume[(v[0], v[1], v[2], 0)], 0, 0],
        );
        assert_eq!((image.width, image.height), (4, 3));
        assert_eq!(
            red(&image, 0, 0),
            3 * 40 + 2 * 10 + 1,
            "top-left: highest x (right), highest y (anterior)"
        );
        assert_eq!(
            red(&image, 3, 2),
            1,
            "bottom-right: x 0 (left), y 0 (posterior)"
        );
        let neurological = render_plain(
            [4, 3, 2],
            View::Axial,
            1,
            [1.0; 3],
            Convention::Neurological,
            |v| [volume[(v[0], v[1], v[2], 0)], 0, 0],
        );
        assert_eq!(
            red(&neurological, 0, 0),
            2 * 10 + 1,
            "top-left: x 0, highest y"
        );
    }

    #[test]
    fn coronal_and_sagittal_put_superior_up() {
        let volume = coded_volume();
        let colour = |v: [usize; 3]| [volume[(v[0], v[1], v[2], 0)], 0, 0];
        let coronal = render_plain(
            [4, 3, 2],
            View::Coronal,
            2,
            [1.0; 3],
            Convention::Radiological,
            colour,
        );
        assert_eq!((coronal.width, coronal.height), (4, 2));
        assert_eq!(
            red(&coronal, 0, 0),
            3 * 40 + 2 * 10 + 1,
            "top-left: right, superior"
        );
        assert_eq!(red(&coronal, 0, 1), 3 * 40 + 2 * 10, "below it: inferior");
        let sagittal = render_plain(
            [4, 3, 2],
            View::Sagittal,
            9,
            [1.0; 3],
            Convention::Radiological,
            colour,
        );
        assert_eq!((sagittal.width, sagittal.height), (3, 2));
        assert_eq!(
            red(&sagittal, 0, 0),
            3 * 40 + 2 * 10 + 1,
            "index clamped to x = 3; anterior left, superior up"
        );
        assert_eq!(
            red(&sagittal, 2, 1),
            3 * 40,
            "bottom-right: posterior, inferior"
        );
    }

    #[test]
    fn anisotropic_voxels_are_resampled_to_square_pixels() {
        let volume = coded_volume();
        // x voxels 2 mm, y 1 mm, z 3 mm: the finest spacing (1 mm) sets the pixel size.
        let colour = |v: [usize; 3]| [volume[(v[0], v[1], v[2], 0)], 0, 0];
        let image = render_plain(
            [4, 3, 2],
            View::Coronal,
            0,
            [2.0, 1.0, 3.0],
            Convention::Neurological,
            colour,
        );
        assert_eq!((image.width, image.height), (8, 6));
        // Columns 0-1 show x 0, rows 0-2 show z 1 (superior). Column 3 shows x 1, row 4 shows z 0.
        assert_eq!(red(&image, 1, 1), 1);
        assert_eq!(red(&image, 3, 4), 40);
    }

    #[test]
    fn small_volumes_are_enlarged_to_readable_panels() {
        // BraTS: 240 x 240 x 155 at 1 mm is readable as it is.
        assert_eq!(display_scale([240, 240, 155], [1.0; 3]), 1);
        // 48 voxels: 256 / 48 = 5.33, so 6 times (288 pixels).
        assert_eq!(display_scale([48, 40, 24], [1.0; 3]), 6);
        // 160 x 160 x 16 (a seed patch): 2 times.
        assert_eq!(display_scale([160, 160, 16], [1.0; 3]), 2);
        let volume = Array4::<u8>::from_elem((48, 40, 24, 3), 7);
        let image = render_slice_scaled(
            volume.view(),
            View::Axial,
            3,
            [1.0; 3],
            Convention::Radiological,
            6,
        );
        assert_eq!((image.width, image.height), (288, 240));
        assert_eq!(image.pixel(100, 100), [7; 3]);
    }

    #[test]
    fn sides_are_lettered() {
        let volume = Array4::<u8>::zeros((40, 30, 20, 3));
        let image = render_slice(
            volume.view(),
            View::Axial,
            0,
            [1.0; 3],
            Convention::Radiological,
        );
        let yellow_in = |x0: usize, x1: usize| {
            (x0..x1).any(|x| (0..image.height).any(|y| image.pixel(x, y) == [255, 255, 0]))
        };
        assert!(yellow_in(0, 12), "a letter at the left edge");
        assert!(yellow_in(28, 40), "a letter at the right edge");
        assert_eq!(
            View::Axial.side_letters(Convention::Radiological),
            ["R", "L", "A", "P"]
        );
        assert_eq!(
            View::Coronal.side_letters(Convention::Neurological),
            ["L", "R", "S", "I"]
        );
        assert_eq!(
            View::Sagittal.side_letters(Convention::Neurological),
            ["A", "P", "S", "I"]
        );
    }
}
