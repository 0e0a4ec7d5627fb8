//! Logit lens: each block's output read through the final norm and LM head,
//! compared with the model's own output distribution.

use candle_core::{DType, IndexOp, Tensor, D};

use super::stats::{Running, Stat};
use crate::error::Result;
use crate::model::{Model, Observer};

/// Keeps each block's output of the current window for the lens.
#[derive(Default)]
pub struct LensCapture {
    outputs: Vec<(usize, Tensor)>,
}

impl Observer for LensCapture {
    fn resid_post(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        self.outputs.push((layer, x.clone()));
        Ok(())
    }
}

/// Lens figures of one block.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LensFigures {
    /// Block index.
    pub layer: usize,
    /// KL(final || lens) in nats, over all tokens.
    pub kl: Stat,
    /// The same after position 0 of each window.
    pub kl_excl0: Stat,
    /// Fraction of tokens whose lens top-1 equals the model's top-1.
    pub top1_agreement: f64,
    /// The same after position 0 of each window.
    pub top1_agreement_excl0: f64,
    /// Lens top-1 id at the last position analysed.
    pub last_top1: u32,
    /// Its text.
    pub last_top1_token: String,
    /// KL at the last position.
    pub last_kl: f64,
    /// Lens probability of the model's top-1 token at the last position.
    pub last_p_final_top1: f64,
}

/// Accumulates lens figures across windows.
pub struct LogitLens {
    kl: Vec<[Running; 2]>,
    agree: Vec<[(u64, u64); 2]>,
    last: Vec<Option<(u32, f64, f64)>>,
}

impl LogitLens {
    /// For a model of `num_layers` blocks.
    pub fn new(num_layers: usize) -> Self {
        Self {
            kl: vec![[Running::default(); 2]; num_layers],
            agree: vec![[(0, 0); 2]; num_layers],
            last: vec![None; num_layers],
        }
    }

    /// Compares each captured block output of one window with `final_logits` `(1, t, vocab)`.
    pub fn add_window(
        &mut self,
        model: &Model,
        capture: LensCapture,
        final_logits: &Tensor,
    ) -> Result<()> {
        let log_p =
            candle_nn::ops::log_softmax(&final_logits.i(0)?.to_dtype(DType::F32)?, D::Minus1)?; // (t, V)
        let p = log_p.exp()?;
        let final_top1: Vec<u32> = log_p.argmax(D::Minus1)?.to_vec1()?;
        let neg_entropy: Vec<f32> = (&p * &log_p)?.sum(D::Minus1)?.to_vec1()?;
        let t = final_top1.len();
        for (layer, h) in capture.outputs {
            let normed = model.norm.forward(&h, model.differentiable)?;
            let lens_logits = model.logits(&normed)?.i(0)?.to_dtype(DType::F32)?; // (t, V)
            let log_q = candle_nn::ops::log_softmax(&lens_logits, D::Minus1)?;
            let cross: Vec<f32> = (&p * &log_q)?.sum(D::Minus1)?.to_vec1()?;
            let top1: Vec<u32> = log_q.argmax(D::Minus1)?.to_vec1()?;
            for j in 0..t {
                let kl = (neg_entropy[j] - cross[j]).max(0.0) as f64;
                self.kl[layer][0].push(kl);
                if j > 0 {
                    self.kl[layer][1].push(kl);
                }
                for view in &mut self.agree[layer][..1 + usize::from(j > 0)] {
                    view.0 += u64::from(top1[j] == final_top1[j]);
                    view.1 += 1;
                }
            }
            let p_top = log_q
                .i((t - 1, final_top1[t - 1] as usize))?
                .exp()?
                .to_scalar::<f32>()? as f64;
            let last_kl = (neg_entropy[t - 1] - cross[t - 1]).max(0.0) as f64;
            self.last[layer] = Some((top1[t - 1], last_kl, p_top));
        }
        Ok(())
    }

    /// The per-block summaries; `token_text` decodes a lens top-1 id.
    pub fn figures(&self, token_text: &dyn Fn(u32) -> String) -> Vec<LensFigures> {
        (0..self.kl.len())
            .filter_map(|l| {
                let (top1, last_kl, p) = self.last[l]?;
                let share = |(hit, n): (u64, u64)| hit as f64 / n.max(1) as f64;
                Some(LensFigures {
                    layer: l,
                    kl: self.kl[l][0].stat(),
                    kl_excl0: self.kl[l][1].stat(),
                    top1_agreement: share(self.agree[l][0]),
                    top1_agreement_excl0: share(self.agree[l][1]),
                    last_top1: top1,
                    last_top1_token: token_text(top1),
                    last_kl,
                    last_p_final_top1: p,
                })
            })
            .collect()
    }
}
