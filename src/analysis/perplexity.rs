//! Perplexity over non-overlapping windows: ppl = exp(mean negative
//! log-likelihood over every predicted token), no BOS, each window starting at
//! position 0.

use candle_core::{DType, IndexOp, Tensor, D};

use crate::error::{Error, Result};
use crate::model::Model;

/// Splits `ids` into consecutive windows of at most `ctx` tokens; a last
/// window of a single token (nothing to predict) is dropped.
pub fn windows(ids: &[u32], ctx: usize) -> Result<Vec<Vec<u32>>> {
    if ctx < 2 {
        return Err(Error::setting("ctx", "must be at least 2"));
    }
    Ok(ids
        .chunks(ctx)
        .filter(|w| w.len() >= 2)
        .map(|w| w.to_vec())
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

/// The NLL of `window[1..]` given the logits `(1, t, vocab)` of `window`.
pub fn window_nll(logits: &Tensor, window: &[u32]) -> Result<Nll> {
    let t = window.len();
    let log_p =
        candle_nn::ops::log_softmax(&logits.i((0, ..t - 1))?.to_dtype(DType::F32)?, D::Minus1)?;
    let targets = Tensor::new(&window[1..], logits.device())?.unsqueeze(1)?;
    let picked: Vec<f32> = log_p.gather(&targets, 1)?.squeeze(1)?.to_vec1()?;
    Ok(Nll {
        sum: -picked.iter().map(|&x| x as f64).sum::<f64>(),
        count: t - 1,
    })
}

/// Perplexity figures of `model` over `windows`, calling `tick` after each window.
pub fn evaluate(model: &Model, windows: &[Vec<u32>], tick: &mut dyn FnMut()) -> Result<Nll> {
    let mut total = Nll::default();
    for w in windows {
        let ids = Tensor::new(w.as_slice(), model.device())?.unsqueeze(0)?;
        total.add(window_nll(&model.forward_all(&ids, None)?, w)?);
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
        let w = windows(&ids, 5).unwrap();
        assert_eq!(w, vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7, 8, 9]]);
        assert!(windows(&ids, 1).is_err());
    }

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let logits = Tensor::zeros((1, 4, 10), DType::F32, &Device::Cpu).unwrap();
        let nll = window_nll(&logits, &[1, 2, 3, 4]).unwrap();
        assert_eq!(nll.count, 3);
        assert!((nll.perplexity().unwrap() - 10.0).abs() < 1e-4);
    }
}
