//! What every SVG plot shares (plotters' SVG backend: text is left to the
//! viewer's fonts, so no font files are needed): a colour-blind-safe
//! qualitative palette (Okabe & Ito), dash patterns that the legend draws as
//! the curves are drawn, axis ticks at round values (1-2-5 on log axes, whole
//! numbers on step and block axes) and number labels that stay short at any
//! size (`5.4e11`, not `538737909909.000`).

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// Okabe & Ito's palette, the colours most legible on white first (its
/// yellow, faint on white, last).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xF0, 0xE4, 0x42), // yellow
];

/// The colour of series `i` (a model, a run).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// How a curve is stroked, so that curves of one colour stay apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    /// A plain line.
    Solid,
    /// Dashes of 8 px.
    Dashed,
    /// Dots.
    Dotted,
}

impl Dash {
    /// The `k`-th style: solid, dashed, dotted, then round again.
    pub fn nth(k: usize) -> Self {
        [Dash::Solid, Dash::Dashed, Dash::Dotted][k % 3]
    }

    /// Dash and gap lengths in pixels (a solid line is one long dash).
    fn pattern(self) -> (i32, i32) {
        match self {
            Dash::Solid => (1 << 20, 0),
            Dash::Dashed => (8, 5),
            Dash::Dotted => (2, 4),
        }
    }
}

/// A plotters failure as the library's error (every SVG plot uses it).
pub fn plot_error(e: impl std::fmt::Debug) -> Error {
    Error::usage(format!("cannot draw the plot: {e:?}"))
}

/// One axis: what it shows, its range and ticks in plot coordinates (log10
/// of the value on a log axis), and how ticks are labelled.
#[derive(Debug, Clone)]
pub struct Axis {
    /// The axis title.
    pub desc: String,
    /// Plotted range.
    pub range: Range<f64>,
    /// Tick positions.
    pub ticks: Vec<f64>,
    /// Values are plotted as log10.
    pub log: bool,
}

/// Most ticks an axis gets.
const MAX_TICKS: usize = 10;

impl Axis {
    /// A linear axis over `lo..=hi` (5% padding), ticks at 1-2-5 steps.
    pub fn linear(desc: &str, lo: f64, hi: f64) -> Self {
        let (lo, hi) = widen(lo, hi, 1.0);
        let pad = (hi - lo) * 0.05;
        Self::new(desc, lo - pad, hi + pad, false, |lo, hi| {
            linear_ticks(lo, hi, MAX_TICKS)
        })
    }

    /// An axis of whole numbers (steps, blocks) over `lo - pad..hi + pad`,
    /// ticks at whole 1-2-5 steps.
    pub fn whole(desc: &str, lo: f64, hi: f64, pad: f64) -> Self {
        Self::new(desc, lo - pad, hi + pad, false, |lo, hi| {
            whole_ticks(lo, hi, MAX_TICKS)
        })
    }

    /// A log axis over the values `lo..=hi` (positive; padded by 5% of the
    /// decades spanned), ticks at 1-2-5 values.
    pub fn log(desc: &str, lo: f64, hi: f64) -> Self {
        let (lo, hi) = widen(log10(lo), log10(hi), 0.5);
        let pad = (hi - lo) * 0.05;
        Self::new(desc, lo - pad, hi + pad, true, |lo, hi| {
            log_ticks(lo, hi, MAX_TICKS)
        })
    }

    fn new(desc: &str, lo: f64, hi: f64, log: bool, ticks: fn(f64, f64) -> Vec<f64>) -> Self {
        Self {
            desc: desc.to_string(),
            range: lo..hi,
            ticks: ticks(lo, hi),
            log,
        }
    }

    /// Where `value` is plotted.
    pub fn coord(&self, value: f64) -> f64 {
        if self.log {
            log10(value)
        } else {
            value
        }
    }

    /// The label of the tick at plot coordinate `c`.
    pub fn label(&self, c: f64) -> String {
        readable(if self.log { 10f64.powf(c) } else { c })
    }
}

/// log10, with values at or below 0 (nothing a log axis can show) far below.
fn log10(v: f64) -> f64 {
    v.max(1e-300).log10()
}

/// `lo..hi` made at least a little wide (`by` either side when empty or
/// inverted, as happens with one point); non-finite ends become 0..1.
fn widen(lo: f64, hi: f64, by: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        (0.0, 1.0)
    } else if lo < hi {
        (lo, hi)
    } else {
        (lo - by, hi + by)
    }
}

/// The smallest step of 1, 2 or 5 times a power of ten that puts at most
/// `max` ticks over `span`.
fn nice_step(span: f64, max: usize) -> f64 {
    let raw = span / max.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// Multiples of a 1-2-5 step inside `lo..=hi`.
fn linear_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let step = nice_step(hi - lo, max);
    multiples(lo, hi, step)
}

/// Whole-number multiples of a 1-2-5 step (at least 1) inside `lo..=hi`.
fn whole_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let step = nice_step(hi - lo, max).max(1.0).round();
    multiples(lo, hi, step)
}

fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    // `+ 0.0` turns -0 into 0, so that no tick reads "-0".
    (first..=last).map(|i| i as f64 * step + 0.0).collect()
}

