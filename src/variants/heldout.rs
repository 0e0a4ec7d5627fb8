//! A checkpoint's held-out loss before any fine-tuning, on the same held-out
//! part of the text that `finetune` evaluates on (its defaults: the last 10 %,
//! windows of 128 tokens), so that `variant` can say how far a fresh variant
//! is from the checkpoint it came from.

use super::data::{heldout_windows, split};
use crate::analysis::perplexity::evaluate;
use crate::error::{Error, Result};
use crate::weights::LoadedModel;

/// The fraction of the text held out (finetune's `--heldout` default).
pub const HELDOUT_FRACTION: f64 = 0.1;
/// Tokens per window (finetune's `--seq-len` default).
pub const WINDOW: usize = 128;

/// Mean next-token loss in nats of `lm` over the first `tokens` held-out
/// tokens of `text`, and how many tokens it scored.
pub fn heldout_loss(lm: &LoadedModel, text: &str, tokens: usize) -> Result<(f64, usize)> {
    let ids = crate::generate::encode_plain(lm, text)?;
    let data = split(&ids, HELDOUT_FRACTION, WINDOW)?;
    let windows = heldout_windows(&data.heldout, WINDOW, tokens);
    let nll = evaluate(&lm.model, &windows, 0, &mut || {})?;
    if nll.count == 0 {
        return Err(Error::usage("no held-out tokens to score"));
    }
    Ok((nll.sum / nll.count as f64, nll.count))
}
