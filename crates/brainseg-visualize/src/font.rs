//! Small text on pictures, drawn with the public-domain 8x8 bitmap font of the `font8x8` crate.
use crate::RgbImage;

/// Pixels per character cell at scale 1.
pub(crate) const GLYPH_SIZE: usize = 8;

/// Width in pixels of `text` drawn at `scale`.
pub(crate) fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * GLYPH_SIZE * scale
}

/// Draws `text` with its top-left corner at (`x`, `y`). Characters outside ASCII show as '?'.
pub(crate) fn draw_text(
    image: &mut RgbImage,
    x: i64,
    y: i64,
    text: &str,
    colour: [u8; 3],
    scale: usize,
) {
    for (index, character) in text.chars().enumerate() {
        let code = if character.is_ascii() {
            character as usize
        } else {
            '?' as usize
        };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let left = x + (index * GLYPH_SIZE * scale) as i64;
        for (row, bits) in glyph.iter().enumerate() {
            for column in (0..GLYPH_SIZE).filter(|column| bits >> column & 1 == 1) {
                let (px, py) = (left + (column * scale) as i64, y + (row * scale) as i64);
                image.fill_rect(px, py, scale, scale, colour);
            }
        }
    }
}

/// Text on a dark box one pixel larger all round, legible over any picture.
pub(crate) fn draw_label(image: &mut RgbImage, x: i64, y: i64, text: &str, colour: [u8; 3]) {
    image.fill_rect(
        x - 1,
        y - 1,
        text_width(text, 1) + 2,
        GLYPH_SIZE + 2,
        [0, 0, 0],
    );
    draw_text(image, x, y, text, colour, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_drawn_from_the_font() {
        let mut image = RgbImage::new(20, 10, [0; 3]);
        draw_text(&mut image, 1, 1, "I", [255; 3], 1);
        let lit: usize = (0..20)
            .flat_map(|x| (0..10).map(move |y| (x, y)))
            .filter(|&(x, y)| image.pixel(x, y)[0] == 255)
            .count();
        let expected: u32 = font8x8::legacy::BASIC_LEGACY['I' as usize]
            .iter()
            .map(|row| row.count_ones())
            .sum();
        assert_eq!(lit as u32, expected);
        assert!(expected > 5);
        assert_eq!(text_width("RL", 2), 32);
    }
}
