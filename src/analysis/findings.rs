//! A few plain sentences drawn from the figures (never from expectation), for
//! the report and the terminal.

use super::figure::Figure;
use super::run::Figures;

/// How the residual norm grows with depth: straight-line and exponential
/// least-squares fits of `norms` against block index, each judged by R² on
/// the norms themselves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// R² of the best straight line.
    pub linear_r2: f64,
    /// R² of the best exponential `exp(c + d l)` (fitted in log space).
    pub exponential_r2: f64,
    /// Its per-block factor `exp(d)`.
    pub per_block: f64,
}

/// The [`Growth`] of `(block, norm)` points (at least three, norms positive).
pub fn growth(points: &[(f64, f64)]) -> Option<Growth> {
    if points.len() < 3 || points.iter().any(|&(_, y)| y.is_nan() || y <= 0.0) {
        return None;
    }
    let fit = |pts: &[(f64, f64)]| {
        let n = pts.len() as f64;
        let (mx, my) = pts
            .iter()
            .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
        let sxy: f64 = pts.iter().map(|&(x, y)| (x - mx) * (y - my)).sum();
        let sxx: f64 = pts.iter().map(|&(x, _)| (x - mx) * (x - mx)).sum();
        let slope = sxy / sxx;
        (my - slope * mx, slope)
    };
    let r2 = |pred: &dyn Fn(f64) -> f64| {
        let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
        let ss_res: f64 = points.iter().map(|&(x, y)| (y - pred(x)).powi(2)).sum();
        let ss_tot: f64 = points.iter().map(|&(_, y)| (y - mean).powi(2)).sum();
        1.0 - ss_res / ss_tot
    };
    let (a, b) = fit(points);
    let logs: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x, y.ln())).collect();
    let (c, d) = fit(&logs);
    Some(Growth {
        linear_r2: r2(&|x| a + b * x),
        exponential_r2: r2(&|x| (c + d * x).exp()),
        per_block: d.exp(),
    })
}

/// Sentences on residual growth, deep-block contribution, ablation, the
/// lens, massive activations and (Peri-LN) the post-norms.
pub fn findings(f: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    let layers = &f.layers;
    if layers.len() < 3 {
        return out;
    }
    let norm = |i: usize| layers[i].excl0[Figure::NormHIn].mean;
    let rel = |i: usize| layers[i].excl0[Figure::RelContrib].mean;
    let (first, last) = (1, layers.len() - 1);
    out.push(format!(
        "Leaving out position 0, the residual norm grows from {:.1} entering block {} to {:.1} entering block {} ({:.1}x).",
        norm(first), layers[first].layer, norm(last), layers[last].layer, norm(last) / norm(first)
    ));
    let pts: Vec<(f64, f64)> = (first..=last)
        .map(|i| (layers[i].layer as f64, norm(i)))
        .collect();
    if let Some(g) = growth(&pts) {
        out.push(format!(
            "Over blocks {}-{} a straight line fits that growth with R² {:.3}, an exponential with R² {:.3} (x{:.3} per block).",
            layers[first].layer, layers[last].layer, g.linear_r2, g.exponential_r2, g.per_block
        ));
    }
    let third = layers.len() / 3;
    let mean_rel =
        |r: std::ops::Range<usize>| r.clone().map(rel).sum::<f64>() / r.len().max(1) as f64;
    let (mid, deep) = (
        mean_rel(third..2 * third),
        mean_rel(2 * third..layers.len()),
    );
    let verdict = if deep < 0.5 * mid {
        "deep blocks contribute much less relative to the residual, as the Pre-Norm hypothesis predicts"
    } else if deep < 0.9 * mid {
        "deep blocks contribute somewhat less, but far from nothing"
    } else {
        "deep blocks do not coast: their relative updates keep pace with the growing residual"
    };
    out.push(format!(
        "Mean relative contribution is {mid:.3} over the middle third of blocks and {deep:.3} over the deepest third: {verdict}."
    ));
    let all_zero = layers
        .iter()
        .map(|l| l.all[Figure::NormHIn].mean)
        .fold(0.0, f64::max);
    if all_zero
        > 4.0
            * layers
                .iter()
                .map(|l| l.excl0[Figure::NormHIn].mean)
                .fold(0.0, f64::max)
    {
        out.push(format!(
            "Position 0 carries a massive activation: with it, the mean residual norm reaches {all_zero:.0}; means that include it are dominated by one token."
        ));
    }
    if let (Some(abl), Some(base)) = (&f.ablation, f.perplexity) {
        let mut sorted: Vec<_> = abl.iter().collect();
        sorted.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
        if let (Some(worst), Some(best)) = (sorted.first(), sorted.last()) {
            out.push(format!(
                "Removing block {} costs the most (perplexity {:.2} -> {:.2}); removing block {} costs the least ({:.2} -> {:.2}).",
                worst.layer, base, worst.perplexity, best.layer, base, best.perplexity
            ));
        }
    }
    if let Some(m) = f
        .massive
        .iter()
        .max_by(|a, b| a.max_abs.total_cmp(&b.max_abs))
    {
        let first_big = f.massive.iter().find(|r| r.max_abs >= 0.5 * m.max_abs);
        out.push(format!(
            "The largest activation is {:.0} (dimension {}, {:.0}x the median |coordinate|) at block {}'s output, on token {:?} at position {} of window {}{}.",
            m.max_abs, m.dim, m.ratio, m.layer, m.token, m.position, m.window,
            first_big.map_or(String::new(), |r| format!(
                "; it reaches half that size first at block {}", r.layer
            ))
        ));
    }
    let post_normed = match f.placement {
        "peri" => Some("Peri-LN's post-norms"),
        "reordered" => Some("The reordered norms (none before the sublayers)"),
        _ => None,
    };
    if let Some(who) = post_normed {
        let mean =
            |k: Figure| layers.iter().map(|l| l.excl0[k].mean).sum::<f64>() / layers.len() as f64;
        out.push(format!(
            "{who} rescale each sublayer's output before it joins the residual: attention's from a mean norm of {:.1} to {:.1}, the MLP's from {:.1} to {:.1} (means over blocks).",
            mean(Figure::NormAttnRaw), mean(Figure::NormAttn), mean(Figure::NormMlpRaw), mean(Figure::NormMlp)
        ));
    }
    if let Some(lens) = &f.lens {
        if let Some(first_match) = lens.iter().find(|l| l.last_kl < 1.0) {
            out.push(format!(
                "Through the logit lens, the last position's distribution comes within 1 nat of the final one only at block {} of {}.",
                first_match.layer, layers.len()
            ));
        }
    }
    out
}

