//! Text outputs of an analysis: the aligned terminal table and CSV.

use std::fmt::Write;

use super::figure::Figure;
use super::run::Figures;

/// Which token set a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Every token.
    All,
    /// Every token but position 0 of each window (the default: position 0
    /// carries a massive activation that dominates means).
    Excl0,
}

/// The aligned per-block table.
pub fn render_table(f: &Figures, view: View) -> String {
    let mut out = String::new();
    let lens = f.lens.as_ref();
    let abl = f.ablation.as_ref();
    let _ = write!(
        out,
        "{:>5} {:>10} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "layer", "|h_in|", "rel", "attn", "mlp", "cos", "BI", "angular"
    );
    if lens.is_some() {
        let _ = write!(out, " {:>8} {:>6} {:<12}", "lens KL", "agree", "lens top-1");
    }
    if abl.is_some() {
        let _ = write!(out, " {:>10}", "ablate ppl");
    }
    out.push('\n');
    for layer in &f.layers {
        let m = match view {
            View::All => &layer.all,
            View::Excl0 => &layer.excl0,
        };
        let g = |k: Figure| m[k].mean;
        let _ = write!(
            out,
            "{:>5} {:>10.2} {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>7.4} {:>8.4}",
            layer.layer,
            g(Figure::NormHIn),
            g(Figure::RelContrib),
            g(Figure::AttnRatio),
            g(Figure::MlpRatio),
            g(Figure::Cos),
            g(Figure::Bi),
            g(Figure::Angular)
        );
        if let Some(l) = lens.and_then(|l| l.iter().find(|x| x.layer == layer.layer)) {
            let (kl, agree) = if view == View::All {
                (l.kl.mean, l.top1_agreement)
            } else {
                (l.kl_excl0.mean, l.top1_agreement_excl0)
            };
            let _ = write!(
                out,
                " {:>8.3} {:>6.2} {:<12}",
                kl,
                agree,
                format!("{:?}", l.last_top1_token)
            );
        }
        if let Some(a) = abl.and_then(|a| a.iter().find(|x| x.layer == layer.layer)) {
            let _ = write!(out, " {:>10.3}", a.perplexity);
        }
        out.push('\n');
    }
    out
}

/// CSV: one row per block, the mean and std of every figure for both token
/// sets, then lens and ablation columns when present.
pub fn render_csv(f: &Figures) -> String {
    let mut header = vec!["layer".to_string()];
    for view in ["all", "excl0"] {
        for k in Figure::ALL {
            header.push(format!("{k}_{view}_mean"));
            header.push(format!("{k}_{view}_std"));
        }
    }
    if f.lens.is_some() {
        header.extend(
            [
                "lens_kl_mean",
                "lens_kl_excl0_mean",
                "lens_top1_agreement",
                "lens_top1_agreement_excl0",
                "lens_last_top1",
            ]
            .map(String::from),
        );
    }
    if f.ablation.is_some() {
        header.extend(["ablation_perplexity", "ablation_delta"].map(String::from));
    }
    let mut out = header.join(",");
    out.push('\n');
    for layer in &f.layers {
        let mut row = vec![layer.layer.to_string()];
        for m in [&layer.all, &layer.excl0] {
            for (_, s) in m.iter() {
                row.push(s.mean.to_string());
                row.push(s.std.to_string());
            }
        }
        if let Some(lens) = &f.lens {
            match lens.iter().find(|l| l.layer == layer.layer) {
                Some(l) => row.extend([
                    l.kl.mean.to_string(),
                    l.kl_excl0.mean.to_string(),
                    l.top1_agreement.to_string(),
                    l.top1_agreement_excl0.to_string(),
                    l.last_top1.to_string(),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 5)),
            }
        }
        if let Some(abl) = &f.ablation {
            match abl.iter().find(|a| a.layer == layer.layer) {
                Some(a) => row.extend([a.perplexity.to_string(), a.delta.to_string()]),
                None => row.extend(std::iter::repeat_n(String::new(), 2)),
            }
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
