//! A few plain sentences drawn from the figures (never from expectation), for
//! the report and the terminal.

use super::figure::Figure;
use super::run::Figures;

/// Sentences on residual growth, deep-block contribution, ablation and the lens.
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
