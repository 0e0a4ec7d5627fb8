//! One transformer block, with its norm placement (see [`Placement`]):
//!
//! ```text
//! pre / lnscale:   x = x + attn(s * norm1(x));  x = x + mlp(s * norm2(x))   s = 1 or 1/sqrt(l+1)
//! post / deepnorm: y = norm1(x); x = alpha * y + attn(y);  y = norm2(x); x = alpha * y + mlp(y)
//! ```
//!
//! In the Post-Norm form the sum a block returns is normalized by the next
//! block's first norm (the final norm after the last block): that is
//! `x = Norm(alpha * x + F(x))`, with every pretrained gain still scaling the
//! input of the sublayer it scaled in the Pre-Norm checkpoint.
//!
//! Observer hooks. Pre-Norm: `resid_pre` x, `attn_out` a, `resid_mid` x + a,
//! `mlp_out` m, `resid_post` x + a + m. Post-Norm forms: `resid_pre` is
//! `alpha * norm1(x)` (the residual the attention update is added to),
//! `attn_out` a, `resid_mid` `alpha * norm2(...)` (the residual the MLP update
//! is added to), `mlp_out` m, `resid_post` the sum the block returns. So the
//! sublayer shares are exactly update / residual-it-is-added-to for every
//! placement, and the relative contribution `||h_out - h_in|| / ||h_in||` also
//! includes what the middle norm does to the stream.

use candle_core::Tensor;

use super::attention::Attention;
use super::kv_cache::LayerCache;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::observer::Observer;
use super::placement::Placement;
use super::rope::Rope;
use crate::error::Result;

/// A decoder block: two norms, attention and an MLP.
#[derive(Debug, Clone)]
pub struct Block {
    /// The norm whose output attention reads (`input_layernorm`).
    pub attn_norm: RmsNorm,
    /// Self-attention.
    pub attn: Attention,
    /// The norm whose output the MLP reads (`post_attention_layernorm`).
    pub mlp_norm: RmsNorm,
    /// SwiGLU MLP.
    pub mlp: Mlp,
}

/// What every block of one forward pass shares.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    /// RoPE tables.
    pub rope: &'a Rope,
    /// Position of the first token.
    pub start: usize,
    /// Use ops with a backward pass.
    pub differentiable: bool,
    /// Where the block normalizes.
    pub placement: Placement,
}

/// `x * k`, skipping the multiply when `k` is 1.
fn scaled(x: Tensor, k: f64) -> Result<Tensor> {
    Ok(if k == 1.0 { x } else { (x * k)? })
}

impl Block {
    /// `(b, t, hidden) -> (b, t, hidden)`, reporting each step to `obs`.
    pub fn forward<O: Observer>(
        &self,
        layer: usize,
        x: &Tensor,
        pass: &Pass,
        cache: Option<&mut LayerCache>,
        obs: &mut O,
    ) -> Result<Tensor> {
        match pass.placement.residual_alpha() {
            Some(alpha) => self.forward_post(layer, x, pass, alpha, cache, obs),
            None => self.forward_pre(layer, x, pass, cache, obs),
        }
    }

    fn forward_pre<O: Observer>(
        &self,
        layer: usize,
        x: &Tensor,
        pass: &Pass,
        cache: Option<&mut LayerCache>,
        obs: &mut O,
    ) -> Result<Tensor> {
        let s = pass.placement.norm_scale(layer).unwrap_or(1.0);
        let diff = pass.differentiable;
        obs.resid_pre(layer, x)?;
        let y = scaled(self.attn_norm.forward(x, diff)?, s)?;
        let a = self.attn.forward(&y, pass.rope, pass.start, cache, diff)?;
        obs.attn_out(layer, &a)?;
        let h_mid = (x + a)?;
        obs.resid_mid(layer, &h_mid)?;
        let m = self
            .mlp
            .forward(&scaled(self.mlp_norm.forward(&h_mid, diff)?, s)?)?;
        obs.mlp_out(layer, &m)?;
        let h_out = (h_mid + m)?;
        obs.resid_post(layer, &h_out)?;
        Ok(h_out)
    }

    fn forward_post<O: Observer>(
        &self,
        layer: usize,
        x: &Tensor,
        pass: &Pass,
        alpha: f64,
        cache: Option<&mut LayerCache>,
        obs: &mut O,
    ) -> Result<Tensor> {
        let diff = pass.differentiable;
        let y = self.attn_norm.forward(x, diff)?; // the normalized stream
        let r = scaled(y.clone(), alpha)?;
        obs.resid_pre(layer, &r)?;
        let a = self.attn.forward(&y, pass.rope, pass.start, cache, diff)?;
        obs.attn_out(layer, &a)?;
        let y = self.mlp_norm.forward(&(r + a)?, diff)?;
        let r = scaled(y.clone(), alpha)?;
        obs.resid_mid(layer, &r)?;
        let m = self.mlp.forward(&y)?;
        obs.mlp_out(layer, &m)?;
        let h_out = (r + m)?;
        obs.resid_post(layer, &h_out)?;
        Ok(h_out)
    }
}
