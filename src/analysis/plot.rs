//! SVG plots of per-block figures (plotters' SVG backend: text is left to the
//! viewer's fonts, so no font files are needed). Several models overlay; when
//! their depths differ, the x axis is the depth fraction (block / last block)
//! so that first and last blocks line up.

use plotters::prelude::*;

use super::figure::Figure;
use super::run::Figures;
use crate::error::{Error, Result};

/// One model's figures and its legend label.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// Its analysis.
    pub figures: &'a Figures,
}

/// Points (block, value) of one curve.
type Points = Vec<(usize, f64)>;

/// Points (x, value) of one curve, placed on the x axis.
type Placed = Vec<(f64, f64)>;

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

    /// The x range and the width of one block's slot.
    fn range(self) -> (std::ops::Range<f64>, f64) {
        match self {
            XAxis::Block(n) => (-0.5..(n as f64 - 0.5), 1.0),
            XAxis::Depth => (-0.05..1.05, 0.03),
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

/// A plotters failure as the library's error (every SVG plot uses it).
pub fn plot_error(e: impl std::fmt::Debug) -> Error {
    Error::usage(format!("cannot draw the plot: {e:?}"))
}

/// One SVG document with a panel per figure that has data, every series overlaid.
pub fn render_svg(series: &[Series]) -> Result<String> {
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
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (960, 280 * panels.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
            draw_panel(area, panel, series, axis)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    series: &[Series],
    axis: XAxis,
) -> Result<()> {
    let y = |v: f64| if panel.log { v.max(1e-12).log10() } else { v };
    // Curves as (model, name, points at their x positions).
    let all: Vec<(usize, &str, Placed)> = series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let n = s.figures.num_layers;
            (panel.curves)(s.figures)
                .into_iter()
                .map(move |(name, pts)| {
                    (
                        i,
                        name,
                        pts.iter().map(|&(l, v)| (axis.x(l, n), v)).collect(),
                    )
                })
        })
        .collect();
    let values: Vec<f64> = all
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|&(_, v)| y(v)))
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if panel.bars && !panel.log {
        lo = lo.min(0.0);
    }
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.05;
    let (x_range, slot) = axis.range();
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, (lo - pad)..(hi + pad))
        .map_err(plot_error)?;
    let log = panel.log;
    let (x_desc, x_decimals) = match axis {
        XAxis::Block(_) => ("block", 0),
        XAxis::Depth => ("depth (block / last block)", 1),
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(panel.y_label)
        .x_label_formatter(&move |x| format!("{x:.x_decimals$}"))
        .y_label_formatter(&move |v| tick(if log { 10f64.powf(*v) } else { *v }))
        .draw()
        .map_err(plot_error)?;
    let curves_per_model = all.iter().filter(|(i, _, _)| *i == 0).count().max(1);
    for (k, (model, name, pts)) in all.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let label = if series.len() > 1 {
            format!("{} ({name})", series[*model].label)
        } else {
            name.to_string()
        };
        if panel.bars {
            let width = 0.8 * slot / series.len() as f64;
            let off = -0.4 * slot + width * *model as f64;
            let base = if log { 0.0 } else { lo.min(0.0) };
            chart
                .draw_series(pts.iter().map(|&(x, v)| {
                    Rectangle::new([(x + off, base), (x + off + width, y(v))], color.filled())
                }))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, yy)| {
                    Rectangle::new([(x, yy - 5), (x + 12, yy + 5)], color.filled())
                });
        } else {
            let stroke = if k % curves_per_model == 0 { 2 } else { 1 };
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|&(x, v)| (x, y(v))),
                    color.stroke_width(stroke),
                ))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, yy)| {
                    PathElement::new(vec![(x, yy), (x + 16, yy)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    pts.iter()
                        .map(|&(x, v)| Circle::new((x, y(v)), 2, color.filled())),
                )
                .map_err(plot_error)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(panel.legend.clone())
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// A tick label with as many decimals as its size needs.
fn tick(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}
