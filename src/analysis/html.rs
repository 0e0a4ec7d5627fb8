//! The self-contained HTML report: plots inline as SVG, per model the table,
//! sentences drawn from its figures and its massive activations; what each
//! figure means, what the Pre-Norm and Peri-LN arguments predict, and how it
//! was made.

use minijinja::Environment;
use serde::Serialize;

use super::figure::Figure;
use super::findings::findings;
use super::run::Figures;
use crate::error::{Error, Result};

/// One analysed model, as the report shows it.
#[derive(Serialize)]
pub struct ReportModel<'a> {
    /// Label (path or name).
    pub label: String,
    /// Its figures.
    pub figures: &'a Figures,
    /// Rows whose relative contribution reaches this are highlighted (the top quarter).
    pub hot_cut: f64,
    /// Sentences drawn from its figures.
    pub findings: Vec<String>,
}

impl<'a> ReportModel<'a> {
    /// A model's entry, highlighting its top quarter of relative contributions.
    pub fn new(label: String, figures: &'a Figures) -> Self {
        let mut v: Vec<f64> = figures
            .layers
            .iter()
            .map(|l| l.excl0[Figure::RelContrib].mean)
            .collect();
        v.sort_by(|a, b| b.total_cmp(a));
        let hot_cut = v.get(v.len() / 4).copied().unwrap_or(f64::INFINITY);
        Self {
            label,
            findings: findings(figures),
            figures,
            hot_cut,
        }
    }
}

/// Everything the report page needs.
#[derive(Serialize)]
pub struct ReportInput<'a> {
    /// Page title.
    pub title: String,
    /// The command line that produced it.
    pub command: String,
    /// What was analysed (prompt text or file name).
    pub source: String,
    /// The models.
    pub models: Vec<ReportModel<'a>>,
    /// The SVG plot (trusted: produced by [`super::plot::render_svg`]).
    pub svg: String,
    /// Sentences that set the models side by side (empty for one model).
    pub findings: Vec<String>,
}

