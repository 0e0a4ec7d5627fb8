//! Perplexity over non-overlapping windows: ppl = exp(mean negative
//! log-likelihood over the predicted tokens), each window starting at
//! position 0 (with the model's BOS first, for models that use one). Also
//! llama-perplexity's way: chunks whose first token is replaced by BOS, only
//! the second half of each chunk scored.

use candle_core::{DType, IndexOp, Tensor, D};

use crate::error::{Error, Result};
use crate::model::Model;

/// Splits text token ids `ids` (no special tokens) into consecutive windows
/// of at most `ctx` tokens; with a `bos` each window is that token followed by
/// up to `ctx - 1` text tokens. A window with nothing to predict is dropped.
pub fn windows(ids: &[u32], ctx: usize, bos: Option<u32>) -> Result<Vec<Vec<u32>>> {
    let text = ctx.saturating_sub(usize::from(bos.is_some()));
    if ctx < 2 || text == 0 {
        return Err(Error::setting("ctx", "must be at least 2"));
    }
    Ok(ids
        .chunks(text)
        .map(|c| {
            bos.into_iter()
                .chain(c.iter().copied())
                .collect::<Vec<u32>>()
        })
        .filter(|w| w.len() >= 2)
        .collect())
}

/// llama-perplexity's chunks: `ids` as the model's tokenizer gives them (BOS
/// first, for models that use one) cut into `ids.len() / ctx` chunks of `ctx`
/// tokens, each starting with `bos` in place of its first token. Score them
/// with `first = ctx / 2` ([`evaluate`]), as llama-perplexity does.
pub fn llama_cpp_chunks(ids: &[u32], ctx: usize, bos: Option<u32>) -> Result<Vec<Vec<u32>>> {
    if ctx < 4 {
        return Err(Error::setting("ctx", "must be at least 4"));
    }
    Ok(ids
        .chunks_exact(ctx)
        .map(|c| {
            let mut w = c.to_vec();
            if let Some(b) = bos {
                w[0] = b;
            }
            w
        })
        .collect())
}

/// Sum of negative log-likelihoods and the number of predictions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Nll {
    /// Sum over predicted tokens, in nats.
    pub sum: f64,
    /// Predicted tokens.
    pub count: usize,
}

impl Nll {
    /// Adds another window's figures.
    pub fn add(&mut self, other: Nll) {
        self.sum += other.sum;
        self.count += other.count;
    }

    /// exp(mean NLL); None with no predictions.
    pub fn perplexity(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.sum / self.count as f64).exp())
    }
}

/// The NLL of `window[first + 1..]` given the logits `(1, t - first, vocab)`
/// of `window`'s positions `first..`.
pub fn window_nll(logits: &Tensor, window: &[u32], first: usize) -> Result<Nll> {
    let n = window.len() - 1 - first;
    let log_p = candle_nn::ops::log_softmax(&logits.i((0, ..n))?.to_dtype(DType::F32)?, D::Minus1)?;
    let targets = Tensor::new(&window[first + 1..], logits.device())?.unsqueeze(1)?;
    let picked: Vec<f32> = log_p.gather(&targets, 1)?.squeeze(1)?.to_vec1()?;
    Ok(Nll {
        sum: -picked.iter().map(|&x| x as f64).sum::<f64>(),
        count: n,
    })
}

/// Perplexity figures of `model` over `windows`, scoring the predictions made
/// at positions `first..` of each window (0: every token after the first);
/// calls `tick` after each window.
pub fn evaluate(
    model: &Model,
    windows: &[Vec<u32>],
    first: usize,
    tick: &mut dyn FnMut(),
) -> Result<Nll> {
    let mut total = Nll::default();
    for w in windows {
        if w.len() < first + 2 {
            return Err(Error::internal("a window is too short for its scored part"));
        }
        let ids = Tensor::new(w.as_slice(), model.device())?.unsqueeze(0)?;
        let hidden = model.hidden(&ids, None, &mut ())?;
        let scored = hidden.narrow(1, first, w.len() - 1 - first)?;
        total.add(window_nll(&model.logits(&scored)?, w, first)?);
        tick();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn windows_do_not_overlap_and_drop_a_lone_last_token() {
        let ids: Vec<u32> = (0..11).collect();
        let w = windows(&ids, 5, None).unwrap();
        assert_eq!(w, vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7, 8, 9]]);
        assert!(windows(&ids, 1, None).is_err());
        let b = windows(&ids, 5, Some(99)).unwrap();
        assert_eq!(b[0], vec![99, 0, 1, 2, 3]);
        assert_eq!(b[2], vec![99, 8, 9, 10]);
        assert!(windows(&ids, 1, Some(99)).is_err());
    }

    #[test]
    fn llama_cpp_chunks_replace_the_first_token_and_drop_the_rest() {
        let ids: Vec<u32> = (0..11).collect();
        let c = llama_cpp_chunks(&ids, 4, Some(99)).unwrap();
        assert_eq!(c, vec![vec![99, 1, 2, 3], vec![99, 5, 6, 7]]);
        assert_eq!(
            llama_cpp_chunks(&ids, 4, None).unwrap()[1],
            vec![4, 5, 6, 7]
        );
    }

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let logits = Tensor::zeros((1, 4, 10), DType::F32, &Device::Cpu).unwrap();
        let nll = window_nll(&logits, &[1, 2, 3, 4], 0).unwrap();
        assert_eq!(nll.count, 3);
        assert!((nll.perplexity().unwrap() - 10.0).abs() < 1e-4);
        let half = window_nll(&logits, &[1, 2, 3, 4], 2).unwrap();
        assert_eq!(half.count, 1);
    }
}
