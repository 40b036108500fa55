//! The seed's labelled image: FLAIR as grey, tumour classes in colour.
use brainseg_core::Class;
use ndarray::{Array4, ArrayView3, Axis, Zip};

use crate::font::{draw_text, text_width, GLYPH_SIZE};
use crate::{Error, Result, RgbImage};

/// Class colours, in MSD label order: edema red, non-enhancing green, enhancing blue (as the seed).
pub const CLASS_COLOURS: [[u8; 3]; 3] = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];

/// How labelled voxels are drawn over the grey FLAIR.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Overlay {
    /// The class colour replaces the grey (the seed's `get_labeled_image`).
    #[default]
    Replace,
    /// `(1 - alpha) * grey + alpha * colour`, so anatomy stays visible under the labels.
    Blend { alpha: f32 },
}

/// A `(X, Y, Z, 3)` RGB volume: FLAIR min-max scaled to 0..=255 grey, each labelled voxel coloured by its class.
/// Fails when the shapes differ or a label is not an MSD label 0..=3.
pub fn labelled_volume(
    flair: ArrayView3<f32>,
    labels: ArrayView3<u8>,
    overlay: Overlay,
) -> Result<Array4<u8>> {
    crate::error::check_same_shape("FLAIR and labels", flair.shape(), labels.shape())?;
    if let Some(label) = labels.iter().find(|&&label| label > 3) {
        return Err(Error::msg(format!(
            "label {label} is not an MSD label 0..=3 (BraTS labels 1, 2, 4 map to MSD 2, 1, 3)"
        )));
    }
    let grey = GreyScale::of(flair);
    let (nx, ny, nz) = flair.dim();
    let mut volume = Array4::<u8>::zeros((nx, ny, nz, 3));
    Zip::from(volume.lanes_mut(Axis(3)))
        .and(&flair)
        .and(&labels)
        .for_each(|mut rgb, &intensity, &label| {
            let colour = colour_voxel(grey.level(intensity), label, overlay);
            rgb.iter_mut().zip(colour).for_each(|(to, from)| *to = from);
        });
    Ok(volume)
}

/// The colour of one voxel of grey level `grey` and MSD label `label` (0..=3).
pub(crate) fn colour_voxel(grey: u8, label: u8, overlay: Overlay) -> [u8; 3] {
    let Some(&class_colour) = label
        .checked_sub(1)
        .and_then(|class| CLASS_COLOURS.get(class as usize))
    else {
        return [grey; 3];
    };
    match overlay {
        Overlay::Replace => class_colour,
        Overlay::Blend { alpha } => {
            let alpha = alpha.clamp(0.0, 1.0);
            class_colour
                .map(|channel| ((1.0 - alpha) * grey as f32 + alpha * channel as f32).round() as u8)
        }
    }
}

/// Draws a colour swatch and name per class in one line from (`x`, `y`), [`legend_width`] pixels wide.
pub(crate) fn draw_legend(image: &mut RgbImage, x: i64, y: i64) {
    let mut left = x;
    for (name, colour) in Class::ALL.map(Class::name).iter().zip(CLASS_COLOURS) {
        image.fill_rect(left, y, GLYPH_SIZE, GLYPH_SIZE, colour);
        draw_text(
            image,
            left + GLYPH_SIZE as i64 + 4,
            y,
            name,
            [255, 255, 255],
            1,
        );
        left += legend_entry_width(name) as i64;
    }
}

pub(crate) fn legend_width() -> usize {
    Class::ALL
        .iter()
        .map(|class| legend_entry_width(class.name()))
        .sum()
}

/// Swatch, space, name and the space before the next entry.
fn legend_entry_width(name: &str) -> usize {
    GLYPH_SIZE + 4 + text_width(name, 1) + 16
}

/// Min-max scaling of intensities to 0..=255 (non-finite values and constant volumes give 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GreyScale {
    min: f32,
    max: f32,
}

impl GreyScale {
    pub fn of(values: ArrayView3<f32>) -> Self {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (min, max) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        GreyScale { min, max }
    }

    pub fn level(&self, value: f32) -> u8 {
        if !value.is_finite() || self.max <= self.min {
            return 0;
        }
        (255.0 * (value - self.min) / (self.max - self.min))
            .round()
            .clamp(0.0, 255.0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn grey_where_unlabelled_and_class_colours_where_labelled() {
        let flair = Array3::from_shape_fn((2, 2, 2), |(x, y, z)| {
            (x * 4 + y * 2 + z) as f32 * 10.0 + 5.0
        });
        let mut labels = Array3::<u8>::zeros((2, 2, 2));
        labels[(0, 1, 0)] = 1;
        labels[(1, 0, 0)] = 2;
        labels[(1, 1, 1)] = 3;
        let volume = labelled_volume(flair.view(), labels.view(), Overlay::Replace).unwrap();
        let rgb = |x, y, z| {
            [
                volume[(x, y, z, 0)],
                volume[(x, y, z, 1)],
                volume[(x, y, z, 2)],
            ]
        };
        assert_eq!(rgb(0, 0, 0), [0, 0, 0], "minimum intensity is black");
        assert_eq!(
            rgb(1, 1, 0),
            [219, 219, 219],
            "60/70 of the range: 218.57 rounds to 219"
        );
        assert_eq!(rgb(0, 1, 0), [255, 0, 0]);
        assert_eq!(rgb(1, 0, 0), [0, 255, 0]);
        assert_eq!(rgb(1, 1, 1), [0, 0, 255]);

        let blended =
            labelled_volume(flair.view(), labels.view(), Overlay::Blend { alpha: 0.25 }).unwrap();
        // Grey 20/70 * 255 = 72.86 -> 73; red channel 0.75 * 73 + 0.25 * 255 = 118.5 -> 119 (f32 rounding up).
        assert_eq!(
            [
                blended[(0, 1, 0, 0)],
                blended[(0, 1, 0, 1)],
                blended[(0, 1, 0, 2)]
            ],
            [119, 55, 55]
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let flair = Array3::<f32>::zeros((2, 2, 2));
        let mut labels = Array3::<u8>::zeros((2, 2, 3));
        assert!(labelled_volume(flair.view(), labels.view(), Overlay::Replace).is_err());
        labels = Array3::<u8>::zeros((2, 2, 2));
        labels[(0, 0, 0)] = 4;
        let error = labelled_volume(flair.view(), labels.view(), Overlay::Replace).unwrap_err();
        assert!(
            error.to_string().starts_with("label 4 is not an MSD label"),
            "{error}"
        );
        // A constant volume is black, not NaN-coloured.
        labels[(0, 0, 0)] = 0;
        assert!(
            labelled_volume(flair.view(), labels.view(), Overlay::Replace)
                .unwrap()
                .iter()
                .all(|&v| v == 0)
        );
    }
}
