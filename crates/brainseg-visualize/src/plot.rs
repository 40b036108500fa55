//! Training curves: a line plot of named series over epochs, with axes, ticks, grid lines and a legend.
use crate::font::{draw_text, text_width, GLYPH_SIZE};
use crate::RgbImage;

/// Line colours, in series order (matplotlib's first six "tab10" colours), reused when there are more.
const COLOURS: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [225, 225, 225];
/// Space around the plot area for the title (top), tick labels (left, bottom) and breathing room (right).
const MARGIN_LEFT: usize = 72;
const MARGIN_RIGHT: usize = 20;
const MARGIN_TOP: usize = 32;
const MARGIN_BOTTOM: usize = 44;

/// One named curve: `(x, y)` points in drawing order. Non-finite points are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A value per epoch, epochs counted from 1.
    pub fn from_epochs(name: impl Into<String>, values: &[f64]) -> Self {
        Series {
            name: name.into(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect(),
        }
    }
}

/// A `width` x `height` picture of the series against epoch, titled `title`, on a white background.
pub fn training_curves(title: &str, series: &[Series], width: usize, height: usize) -> RgbImage {
    let finite: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let bounds = |pick: fn(&(f64, f64)) -> f64| {
        let values = finite.iter().map(pick);
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
    };
    let (x_ticks, y_ticks) = (
        whole_ticks(bounds(|p| p.0), 6),
        nice_ticks(bounds(|p| p.1), 6),
    );
    let area = PlotArea {
        left: MARGIN_LEFT as f64,
        right: width.saturating_sub(MARGIN_RIGHT) as f64,
        top: MARGIN_TOP as f64,
        bottom: height.saturating_sub(MARGIN_BOTTOM) as f64,
        x_range: (x_ticks[0], *x_ticks.last().expect("at least two ticks")),
        y_range: (y_ticks[0], *y_ticks.last().expect("at least two ticks")),
    };
    let mut image = RgbImage::new(width, height, [255, 255, 255]);
    draw_axes(&mut image, &area, &x_ticks, &y_ticks);
    let title_left = (width.saturating_sub(text_width(title, 2)) / 2) as i64;
    draw_text(&mut image, title_left, 8, title, BLACK, 2);

    for (series, colour) in series.iter().zip(COLOURS.iter().cycle()) {
        let pixels: Vec<(i64, i64)> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&point| area.to_pixel(point))
            .collect();
        for pair in pixels.windows(2) {
            image.line(pair[0], pair[1], 2, *colour);
        }
        for &(x, y) in &pixels {
            image.fill_rect(x - 2, y - 2, 5, 5, *colour);
        }
    }
    draw_legend(&mut image, &area, series);
    image
}

/// Where data coordinates land in the picture.
struct PlotArea {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_range: (f64, f64),
    y_range: (f64, f64),
}

impl PlotArea {
    fn to_pixel(&self, (x, y): (f64, f64)) -> (i64, i64) {
        let across = (x - self.x_range.0) / (self.x_range.1 - self.x_range.0);
        let up = (y - self.y_range.0) / (self.y_range.1 - self.y_range.0);
        (
            (self.left + across * (self.right - self.left)).round() as i64,
            (self.bottom - up * (self.bottom - self.top)).round() as i64,
        )
    }
}

fn draw_axes(image: &mut RgbImage, area: &PlotArea, x_ticks: &[f64], y_ticks: &[f64]) {
    let (left, right, top, bottom) = (
        area.left as i64,
        area.right as i64,
        area.top as i64,
        area.bottom as i64,
    );
    let glyph = GLYPH_SIZE as i64;
    for (tick, label) in x_ticks.iter().zip(tick_labels(x_ticks)) {
        let (x, _) = area.to_pixel((*tick, area.y_range.0));
        image.line((x, top), (x, bottom), 1, GRID);
        image.line((x, bottom), (x, bottom + 4), 1, BLACK);
        draw_text(
            image,
            x - text_width(&label, 1) as i64 / 2,
            bottom + 8,
            &label,
            BLACK,
            1,
        );
    }
    for (tick, label) in y_ticks.iter().zip(tick_labels(y_ticks)) {
        let (_, y) = area.to_pixel((area.x_range.0, *tick));
        image.line((left, y), (right, y), 1, GRID);
        image.line((left - 4, y), (left, y), 1, BLACK);
        draw_text(
            image,
            left - 8 - text_width(&label, 1) as i64,
            y - glyph / 2,
            &label,
            BLACK,
            1,
        );
    }
    image.line((left, top), (left, bottom), 1, BLACK);
    image.line((left, bottom), (right, bottom), 1, BLACK);
    draw_text(
        image,
        (left + right) / 2 - text_width("epoch", 1) as i64 / 2,
        bottom + 8 + 2 * glyph,
        "epoch",
        BLACK,
        1,
    );
}

