//! The header above a picture: a title, lines of text and colour legends, stacked from the top-left corner.
use crate::font::{draw_text, text_width, GLYPH_SIZE};
use crate::labelled::{draw_legend, legend_width};
use crate::RgbImage;

/// Scale of the title's glyphs.
const TITLE_SCALE: usize = 2;
const WHITE: [u8; 3] = [255, 255, 255];

#[derive(Debug, Clone)]
enum Line {
    Title(String),
    Text(String),
    /// The class colours and names.
    ClassLegend,
    /// One colour swatch and what it means.
    Swatch([u8; 3], String),
}

impl Line {
    fn width(&self) -> usize {
        match self {
            Line::Title(text) => text_width(text, TITLE_SCALE),
            Line::Text(text) => text_width(text, 1),
            Line::ClassLegend => legend_width(),
            Line::Swatch(_, text) => GLYPH_SIZE + 4 + text_width(text, 1),
        }
    }

    fn height(&self) -> usize {
        match self {
            Line::Title(_) => GLYPH_SIZE * TITLE_SCALE,
            _ => GLYPH_SIZE,
        }
    }
}

/// Lines laid out top-down with `gap` pixels around and between them.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    gap: usize,
    lines: Vec<Line>,
}

impl Header {
    pub fn new(gap: usize) -> Self {
        Header {
            gap,
            lines: Vec::new(),
        }
    }

    /// A large first line; nothing when `text` is empty.
    pub fn title(&mut self, text: &str) {
        if !text.is_empty() {
            self.lines.push(Line::Title(text.to_string()));
        }
    }

    pub fn line(&mut self, text: &str) {
        self.lines.push(Line::Text(text.to_string()));
    }

    /// A line naming each class beside its colour.
    pub fn legend(&mut self) {
        self.lines.push(Line::ClassLegend);
    }

    /// A line with one colour swatch and its meaning.
    pub fn swatch(&mut self, colour: [u8; 3], meaning: &str) {
        self.lines.push(Line::Swatch(colour, meaning.to_string()));
    }

    /// The widest line and the gaps either side.
    pub fn width(&self) -> usize {
        self.lines.iter().map(Line::width).max().unwrap_or(0) + 2 * self.gap
    }

    /// All lines, the gaps between them, and a gap above and below.
    pub fn height(&self) -> usize {
        self.lines
            .iter()
            .map(|line| line.height() + self.gap)
            .sum::<usize>()
            + self.gap
    }

    pub fn draw(&self, image: &mut RgbImage) {
        let left = self.gap as i64;
        let mut top = self.gap as i64;
        for line in &self.lines {
            match line {
                Line::Title(text) => draw_text(image, left, top, text, WHITE, TITLE_SCALE),
                Line::Text(text) => draw_text(image, left, top, text, WHITE, 1),
                Line::ClassLegend => draw_legend(image, left, top),
                Line::Swatch(colour, text) => {
                    image.fill_rect(left, top, GLYPH_SIZE, GLYPH_SIZE, *colour);
                    draw_text(image, left + GLYPH_SIZE as i64 + 4, top, text, WHITE, 1);
                }
            }
            top += (line.height() + self.gap) as i64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CLASS_COLOURS;

    #[test]
    fn lines_stack_and_the_legend_shows_every_class_colour() {
        let mut header = Header::new(4);
        header.title("case 1: prediction");
        header.line("radiological");
        header.legend();
        // Title 16 px, two 8-px lines, a gap after each and one on top.
        assert_eq!(header.height(), 4 + (16 + 4) + (8 + 4) + (8 + 4));
        // The legend is widest: per class a swatch (8), a space (4), the name (8 a letter) and 16 after it:
        // "edema" 68, "non-enhancing tumour" 188, "enhancing tumour" 156; the title, 18 letters of 16, is 288.
        assert_eq!(header.width(), 68 + 188 + 156 + 8);
        let mut image = RgbImage::new(header.width(), header.height(), [0; 3]);
        header.draw(&mut image);
        // The legend's swatches start at the legend line's top-left corner.
        let legend_top = 4 + 20 + 12;
        assert_eq!(image.pixel(4, legend_top), CLASS_COLOURS[0]);
        for colour in CLASS_COLOURS {
            assert!(
                image.pixels.chunks_exact(3).any(|p| p == colour),
                "{colour:?}"
            );
        }
        // Title glyphs are white and twice the size: lit pixels in the title band.
        assert!((4..20).any(|y| (4..100).any(|x| image.pixel(x, y) == WHITE)));
    }
}