/// Ticks of a log axis spanning `lo..hi` decades (log10 values): 1, 2 and 5
/// times powers of ten; only the powers of ten when those are too many;
/// every digit when 1-2-5 leaves fewer than two; linear round values when
/// even those are too few (a range inside one step of digits).
fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let at = |mantissas: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.floor() as i64, hi.ceil() as i64);
        (first..=last)
            .flat_map(|k| mantissas.iter().map(move |m| m.log10() + k as f64))
            .filter(|c| (lo..=hi).contains(c))
            .collect()
    };
    let one_two_five = at(&[1.0, 2.0, 5.0]);
    if one_two_five.len() > max {
        let decades = at(&[1.0]);
        let every = decades.len().div_ceil(max).max(1);
        return decades.into_iter().step_by(every).collect();
    }
    if one_two_five.len() >= 2 {
        return one_two_five;
    }
    let digits = at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if digits.len() >= 2 {
        return digits;
    }
    let (a, b) = (10f64.powf(lo), 10f64.powf(hi));
    linear_ticks(a, b, 5)
        .into_iter()
        .filter(|&v| v > 0.0)
        .map(f64::log10)
        .collect()
}

/// A number as a label: up to four significant digits without trailing
/// zeros (`0.25`, `15.85`, `200`), and in scientific notation beyond 1e5 or
/// below 1e-3 (`5.4e11`, `2.5e-4`).
pub fn readable(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}").replace(".0e", "e");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Plot coordinates along one axis, with the ticks of its [`Axis`] (and no
/// light mesh lines); its labels come from [`Axis::label`].
pub struct Ticked {
    coords: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.coords.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.coords.range()
    }
}

impl From<&Axis> for Ticked {
    fn from(a: &Axis) -> Self {
        Self {
            coords: a.range.clone().into(),
            ticks: a.ticks.clone(),
        }
    }
}

/// A chart whose axes carry [`Axis`] ticks.
pub type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// A panel on `area`: its caption, axes, ticks and labels drawn.
pub fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: &Axis,
    y: &Axis,
) -> Result<Chart<'a, DB>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(Ticked::from(x), Ticked::from(y))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(x.desc.as_str())
        .y_desc(y.desc.as_str())
        .x_label_formatter(&|c| x.label(*c))
        .y_label_formatter(&|c| y.label(*c))
        .draw()
        .map_err(plot_error)?;
    Ok(chart)
}

/// Pixels of a legend's line sample.
const SAMPLE: i32 = 20;

/// Draws a curve through `points` (plot coordinates) with a dot at each, and
/// its legend entry, whose sample has the curve's dash.
pub fn line<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    points: &[(f64, f64)],
    color: RGBColor,
    dash: Dash,
    label: &str,
) -> Result<()> {
    let style = color.stroke_width(2);
    let (on, off) = dash.pattern();
    let drawn = if dash == Dash::Solid {
        chart.draw_series(LineSeries::new(points.iter().copied(), style))
    } else {
        chart.draw_series(DashedLineSeries::new(
            points.iter().copied(),
            on,
            off,
            style,
        ))
    };
    drawn
        .map_err(plot_error)?
        .label(label)
        .legend(move |(x, y)| {
            DashedPathElement::new(vec![(x, y), (x + SAMPLE, y)], on, off, style)
        });
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 2, color.filled())))
        .map_err(plot_error)?;
    Ok(())
}

/// Draws the legend of every labelled series at `position`.
pub fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .legend_area_size(SAMPLE + 8)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(plot_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(a: &Axis) -> Vec<String> {
        a.ticks.iter().map(|&t| a.label(t)).collect()
    }

    #[test]
    fn step_axes_tick_at_whole_numbers_only() {
        assert_eq!(
            labels(&Axis::whole("step", 0.0, 3.0, 0.5)),
            ["0", "1", "2", "3"]
        );
        assert_eq!(labels(&Axis::whole("step", 1.0, 3.0, 0.5)), ["1", "2", "3"]);
        assert_eq!(labels(&Axis::whole("step", 0.0, 0.0, 0.5)), ["0"]);
        assert_eq!(
            labels(&Axis::whole("step", 0.0, 100.0, 2.0)),
            ["0", "20", "40", "60", "80", "100"]
        );
        assert_eq!(labels(&Axis::whole("block", 0.0, 29.0, 0.5)).len(), 6);
    }

    #[test]
    fn log_axes_tick_at_one_two_five() {
        // The range that used to read 15.85 10.00 6.31 3.98.
        assert_eq!(labels(&Axis::log("x", 3.9, 16.0)), ["5", "10"]);
        assert_eq!(
            labels(&Axis::log("x", 0.26, 15.96)),
            ["0.5", "1", "2", "5", "10"]
        );
        // Too many for 1-2-5: powers of ten.
        assert_eq!(
            labels(&Axis::log("x", 1.29, 54380.0)),
            ["1", "10", "100", "1000", "10000"]
        );
        // Too few for 1-2-5: every digit, then round linear values.
        assert_eq!(
            labels(&Axis::log("x", 0.31, 0.77)),
            ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8"]
        );
        assert_eq!(
            labels(&Axis::log("x", 1.01, 1.09)),
            ["1.02", "1.04", "1.06", "1.08"]
        );
    }

    #[test]
    fn linear_ticks_never_read_minus_zero() {
        let a = Axis::linear("x", -0.3, 4.0);
        assert!(labels(&a).iter().all(|l| l != "-0"), "{:?}", labels(&a));
        assert_eq!(
            labels(&Axis::linear("x", 0.0, 1.0)),
            ["0", "0.2", "0.4", "0.6", "0.8", "1"]
        );
    }

    #[test]
    fn numbers_read_short_at_any_size() {
        assert_eq!(readable(538737909909.123), "5.4e11");
        assert_eq!(readable(1e6), "1e6");
        assert_eq!(readable(0.00025), "2.5e-4");
        assert_eq!(readable(15.8489), "15.85");
        assert_eq!(readable(0.25), "0.25");
        assert_eq!(readable(200.0), "200");
        assert_eq!(readable(-0.0), "0");
        assert_eq!(readable(5.6402), "5.64");
    }
}
