//! The comparison report: SVG plots (plotters, no fonts needed) of the loss
//! curves and of per-block relative contribution before and after
//! fine-tuning, in one self-contained HTML page.

use plotters::prelude::*;
use serde::Serialize;

use super::compare::RunSummary;
use crate::analysis::html::render_template;
use crate::analysis::plot::plot_error;
use crate::error::Result;

/// A curve: legend, points, dashed or solid, and its colour index.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
    color: usize,
}

/// One panel of curves; `log` plots log10(y) with the ticks labelled in y.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    log: bool,
    curves: &[Curve],
) -> Result<()> {
    let y = |v: f64| if log { v.max(1e-12).log10() } else { v };
    let pts = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|&(x, v)| (x, y(v))))
        .filter(|p| p.1.is_finite());
    let (x0, x1, mut lo, mut hi) = pts.fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), (x, v)| (a.min(x), b.max(x), c.min(v), d.max(v)),
    );
    if lo >= hi {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let (pad, xpad) = ((hi - lo) * 0.05, ((x1 - x0) * 0.02).max(0.5));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (lo - pad)..(hi + pad))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&move |v| format!("{:.3}", if log { 10f64.powf(*v) } else { *v }))
        .draw()
        .map_err(plot_error)?;
    for c in curves {
        let color = Palette99::pick(c.color).to_rgba();
        let line = c.points.iter().map(|&(x, v)| (x, y(v)));
        let drawn = if c.dashed {
            chart.draw_series(DashedLineSeries::new(line, 6, 4, color.stroke_width(2)))
        } else {
            chart.draw_series(LineSeries::new(line, color.stroke_width(2)))
        };
        drawn
            .map_err(plot_error)?
            .label(c.label.clone())
            .legend(move |(x, yy)| {
                PathElement::new(vec![(x, yy), (x + 16, yy)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// Training loss (a moving average over 5 steps) and held-out loss per run,
/// then per-block relative contribution before (dashed) and after (solid).
pub fn render_svg(runs: &[RunSummary]) -> Result<String> {
    let smooth = |c: &[(usize, f64)]| -> Vec<(f64, f64)> {
        (0..c.len())
            .map(|i| {
                let w = &c[i.saturating_sub(4)..=i];
                (
                    c[i].0 as f64,
                    w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64,
                )
            })
            .collect()
    };
    let curves =
        |f: &dyn Fn(&RunSummary) -> Vec<(f64, f64)>, dashed: bool, suffix: &str| -> Vec<Curve> {
            runs.iter()
                .enumerate()
                .map(|(i, r)| Curve {
                    label: format!("{}{suffix}", r.label),
                    points: f(r),
                    dashed,
                    color: i,
                })
                .collect()
        };
    let layers = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(l, x)| (l as f64, *x))
            .collect::<Vec<_>>()
    };
    let mut contrib = curves(&|r| layers(&r.rel_contrib_before), true, " before");
    contrib.extend(curves(&|r| layers(&r.rel_contrib_after), false, " after"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 3 * 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let areas = root.split_evenly((3, 1));
        panel(
            &areas[0],
            "Training loss (moving average of 5 steps)",
            "step",
            "nats",
            false,
            &curves(&|r| smooth(&r.train_curve), false, ""),
        )?;
        panel(
            &areas[1],
            "Held-out loss",
            "step",
            "nats",
            false,
            &curves(
                &|r| {
                    r.heldout_curve
                        .iter()
                        .map(|&(s, l)| (s as f64, l))
                        .collect()
                },
                false,
                "",
            ),
        )?;
        panel(
            &areas[2],
            "Relative contribution ||h_out - h_in|| / ||h_in|| per block (dashed: before)",
            "block",
            "ratio (log)",
            true,
            &contrib,
        )?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

#[derive(Serialize)]
struct Page<'a> {
    command: &'a str,
    runs: &'a [RunSummary],
    svg: &'a str,
}

const TEMPLATE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>normscope: fine-tuning comparison</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 1em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
code { background: #f6f6f6; padding: 2px 4px; }
.plot svg { max-width: 100%; height: auto; }
</style></head><body>
<h1>Fine-tuning comparison</h1>
<p>Made by <code>{{ command }}</code>.</p>
<h2>Runs</h2>
<table><tr><th>run</th><th>variant</th><th>alpha</th><th>beta</th><th>steps</th><th>tokens/step</th><th>train loss, first 10%</th><th>train loss, last 10%</th><th>held-out loss before</th><th>after</th><th>held-out ppl before</th><th>after</th><th>s/step</th><th>peak RSS MiB</th></tr>
{% for r in runs %}<tr><td>{{ r.label }}</td><td>{{ r.variant }}</td><td>{{ "%.4f" | format(r.alpha) }}</td><td>{{ "%.4f" | format(r.beta) }}</td><td>{{ r.steps }}</td><td>{{ r.tokens_per_step }}</td><td>{{ "%.4f" | format(r.train_loss_first) }}</td><td>{{ "%.4f" | format(r.train_loss_last) }}</td><td>{{ "%.4f" | format(r.heldout_loss_before) }}</td><td>{{ "%.4f" | format(r.heldout_loss_after) }}</td><td>{{ "%.2f" | format(r.heldout_ppl_before) }}</td><td>{{ "%.2f" | format(r.heldout_ppl_after) }}</td><td>{{ "%.2f" | format(r.seconds_per_step) }}</td><td>{{ "%.0f" | format(r.peak_rss_mib) }}</td></tr>
{% endfor %}</table>
<h2>Plots</h2>
<div class="plot">{{ svg | safe }}</div>
<h2>Relative contribution per block</h2>
<p>||h_out − h_in|| / ||h_in|| on held-out text (mean over tokens after position 0), before fine-tuning (step 0) and after (last evaluation). For post and deepnorm, h_in is alpha times the block's normalized input and h_out the sum the block hands to the next norm.</p>
<table><tr><th>block</th>{% for r in runs %}<th>{{ r.label }} before</th><th>{{ r.label }} after</th>{% endfor %}</tr>
{% for l in range(runs[0].rel_contrib_before | length) %}<tr><td>{{ l }}</td>{% for r in runs %}<td>{{ "%.4f" | format(r.rel_contrib_before[l]) if l < r.rel_contrib_before | length else "" }}</td><td>{{ "%.4f" | format(r.rel_contrib_after[l]) if l < r.rel_contrib_after | length else "" }}</td>{% endfor %}</tr>
{% endfor %}</table>
</body></html>
"#;

/// The whole page for `runs`, made by `command`.
pub fn render_html(runs: &[RunSummary], command: &str) -> Result<String> {
    let svg = render_svg(runs)?;
    render_template(
        TEMPLATE,
        &Page {
            command,
            runs,
            svg: &svg,
        },
    )
}
