//! SVG plots of per-block figures, one panel per figure. Several models
//! overlay, one colour per model and one dash per view (tokens after position
//! 0 solid, all tokens dashed); when their depths differ, the x axis is the
//! depth fraction (block / last block) so that first and last blocks line
//! up. The title names each model, its norm placement and the text.

use plotters::prelude::*;

use super::chart::{self, Axis, Dash};
use super::figure::Figure;
use super::run::Figures;
use crate::error::Result;

/// One model's figures and its legend label.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// Its analysis.
    pub figures: &'a Figures,
}

/// Points (block, value) of one curve.
type Points = Vec<(usize, f64)>;

/// Where a block sits on the x axis: its index, or its depth fraction.
#[derive(Clone, Copy)]
enum XAxis {
    Block(usize),
    Depth,
}

impl XAxis {
    /// The x position of `block` in a model of `n` blocks.
    fn x(self, block: usize, n: usize) -> f64 {
        match self {
            XAxis::Block(_) => block as f64,
            XAxis::Depth => block as f64 / (n.max(2) - 1) as f64,
        }
    }

    /// The axis, and the width of one block's slot on it.
    fn axis(self) -> (Axis, f64) {
        match self {
            XAxis::Block(n) => (
                Axis::whole("block", 0.0, n.saturating_sub(1) as f64, 0.5),
                1.0,
            ),
            XAxis::Depth => (Axis::linear("depth (block / last block)", 0.0, 1.0), 0.03),
        }
    }
}
/// A panel: title, y-axis label, whether y is log-scaled, bars or lines, and
/// the points (block, value) of each curve of one model.
struct Panel {
    title: &'static str,
    y_label: &'static str,
    log: bool,
    bars: bool,
    legend: SeriesLabelPosition,
    curves: fn(&Figures) -> Vec<(&'static str, Points)>,
}

fn per_layer(f: &Figures, view_excl0: bool, key: Figure) -> Points {
    f.layers
        .iter()
        .map(|l| {
            (
                l.layer,
                if view_excl0 {
                    l.excl0[key].mean
                } else {
                    l.all[key].mean
                },
            )
        })
        .collect()
}

/// A figure's curve over tokens after position 0 and over all tokens.
fn both_views(f: &Figures, key: Figure) -> Vec<(&'static str, Points)> {
    vec![
        ("excl. pos 0", per_layer(f, true, key)),
        ("all tokens", per_layer(f, false, key)),
    ]
}

const PANELS: [Panel; 6] = [
    Panel {
        title: "Relative contribution ||h_out - h_in|| / ||h_in||",
        y_label: "ratio (log)",
        log: true,
        bars: false,
        legend: SeriesLabelPosition::UpperRight,
        curves: |f| both_views(f, Figure::RelContrib),
    },
    Panel {
        title: "Residual norm ||h_in|| entering each block",
        y_label: "L2 norm (log)",
        log: true,
        bars: false,
        legend: SeriesLabelPosition::LowerRight,
        curves: |f| both_views(f, Figure::NormHIn),
    },
    Panel {
        title: "Block influence 1 - cos(h_in, h_out)",
        y_label: "BI",
        log: false,
        bars: false,
        legend: SeriesLabelPosition::UpperRight,
        curves: |f| both_views(f, Figure::Bi),
    },
    Panel {
        title: "Sublayer shares: ||a|| / ||h_in|| and ||m|| / ||h_mid|| (excl. pos 0)",
        y_label: "ratio (log)",
        log: true,
        bars: false,
        legend: SeriesLabelPosition::UpperRight,
        curves: |f| {
            vec![
                ("attention", per_layer(f, true, Figure::AttnRatio)),
                ("MLP", per_layer(f, true, Figure::MlpRatio)),
            ]
        },
    },
    Panel {
        title: "Logit lens: KL(final || lens) in nats (excl. pos 0)",
        y_label: "KL",
        log: false,
        bars: false,
        legend: SeriesLabelPosition::LowerLeft,
        curves: |f| match &f.lens {
            Some(l) => vec![(
                "lens KL",
                l.iter().map(|x| (x.layer, x.kl_excl0.mean)).collect(),
            )],
            None => vec![],
        },
    },
    Panel {
        title: "Ablation: perplexity without the block / full perplexity",
        y_label: "ratio (log)",
        log: true,
        bars: true,
        legend: SeriesLabelPosition::UpperRight,
        curves: |f| match &f.ablation {
            Some(a) => vec![("ppl ratio", a.iter().map(|x| (x.layer, x.ratio)).collect())],
            None => vec![],
        },
    },
];

/// One SVG document: a title naming each model (with its norm placement)
/// and, on its second line, `text`; then a panel per figure that has data,
/// every series overlaid.
pub fn render_svg(series: &[Series], text: &str) -> Result<String> {
    let panels: Vec<&Panel> = PANELS
        .iter()
        .filter(|p| {
            series
                .iter()
                .any(|s| (p.curves)(s.figures).iter().any(|(_, pts)| !pts.is_empty()))
        })
        .collect();
    let depths: Vec<usize> = series.iter().map(|s| s.figures.num_layers).collect();
    let axis = if depths.windows(2).all(|d| d[0] == d[1]) {
        XAxis::Block(depths.first().copied().unwrap_or(1))
    } else {
        XAxis::Depth
    };
    let models: Vec<String> = series.iter().map(model_name).collect();
    let title = [models.join(" and "), format!("on {text}")];
    let mut svg = String::new();
    {
        let height = TITLE_HEIGHT + PANEL_HEIGHT * panels.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (960, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart::plot_error)?;
        let (head, body) = root.split_vertically(TITLE_HEIGHT);
        let style = TextStyle::from(("sans-serif", 17).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        for (i, line) in title.iter().enumerate() {
            head.draw(&Text::new(line.as_str(), (480, 8 + 22 * i as i32), &style))
                .map_err(chart::plot_error)?;
        }
        for (area, panel) in body.split_evenly((panels.len(), 1)).iter().zip(panels) {
            draw_panel(area, panel, series, axis)?;
        }
        root.present().map_err(chart::plot_error)?;
    }
    Ok(svg)
}

/// Pixels of the title (two lines: the models, the text) and of each panel.
const TITLE_HEIGHT: u32 = 56;
const PANEL_HEIGHT: u32 = 280;

/// A model as the title and legends name it: its label and norm placement.
fn model_name(s: &Series) -> String {
    format!("{} ({})", s.label, s.figures.placement)
}

/// One curve of a panel: whose, which of its model's curves (its dash), its
/// name, and its points (x position, value).
struct Curve<'a> {
    model: usize,
    index: usize,
    name: &'a str,
    points: Vec<(f64, f64)>,
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    series: &[Series],
    axis: XAxis,
) -> Result<()> {
    let all: Vec<Curve> = series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let n = s.figures.num_layers;
            (panel.curves)(s.figures)
                .into_iter()
                .enumerate()
                .map(move |(k, (name, pts))| Curve {
                    model: i,
                    index: k,
                    name,
                    points: pts.iter().map(|&(l, v)| (axis.x(l, n), v)).collect(),
                })
        })
        .collect();
    let values = all
        .iter()
        .flat_map(|c| c.points.iter().map(|&(_, v)| v))
        .filter(|v| v.is_finite() && (!panel.log || *v > 0.0));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 1.0) };
    // Bars grow from 0 on a linear axis and from a ratio of 1 on a log one.
    let y = match (panel.log, panel.bars) {
        (true, true) => Axis::log(panel.y_label, lo.min(1.0), hi),
        (true, false) => Axis::log(panel.y_label, lo, hi),
        (false, true) => Axis::linear(panel.y_label, lo.min(0.0), hi),
        (false, false) => Axis::linear(panel.y_label, lo, hi),
    };
    let (x, slot) = axis.axis();
    let mut chart = chart::chart(area, panel.title, &x, &y)?;
    for c in &all {
        let color = chart::color(c.model);
        let label = if series.len() > 1 {
            format!("{}, {}", model_name(&series[c.model]), c.name)
        } else {
            c.name.to_string()
        };
        let pts: Vec<(f64, f64)> = c.points.iter().map(|&(px, v)| (px, y.coord(v))).collect();
        if panel.bars {
            let width = 0.8 * slot / series.len() as f64;
            let off = -0.4 * slot + width * c.model as f64;
            let base = y.coord(if panel.log { 1.0 } else { 0.0 });
            chart
                .draw_series(pts.iter().map(|&(px, v)| {
                    Rectangle::new([(px + off, base), (px + off + width, v)], color.filled())
                }))
                .map_err(chart::plot_error)?
                .label(label)
                .legend(move |(lx, ly)| {
                    Rectangle::new([(lx, ly - 5), (lx + 12, ly + 5)], color.filled())
                });
        } else {
            chart::line(&mut chart, &pts, color, Dash::nth(c.index), &label)?;
        }
    }
    chart::legend(&mut chart, panel.legend.clone())
}
