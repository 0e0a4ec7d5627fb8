//! SVG plots of per-block figures (plotters' SVG backend: text is left to the
//! viewer's fonts, so no font files are needed). Several models overlay.

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
    let n_layers = series
        .iter()
        .flat_map(|s| s.figures.layers.iter().map(|l| l.layer + 1))
        .max()
        .unwrap_or(1);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (960, 280 * panels.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
            draw_panel(area, panel, series, n_layers)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    series: &[Series],
    n_layers: usize,
) -> Result<()> {
    let y = |v: f64| if panel.log { v.max(1e-12).log10() } else { v };
    let all: Vec<(usize, &str, Points)> = series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            (panel.curves)(s.figures)
                .into_iter()
                .map(move |(name, pts)| (i, name, pts))
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
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(n_layers as f64 - 0.5), (lo - pad)..(hi + pad))
        .map_err(plot_error)?;
    let log = panel.log;
    chart
        .configure_mesh()
        .x_desc("block")
        .y_desc(panel.y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
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
            let width = 0.8 / series.len() as f64;
            let off = -0.4 + width * *model as f64;
            let base = if log { 0.0 } else { lo.min(0.0) };
            chart
                .draw_series(pts.iter().map(|&(l, v)| {
                    Rectangle::new(
                        [(l as f64 + off, base), (l as f64 + off + width, y(v))],
                        color.filled(),
                    )
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
                    pts.iter().map(|&(l, v)| (l as f64, y(v))),
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
                        .map(|&(l, v)| Circle::new((l as f64, y(v)), 2, color.filled())),
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
