//! One analysis pass over a text: residual figures, logit lens and perplexity
//! from the same forward passes, then optional one-block-at-a-time ablation.

use candle_core::Tensor;
use serde::Serialize;

use super::lens::{LensCapture, LensFigures, LogitLens};
use super::massive::{MassiveActivation, MassiveObserver};
use super::perplexity::{evaluate, window_nll, Nll};
use super::residual::{LayerFigures, ResidualObserver};
use super::stats::Stat;
use crate::error::Result;
use crate::model::Model;

/// What to compute besides the residual figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalyzeOptions {
    /// Logit lens for every block.
    pub lens: bool,
    /// Keep per-token values.
    pub per_token: bool,
    /// Remove each block in turn and measure perplexity.
    pub ablate: bool,
}

/// Norm of the final RMSNorm's output.
#[derive(Debug, Clone, Serialize)]
pub struct FinalNorm {
    /// Over all tokens.
    pub all: Stat,
    /// After position 0 of each window.
    pub excl0: Stat,
}

/// Perplexity without one block.
#[derive(Debug, Clone, Serialize)]
pub struct AblationRow {
    /// The block removed (replaced by the identity).
    pub layer: usize,
    /// Perplexity without it.
    pub perplexity: f64,
    /// Change from the full model's perplexity.
    pub delta: f64,
    /// Ratio to the full model's perplexity.
    pub ratio: f64,
}

/// Everything measured over one text.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Blocks in the model (skipped ones included).
    pub num_layers: usize,
    /// The model's norm placement (`pre`, `peri`, `post`, ...).
    pub placement: &'static str,
    /// Tokens analysed.
    pub tokens: usize,
    /// Windows they were split into.
    pub windows: usize,
    /// Predicted tokens (tokens minus one per window).
    pub predicted_tokens: usize,
    /// Perplexity of the model as run (with any skipped blocks).
    pub perplexity: Option<f64>,
    /// Per-block residual figures.
    pub layers: Vec<LayerFigures>,
    /// Final-norm output norm.
    pub final_norm: FinalNorm,
    /// Logit lens per block, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<Vec<LensFigures>>,
    /// Ablation per block, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ablation: Option<Vec<AblationRow>>,
    /// The largest coordinate of each block's output (massive activations).
    pub massive: Vec<MassiveActivation>,
}

/// Runs the analysis over `windows`, calling `tick` after each forward pass
/// (windows, then windows x blocks for ablation).
pub fn analyze(
    model: &mut Model,
    windows: &[Vec<u32>],
    opts: &AnalyzeOptions,
    token_text: &dyn Fn(u32) -> String,
    tick: &mut dyn FnMut(),
) -> Result<Figures> {
    let n = model.cfg.num_layers;
    let mut residual = ResidualObserver::new(n, opts.per_token);
    let mut massive = MassiveObserver::new(n);
    let mut lens = opts.lens.then(|| LogitLens::new(n));
    let mut nll = Nll::default();
    for (i, w) in windows.iter().enumerate() {
        let ids = Tensor::new(w.as_slice(), model.device())?.unsqueeze(0)?;
        massive.start_window(i, w);
        let mut obs = ((&mut residual, &mut massive), LensCapture::default());
        let logits = if lens.is_some() {
            model.logits(&model.hidden(&ids, None, &mut obs)?)?
        } else {
            model.logits(&model.hidden(&ids, None, &mut obs.0)?)?
        };
        nll.add(window_nll(&logits, w, 0)?);
        if let Some(l) = lens.as_mut() {
            l.add_window(model, obs.1, &logits)?;
        }
        tick();
    }
    let (all, excl0) = residual.final_norm();
    let perplexity = nll.perplexity();
    let ablation = match (opts.ablate, perplexity) {
        (true, Some(base)) => Some(ablate(model, windows, base, tick)?),
        _ => None,
    };
    let mut massive = massive.rows();
    for m in &mut massive {
        m.token = token_text(m.token_id);
    }
    Ok(Figures {
        num_layers: n,
        placement: model.cfg.placement.name(),
        massive,
        tokens: windows.iter().map(Vec::len).sum(),
        windows: windows.len(),
        predicted_tokens: nll.count,
        perplexity,
        layers: residual.layers(),
        final_norm: FinalNorm { all, excl0 },
        lens: lens.map(|l| l.figures(token_text)),
        ablation,
    })
}

/// Perplexity with each block (not already skipped) removed in turn.
fn ablate(
    model: &mut Model,
    windows: &[Vec<u32>],
    base: f64,
    tick: &mut dyn FnMut(),
) -> Result<Vec<AblationRow>> {
    let skipped = model.skipped_layers();
    let mut rows = Vec::new();
    for layer in (0..model.cfg.num_layers).filter(|l| !skipped.contains(l)) {
        let mut skip = skipped.clone();
        skip.push(layer);
        model.set_skip_layers(&skip)?;
        let result = evaluate(model, windows, 0, tick);
        model.set_skip_layers(&skipped)?;
        let ppl = result?.perplexity().unwrap_or(f64::NAN);
        rows.push(AblationRow {
            layer,
            perplexity: ppl,
            delta: ppl - base,
            ratio: ppl / base,
        });
    }
    Ok(rows)
}
