//! The comparison report: SVG plots of the loss curves and of per-block
//! relative contribution before (dashed) and after (solid) fine-tuning, in
//! one self-contained HTML page.

use plotters::prelude::*;
use serde::Serialize;

use super::compare::RunSummary;
use crate::analysis::chart::{self, plot_error, Axis, Dash};
use crate::analysis::html::render_template;
use crate::error::Result;

/// A curve: legend, points, dashed or solid, and its colour index.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
    color: usize,
}

/// One panel of curves against whole-number x values (steps, blocks);
/// `log` plots y on a log axis.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    log: bool,
    curves: &[Curve],
) -> Result<()> {
    let pts = curves
        .iter()
        .flat_map(|c| c.points.iter().copied())
        .filter(|&(x, v)| x.is_finite() && v.is_finite() && (!log || v > 0.0));
    let (x0, x1, lo, hi) = pts.fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), (x, v)| (a.min(x), b.max(x), c.min(v), d.max(v)),
    );
    let (x0, x1) = if x0 <= x1 { (x0, x1) } else { (0.0, 0.0) };
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 1.0) };
    let x = Axis::whole(x_desc, x0, x1, ((x1 - x0) * 0.02).max(0.5));
    let y = if log {
        Axis::log(y_desc, lo, hi)
    } else {
        Axis::linear(y_desc, lo, hi)
    };
    let mut chart = chart::chart(area, title, &x, &y)?;
    for c in curves {
        let points: Vec<(f64, f64)> = c.points.iter().map(|&(px, v)| (px, y.coord(v))).collect();
        let dash = if c.dashed { Dash::Dashed } else { Dash::Solid };
        chart::line(&mut chart, &points, chart::color(c.color), dash, &c.label)?;
    }
    chart::legend(&mut chart, SeriesLabelPosition::UpperRight)
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
{% for r in runs %}<tr><td>{{ r.label }}</td><td>{{ r.variant }}</td><td>{{ "%.4f" | format(r.alpha) }}</td><td>{{ "%.4f" | format(r.beta) }}</td><td>{{ r.steps }}</td><td>{{ r.tokens_per_step }}</td><td>{{ "%.4f" | format(r.train_loss_first) }}</td><td>{{ "%.4f" | format(r.train_loss_last) }}</td><td>{{ "%.4f" | format(r.heldout_loss_before) }}</td><td>{{ "%.4f" | format(r.heldout_loss_after) }}</td><td>{{ r.heldout_ppl_before | readable }}</td><td>{{ r.heldout_ppl_after | readable }}</td><td>{{ "%.2f" | format(r.seconds_per_step) }}</td><td>{{ "%.0f" | format(r.peak_rss_mib) }}</td></tr>
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
