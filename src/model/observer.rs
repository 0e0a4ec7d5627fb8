//! The observer seam: the model reports each sublayer's input and update here.
//!
//! Hook names follow TransformerLens (`resid_pre`, `attn_out`, `resid_mid`,
//! `mlp_out`, `resid_post`) so figures line up with Python tooling; in a
//! Peri-LN block `attn_out` and `mlp_out` are the post-normed updates (as
//! TransformerLens has them for Gemma) and `attn_out_raw` / `mlp_out_raw` the
//! sublayer outputs before their post-norm. Every
//! method has an empty default and `()` implements the trait, so a forward
//! pass with no observer compiles to the plain model.

use candle_core::Tensor;

use crate::error::Result;

/// Receives the residual stream and each sublayer's update during a forward pass.
/// All tensors are `(batch, seq, hidden)`.
pub trait Observer {
    /// Block `layer`'s input, before its attention sublayer.
    fn resid_pre(&mut self, _layer: usize, _x: &Tensor) -> Result<()> {
        Ok(())
    }
    /// Peri-LN only: the attention sublayer's output before its post-norm.
    fn attn_out_raw(&mut self, _layer: usize, _u: &Tensor) -> Result<()> {
        Ok(())
    }
    /// The attention sublayer's update (what is added to the residual).
    fn attn_out(&mut self, _layer: usize, _a: &Tensor) -> Result<()> {
        Ok(())
    }
    /// The residual between attention and MLP.
    fn resid_mid(&mut self, _layer: usize, _x: &Tensor) -> Result<()> {
        Ok(())
    }
    /// Peri-LN only: the MLP sublayer's output before its post-norm.
    fn mlp_out_raw(&mut self, _layer: usize, _u: &Tensor) -> Result<()> {
        Ok(())
    }
    /// The MLP sublayer's update.
    fn mlp_out(&mut self, _layer: usize, _m: &Tensor) -> Result<()> {
        Ok(())
    }
    /// Block `layer`'s output.
    fn resid_post(&mut self, _layer: usize, _x: &Tensor) -> Result<()> {
        Ok(())
    }
    /// The output of the final norm, before the LM head.
    fn final_norm(&mut self, _x: &Tensor) -> Result<()> {
        Ok(())
    }
}

/// The no-op observer.
impl Observer for () {}

/// Two observers watching the same pass, called in order.
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn resid_pre(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        self.0.resid_pre(layer, x)?;
        self.1.resid_pre(layer, x)
    }
    fn attn_out_raw(&mut self, layer: usize, u: &Tensor) -> Result<()> {
        self.0.attn_out_raw(layer, u)?;
        self.1.attn_out_raw(layer, u)
    }
    fn attn_out(&mut self, layer: usize, a: &Tensor) -> Result<()> {
        self.0.attn_out(layer, a)?;
        self.1.attn_out(layer, a)
    }
    fn resid_mid(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        self.0.resid_mid(layer, x)?;
        self.1.resid_mid(layer, x)
    }
    fn mlp_out_raw(&mut self, layer: usize, u: &Tensor) -> Result<()> {
        self.0.mlp_out_raw(layer, u)?;
        self.1.mlp_out_raw(layer, u)
    }
    fn mlp_out(&mut self, layer: usize, m: &Tensor) -> Result<()> {
        self.0.mlp_out(layer, m)?;
        self.1.mlp_out(layer, m)
    }
    fn resid_post(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        self.0.resid_post(layer, x)?;
        self.1.resid_post(layer, x)
    }
    fn final_norm(&mut self, x: &Tensor) -> Result<()> {
        self.0.final_norm(x)?;
        self.1.final_norm(x)
    }
}

/// A borrowed observer observes for its owner.
impl<O: Observer + ?Sized> Observer for &mut O {
    fn resid_pre(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        (**self).resid_pre(layer, x)
    }
    fn attn_out_raw(&mut self, layer: usize, u: &Tensor) -> Result<()> {
        (**self).attn_out_raw(layer, u)
    }
    fn attn_out(&mut self, layer: usize, a: &Tensor) -> Result<()> {
        (**self).attn_out(layer, a)
    }
    fn resid_mid(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        (**self).resid_mid(layer, x)
    }
    fn mlp_out_raw(&mut self, layer: usize, u: &Tensor) -> Result<()> {
        (**self).mlp_out_raw(layer, u)
    }
    fn mlp_out(&mut self, layer: usize, m: &Tensor) -> Result<()> {
        (**self).mlp_out(layer, m)
    }
    fn resid_post(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        (**self).resid_post(layer, x)
    }
    fn final_norm(&mut self, x: &Tensor) -> Result<()> {
        (**self).final_norm(x)
    }
}
