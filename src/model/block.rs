//! One transformer block, with its norm placement (see [`Placement`]):
//!
//! ```text
//! pre / lnscale:   x = x + attn(s * norm1(x));  x = x + mlp(s * norm2(x))   s = 1 or 1/sqrt(l+1)
//! peri:            x = x + post1(attn(norm1(x)));  x = x + post2(mlp(norm2(x)))
//! reordered:       x = x + post1(attn(x));  x = x + post2(mlp(x))            (OLMo 2)
//! post / deepnorm: y = norm1(x); x = alpha * y + attn(y);  y = norm2(x); x = alpha * y + mlp(y)
//! ```
//!
//! In the Post-Norm form the sum a block returns is normalized by the next
//! block's first norm (the final norm after the last block): that is
//! `x = Norm(alpha * x + F(x))`, with every pretrained gain still scaling the
//! input of the sublayer it scaled in the Pre-Norm checkpoint.
//!
//! Observer hooks. Pre-Norm, Peri-LN and reordered: `resid_pre` x, `attn_out` a,
//! `resid_mid` x + a, `mlp_out` m, `resid_post` x + a + m, where for Peri-LN
//! and reordered the updates a and m are the post-normed sublayer outputs
//! (what joins the residual) and `attn_out_raw` / `mlp_out_raw` report the
//! outputs before their post-norm. Post-Norm forms: `resid_pre` is `alpha * norm1(x)` (the
//! residual the attention update is added to), `attn_out` a, `resid_mid`
//! `alpha * norm2(...)` (the residual the MLP update is added to), `mlp_out`
//! m, `resid_post` the sum the block returns. So the sublayer shares are
//! exactly update / residual-it-is-added-to for every placement, and the
//! relative contribution `||h_out - h_in|| / ||h_in||` also includes what the
//! middle norm does to the stream.

use candle_core::Tensor;

use super::attention::{Attention, Biases};
use super::config::{Config, QkNorm};
use super::kv_cache::LayerCache;
use super::layout::{self, Part, Site};
use super::linear::Linear;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::observer::Observer;
use super::placement::Placement;
use super::rope::Ropes;
use super::source::TensorSource;
use crate::error::Result;

/// A decoder block: norms, attention and an MLP.
#[derive(Debug, Clone)]
pub struct Block {
    /// The norm whose output attention reads (none in OLMo 2's reordered placement).
    pub attn_norm: Option<RmsNorm>,
    /// Self-attention.
    pub attn: Attention,
    /// Peri-LN and reordered: the norm on attention's output.
    pub attn_post_norm: Option<RmsNorm>,
    /// The norm whose output the MLP reads (none in the reordered placement).
    pub mlp_norm: Option<RmsNorm>,
    /// Gated MLP.
    pub mlp: Mlp,
    /// Peri-LN and reordered: the norm on the MLP's output.
    pub mlp_post_norm: Option<RmsNorm>,
}