/// A framed box in the plot's top-right corner: a colour sample and the name of each series.
fn draw_legend(image: &mut RgbImage, area: &PlotArea, series: &[Series]) {
    if series.is_empty() {
        return;
    }
    let line_height = GLYPH_SIZE + 6;
    let sample = 20;
    let box_width = sample
        + 12
        + series
            .iter()
            .map(|s| text_width(&s.name, 1))
            .max()
            .unwrap_or(0)
        + 8;
    let box_height = series.len() * line_height + 6;
    let (left, top) = (
        area.right as i64 - box_width as i64 - 8,
        area.top as i64 + 8,
    );
    image.fill_rect(left, top, box_width, box_height, [255, 255, 255]);
    let (right, bottom) = (left + box_width as i64, top + box_height as i64);
    for (from, to) in [
        ((left, top), (right, top)),
        ((right, top), (right, bottom)),
        ((right, bottom), (left, bottom)),
        ((left, bottom), (left, top)),
    ] {
        image.line(from, to, 1, [160, 160, 160]);
    }
    for (row, (series, colour)) in series.iter().zip(COLOURS.iter().cycle()).enumerate() {
        let y = top + 4 + (row * line_height) as i64;
        let middle = y + GLYPH_SIZE as i64 / 2;
        image.line(
            (left + 6, middle),
            (left + 6 + sample as i64, middle),
            2,
            *colour,
        );
        draw_text(image, left + 12 + sample as i64, y, &series.name, BLACK, 1);
    }
}

/// Round tick positions (1, 2 or 5 times a power of ten apart, about `target` intervals) that cover
/// `(low, high)`; the first and last are the axis limits. An empty or single-valued range is widened.
fn nice_ticks((low, high): (f64, f64), target: usize) -> Vec<f64> {
    let (low, high) = if !(low.is_finite() && high.is_finite()) {
        (0.0, 1.0)
    } else if high <= low {
        let pad = if low == 0.0 { 0.5 } else { low.abs() * 0.1 };
        (low - pad, high + pad)
    } else {
        (low, high)
    };
    let rough = (high - low) / target as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= rough)
        .expect("10x covers it");
    let (first, last) = ((low / step).floor() as i64, (high / step).ceil() as i64);
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Ticks at whole numbers (epochs): [`nice_ticks`] when their step is 1 or more, else every whole number that
/// covers `(low, high)`; a single value gets a tick either side.
fn whole_ticks((low, high): (f64, f64), target: usize) -> Vec<f64> {
    let ticks = nice_ticks((low, high), target);
    if ticks[1] - ticks[0] >= 1.0 {
        return ticks;
    }
    let (first, last) = if low.is_finite() && high.is_finite() {
        (low.floor(), high.ceil())
    } else {
        (0.0, 1.0)
    };
    let (first, last) = if last > first {
        (first, last)
    } else {
        (first - 1.0, last + 1.0)
    };
    (first as i64..=last as i64)
        .map(|tick| tick as f64)
        .collect()
}

/// Tick labels with just enough decimals for the tick step.
fn tick_labels(ticks: &[f64]) -> Vec<String> {
    let step = ticks[1] - ticks[0];
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    ticks
        .iter()
        .map(|tick| format!("{tick:.decimals$}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        assert_eq!(nice_ticks((1.0, 10.0), 6), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let fractions = nice_ticks((0.43, 0.81), 6);
        // 0.38 / 6 = 0.063 a step, rounded up to 0.1.
        let expected = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
        assert_eq!(fractions.len(), expected.len());
        assert!(
            fractions
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-12),
            "{fractions:?}"
        );
        assert_eq!(tick_labels(&fractions)[1], "0.5");
        assert_eq!(tick_labels(&nice_ticks((0.0, 0.3), 6))[1], "0.05");
        let widened = nice_ticks((3.0, 3.0), 6);
        assert!(
            widened[0] <= 2.7 && *widened.last().unwrap() >= 3.3 && widened.len() <= 12,
            "{widened:?}"
        );
        assert_eq!(
            nice_ticks((f64::INFINITY, f64::NEG_INFINITY), 6).first(),
            Some(&0.0)
        );
    }

    #[test]
    fn epoch_ticks_are_whole_numbers() {
        assert_eq!(whole_ticks((1.0, 2.0), 6), [1.0, 2.0]);
        assert_eq!(whole_ticks((1.0, 4.0), 6), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(whole_ticks((1.0, 1.0), 6), [0.0, 1.0, 2.0]);
        assert_eq!(
            whole_ticks((1.0, 30.0), 6),
            [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(tick_labels(&whole_ticks((1.0, 2.0), 6)), ["1", "2"]);
    }

    #[test]
    fn curves_pass_through_their_points() {
        let series = [
            Series::from_epochs("train loss", &[0.9, 0.7, 0.6, 0.5]),
            Series::from_epochs("valid dice", &[0.2, f64::NAN, 0.4, 0.5]),
        ];
        let image = training_curves("training", &series, 640, 400);
        assert_eq!((image.width, image.height), (640, 400));
        // The plot area spans x 72..620 and y 32..356. x: epochs 1..4, whole ticks 1 to 4;
        // y: 0.2..0.9 is 0.117 a step, rounded up to 0.2, ticks 0.2 to 1.0.
        let at = |epoch: f64, value: f64| {
            let x = 72.0 + (epoch - 1.0) / 3.0 * (620.0 - 72.0);
            let y = 356.0 - (value - 0.2) / 0.8 * (356.0 - 32.0);
            image.pixel(x.round() as usize, y.round() as usize)
        };
        assert_eq!(at(2.0, 0.7), COLOURS[0]);
        assert_eq!(at(3.0, 0.4), COLOURS[1]);
        assert_eq!(at(1.25, 0.9), [255, 255, 255], "away from every line");
    }
}