const TEMPLATE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
tr.hot td { background: #fff3d6; }
code, pre { background: #f6f6f6; padding: 2px 4px; }
.plot svg { max-width: 100%; height: auto; }
dt { font-weight: bold; margin-top: .5em; }
</style></head><body>
<h1>{{ title }}</h1>
<p>Made by <code>{{ command }}</code> on {{ source }}.</p>
{% if findings %}<h2>At a glance</h2><ul>{% for f in findings %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
<h2>Plots</h2>
<div class="plot">{{ svg | safe }}</div>
{% for m in models %}
<h2>Per-block figures: {{ m.label }} ({{ m.figures.num_layers }} blocks, {{ m.figures.placement }} placement)</h2>
{% if m.findings %}<ul>{% for f in m.findings %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
<p>{{ m.figures.tokens }} tokens in {{ m.figures.windows }} window(s){% if m.figures.perplexity %}; perplexity {{ "%.4f" | format(m.figures.perplexity) }} over {{ m.figures.predicted_tokens }} predicted tokens{% endif %}.
Means over tokens, leaving out position 0 of each window (its massive activation dominates means that include it). Highlighted rows: the largest relative contributions.{% if m.figures.placement == "peri" %} For this Peri-LN model the attention and MLP updates are the post-normed sublayer outputs; the "before post-norm" columns give their norms before that norm.{% elif m.figures.placement == "reordered" %} For this model (OLMo 2's reordered norm: no norm before a sublayer, one after it) the attention and MLP updates are the normed sublayer outputs; the "before post-norm" columns give their norms before that norm.{% endif %}</p>
<table><tr><th>block</th><th>||h_in||</th><th>||h_in|| incl. pos 0</th><th>rel. contribution</th><th>attn share</th><th>MLP share</th>{% if m.figures.placement in ["peri", "reordered"] %}<th>||attn|| before post-norm</th><th>||attn||</th><th>||MLP|| before post-norm</th><th>||MLP||</th>{% endif %}<th>cos</th><th>BI</th><th>angular</th>{% if m.figures.lens %}<th>lens KL</th><th>lens top-1 (last pos.)</th>{% endif %}{% if m.figures.ablation %}<th>ppl without block</th>{% endif %}</tr>
{% for l in m.figures.layers %}<tr{% if l.excl0.rel_contrib.mean >= m.hot_cut %} class="hot"{% endif %}>
<td>{{ l.layer }}</td><td>{{ "%.2f" | format(l.excl0.norm_h_in.mean) }}</td><td>{{ "%.2f" | format(l.all.norm_h_in.mean) }}</td><td>{{ "%.4f" | format(l.excl0.rel_contrib.mean) }}</td><td>{{ "%.4f" | format(l.excl0.attn_ratio.mean) }}</td><td>{{ "%.4f" | format(l.excl0.mlp_ratio.mean) }}</td>{% if m.figures.placement in ["peri", "reordered"] %}<td>{{ "%.2f" | format(l.excl0.norm_attn_raw.mean) }}</td><td>{{ "%.2f" | format(l.excl0.norm_attn.mean) }}</td><td>{{ "%.2f" | format(l.excl0.norm_mlp_raw.mean) }}</td><td>{{ "%.2f" | format(l.excl0.norm_mlp.mean) }}</td>{% endif %}<td>{{ "%.4f" | format(l.excl0.cos.mean) }}</td><td>{{ "%.4f" | format(l.excl0.bi.mean) }}</td><td>{{ "%.4f" | format(l.excl0.angular.mean) }}</td>
{% if m.figures.lens %}{% set lens = m.figures.lens | selectattr("layer", "equalto", l.layer) | first %}<td>{{ "%.3f" | format(lens.kl_excl0.mean) if lens else "" }}</td><td>{{ lens.last_top1_token | quoted if lens else "" }}</td>{% endif %}
{% if m.figures.ablation %}{% set a = m.figures.ablation | selectattr("layer", "equalto", l.layer) | first %}<td>{{ "%.3f" | format(a.perplexity) if a else "" }}</td>{% endif %}
</tr>{% endfor %}</table>
<h3>Massive activations: the largest |coordinate| of each block's output</h3>
<table><tr><th>block</th><th>max |h_out|</th><th>× median</th><th>token</th><th>position</th><th>window</th><th>dimension</th></tr>
{% for a in m.figures.massive %}<tr><td>{{ a.layer }}</td><td>{{ "%.1f" | format(a.max_abs) }}</td><td>{{ "%.0f" | format(a.ratio) }}</td><td>{{ a.token | quoted }}</td><td>{{ a.position }}</td><td>{{ a.window }}</td><td>{{ a.dim }}</td></tr>{% endfor %}</table>
{% endfor %}
<h2>What the figures mean</h2>
<dl>
<dt>Relative contribution</dt><dd>||h_out − h_in|| / ||h_in||: how large the block's whole update is next to the residual it receives. A block that "coasts" has a small value.</dd>
<dt>Residual norm</dt><dd>||h_in||, the L2 norm of one token's residual vector entering the block.</dd>
<dt>Attention and MLP shares</dt><dd>||a|| / ||h_in|| and ||m|| / ||h_mid||, with a the attention update and m the MLP update.</dd>
<dt>Cosine, block influence, angular distance</dt><dd>cos(h_in, h_out); block influence 1 − cos (ShortGPT, arXiv 2403.03853); arccos(cos)/π (arXiv 2403.17887). Near 0 means the block barely turns the residual.</dd>
<dt>Logit lens</dt><dd>Each block's output passed through the final norm and LM head; KL(final ‖ lens) in nats says how far that reading is from the model's own prediction.</dd>
<dt>Ablation</dt><dd>Perplexity on the same text with the block replaced by the identity.</dd>
</dl>
<h2>The Pre-Norm hypothesis</h2>
<p>In a Pre-Norm block, x = x + F(Norm(x)): the residual is never normalized, so its norm grows with depth while each block sees a unit-scale input. If updates keep a fixed size, the relative contribution of deep blocks shrinks as the residual grows, and deep blocks would matter little (low relative contribution, block influence near 0, small ablation cost). The plots show whether this model behaves that way.</p>
<h2>Peri-LN</h2>
<p>A Peri-LN block (Gemma 3) normalizes each sublayer's output as well as its input, x = x + PostNorm(F(PreNorm(x))): every update enters the residual at the scale its post-norm gain sets, whatever the sublayer computed. arXiv 2502.02732 argues that this keeps the residual's variance from growing exponentially with depth (it should grow about linearly). The growth fits above say which shape each model's residual norm follows; with several models, the x axis of the plots is the depth fraction so blocks at the same relative depth line up.</p>
</body></html>
"#;

/// Renders the report page.
pub fn render_report(input: &ReportInput) -> Result<String> {
    render_template(TEMPLATE, input)
}

/// Renders the Jinja page `template` (every HTML report uses it) with `input`.
pub fn render_template(template: &str, input: &impl Serialize) -> Result<String> {
    let mut env = Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    // The `.html` name turns on HTML escaping of every value (token texts
    // such as `<bos>` included); the SVG plot is marked `safe`.
    env.add_template("report.html", template)
        .map_err(|e| Error::internal(format!("report template: {e}")))?;
    env.add_filter("quoted", |s: String| format!("{s:?}"));
    env.add_filter("readable", super::chart::readable);
    env.get_template("report.html")
        .expect("template was just added")
        .render(minijinja::Value::from(minijinja::value::Serde(input)))
        .map_err(|e| Error::internal(format!("cannot render the report: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_html_escaped_and_the_plot_is_not() {
        let html = render_report(&ReportInput {
            title: "t".into(),
            command: "analyze 'a<b'".into(),
            source: "x".into(),
            models: Vec::new(),
            svg: "<svg id=\"plot\"></svg>".into(),
            findings: vec!["on token \"<bos>\" at position 0".into()],
        })
        .unwrap();
        assert!(html.contains("&lt;bos&gt;"), "{html}");
        assert!(!html.contains("<bos>"));
        assert!(!html.contains("a<b"));
        assert!(html.contains("<svg id=\"plot\"></svg>"));
    }
}