/// Sentences that set several models side by side (the report's summary
/// when it overlays models): residual growth per model, normalized to depth.
pub fn compare(models: &[(String, &Figures)]) -> Vec<String> {
    let mut out = Vec::new();
    for (label, f) in models {
        let l = &f.layers;
        if l.len() < 3 {
            continue;
        }
        let norm = |i: usize| l[i].excl0[Figure::NormHIn].mean;
        let pts: Vec<(f64, f64)> = (1..l.len()).map(|i| (l[i].layer as f64, norm(i))).collect();
        let shape = match growth(&pts) {
            Some(g) if g.linear_r2 >= g.exponential_r2 => format!(
                "closer to a straight line (R² {:.3}) than to an exponential ({:.3})",
                g.linear_r2, g.exponential_r2
            ),
            Some(g) => format!(
                "closer to an exponential (R² {:.3}, x{:.3} per block) than to a straight line ({:.3})",
                g.exponential_r2, g.per_block, g.linear_r2
            ),
            None => "with no clear shape".into(),
        };
        let deep = l[2 * l.len() / 3..]
            .iter()
            .map(|x| x.excl0[Figure::RelContrib].mean)
            .sum::<f64>()
            / (l.len() - 2 * l.len() / 3) as f64;
        out.push(format!(
            "{label} ({} blocks, {}): the residual grows {:.1}x from block 1 to block {}, {shape}; the deepest third's mean relative contribution is {deep:.3}.",
            f.num_layers,
            f.placement,
            norm(l.len() - 1) / norm(1),
            l[l.len() - 1].layer,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_tells_a_line_from_an_exponential() {
        let line: Vec<(f64, f64)> = (1..20).map(|l| (l as f64, 10.0 + 5.0 * l as f64)).collect();
        let g = growth(&line).unwrap();
        assert!((g.linear_r2 - 1.0).abs() < 1e-12 && g.exponential_r2 < g.linear_r2);
        let exp: Vec<(f64, f64)> = (1..20).map(|l| (l as f64, 1.2f64.powi(l))).collect();
        let g = growth(&exp).unwrap();
        assert!((g.exponential_r2 - 1.0).abs() < 1e-9 && g.linear_r2 < g.exponential_r2);
        assert!((g.per_block - 1.2).abs() < 1e-9);
        assert!(growth(&line[..2]).is_none());
    }
}