/// What every block of one forward pass shares.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    /// RoPE tables.
    pub ropes: &'a Ropes,
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
    /// Block `layer` of a model of `cfg`, from `src`.
    pub fn load(src: &dyn TensorSource, cfg: &Config, layer: usize) -> Result<Self> {
        let spec = |p: Part| layout::spec(cfg, Site::Block(layer, p));
        let lin = |p: Part| src.linear(&spec(p));
        let norm = |p: Part| RmsNorm::load(src, &spec(p), cfg.rms_norm_eps);
        let optional = |p: Part| p.present(cfg).then(|| norm(p)).transpose();
        let bias = |p: Part| p.present(cfg).then(|| src.tensor(&spec(p))).transpose();
        Ok(Block {
            attn_norm: optional(Part::AttnNorm)?,
            attn: Attention {
                q: lin(Part::Q)?,
                k: lin(Part::K)?,
                v: lin(Part::V)?,
                o: lin(Part::O)?,
                biases: Biases {
                    q: bias(Part::QBias)?,
                    k: bias(Part::KBias)?,
                    v: bias(Part::VBias)?,
                    o: bias(Part::OBias)?,
                },
                q_norm: optional(Part::QNorm)?,
                k_norm: optional(Part::KNorm)?,
                qk_norm: cfg.qk_norm.unwrap_or(QkNorm::PerHead),
                rotary: cfg.rope_layers[layer],
                num_heads: cfg.num_heads,
                num_kv_heads: cfg.num_kv_heads,
                head_dim: cfg.head_dim,
                kind: cfg.layer_types[layer],
                window: cfg.window(layer),
                scale: cfg.attention_scale(),
            },
            attn_post_norm: optional(Part::AttnPostNorm)?,
            mlp_norm: optional(Part::MlpNorm)?,
            mlp: Mlp {
                gate: lin(Part::Gate)?,
                up: lin(Part::Up)?,
                down: lin(Part::Down)?,
                activation: cfg.activation,
            },
            mlp_post_norm: optional(Part::MlpPostNorm)?,
        })
    }

    /// The linear map `part`, when it is one.
    pub fn linear(&self, part: Part) -> Option<&Linear> {
        let (a, m) = (&self.attn, &self.mlp);
        Some(match part {
            Part::Q => &a.q,
            Part::K => &a.k,
            Part::V => &a.v,
            Part::O => &a.o,
            Part::Gate => &m.gate,
            Part::Up => &m.up,
            Part::Down => &m.down,
            _ => return None,
        })
    }

    /// Every linear map with its part, mutably.
    pub fn linears_mut(&mut self) -> impl Iterator<Item = (Part, &mut Linear)> {
        let (a, m) = (&mut self.attn, &mut self.mlp);
        [
            (Part::Q, &mut a.q),
            (Part::K, &mut a.k),
            (Part::V, &mut a.v),
            (Part::O, &mut a.o),
            (Part::Gate, &mut m.gate),
            (Part::Up, &mut m.up),
            (Part::Down, &mut m.down),
        ]
        .into_iter()
    }

    /// The bias `part`, when the block has it.
    pub fn bias(&self, part: Part) -> Option<&Tensor> {
        let b = &self.attn.biases;
        match part {
            Part::QBias => b.q.as_ref(),
            Part::KBias => b.k.as_ref(),
            Part::VBias => b.v.as_ref(),
            Part::OBias => b.o.as_ref(),
            _ => None,
        }
    }

    /// The norm `part`, when the block has it.
    pub fn norm(&self, part: Part) -> Option<&RmsNorm> {
        match part {
            Part::AttnNorm => self.attn_norm.as_ref(),
            Part::MlpNorm => self.mlp_norm.as_ref(),
            Part::QNorm => self.attn.q_norm.as_ref(),
            Part::KNorm => self.attn.k_norm.as_ref(),
            Part::AttnPostNorm => self.attn_post_norm.as_ref(),
            Part::MlpPostNorm => self.mlp_post_norm.as_ref(),
            _ => None,
        }
    }

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

    /// `s * norm(x)`, or `x` itself in a block without that norm (reordered).
    fn pre_normed(norm: &Option<RmsNorm>, x: &Tensor, s: f64, diff: bool) -> Result<Tensor> {
        match norm {
            Some(n) => scaled(n.forward(x, diff)?, s),
            None => Ok(x.clone()),
        }
    }

    /// `u`, normalized by `post` when the block has that norm (Peri-LN, reordered),
    /// reporting the raw output through `raw` first.
    fn post_normed(
        u: Tensor,
        post: &Option<RmsNorm>,
        diff: bool,
        raw: impl FnOnce(&Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        match post {
            Some(norm) => {
                raw(&u)?;
                norm.forward(&u, diff)
            }
            None => Ok(u),
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
        let y = Self::pre_normed(&self.attn_norm, x, s, diff)?;
        let rope = pass.ropes.for_kind(self.attn.kind);
        let u = self.attn.forward(&y, rope, pass.start, cache, diff)?;
        let a = Self::post_normed(u, &self.attn_post_norm, diff, |u| {
            obs.attn_out_raw(layer, u)
        })?;
        obs.attn_out(layer, &a)?;
        let h_mid = (x + a)?;
        obs.resid_mid(layer, &h_mid)?;
        let u = self
            .mlp
            .forward(&Self::pre_normed(&self.mlp_norm, &h_mid, s, diff)?)?;
        let m = Self::post_normed(u, &self.mlp_post_norm, diff, |u| obs.mlp_out_raw(layer, u))?;
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
        let (Some(attn_norm), Some(mlp_norm)) = (&self.attn_norm, &self.mlp_norm) else {
            return Err(crate::error::Error::internal(
                "a Post-Norm placement needs the pre-sublayer norms",
            ));
        };
        let y = attn_norm.forward(x, diff)?; // the normalized stream
        let r = scaled(y.clone(), alpha)?;
        obs.resid_pre(layer, &r)?;
        let rope = pass.ropes.for_kind(self.attn.kind);
        let a = self.attn.forward(&y, rope, pass.start, cache, diff)?;
        obs.attn_out(layer, &a)?;
        let y = mlp_norm.forward(&(r + a)?, diff)?;
        let r = scaled(y.clone(), alpha)?;
        obs.resid_mid(layer, &r)?;
        let m = self.mlp.forward(&y)?;
        obs.mlp_out(layer, &m)?;
        let h_out = (r + m)?;
        obs.resid_post(layer, &h_out)?;
        Ok(h_out)
    }
}
