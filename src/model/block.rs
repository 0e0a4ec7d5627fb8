//! One transformer block: Pre-Norm, `x = x + attn(norm(x)); x = x + mlp(norm(x))`.

use candle_core::Tensor;
use candle_nn::kv_cache::KvCache;

use super::attention::Attention;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::observer::Observer;
use super::rope::Rope;
use crate::error::Result;

/// A Pre-Norm decoder block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Norm before attention (`input_layernorm`).
    pub attn_norm: RmsNorm,
    /// Self-attention.
    pub attn: Attention,
    /// Norm before the MLP (`post_attention_layernorm`).
    pub mlp_norm: RmsNorm,
    /// SwiGLU MLP.
    pub mlp: Mlp,
}

impl Block {
    /// `(b, t, hidden) -> (b, t, hidden)`, reporting each step to `obs`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<O: Observer>(
        &self,
        layer: usize,
        x: &Tensor,
        rope: &Rope,
        start: usize,
        cache: Option<&mut KvCache>,
        differentiable: bool,
        obs: &mut O,
    ) -> Result<Tensor> {
        obs.resid_pre(layer, x)?;
        let a = self.attn.forward(
            &self.attn_norm.forward(x, differentiable)?,
            rope,
            start,
            cache,
            differentiable,
        )?;
        obs.attn_out(layer, &a)?;
        let h_mid = (x + a)?;
        obs.resid_mid(layer, &h_mid)?;
        let m = self
            .mlp
            .forward(&self.mlp_norm.forward(&h_mid, differentiable)?)?;
        obs.mlp_out(layer, &m)?;
        let h_out = (h_mid + m)?;
        obs.resid_post(layer, &h_out)?;
        Ok(h_out)
    }
}
