//! The gated MLP: `down(act(gate(x)) * up(x))`, with SiLU (SwiGLU, LLaMA) or
//! tanh-approximated GELU (GeGLU, Gemma).

use candle_core::Tensor;

use super::config::Activation;
use super::linear::Linear;
use crate::error::Result;

/// Gated MLP.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// `(ffn, hidden)`.
    pub gate: Linear,
    /// `(ffn, hidden)`.
    pub up: Linear,
    /// `(hidden, ffn)`.
    pub down: Linear,
    /// The gate's activation.
    pub activation: Activation,
}

impl Mlp {
    /// `(b, t, hidden) -> (b, t, hidden)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.gate.forward(x)?;
        let gate = match self.activation {
            Activation::Silu => candle_nn::ops::silu(&g)?,
            Activation::GeluTanh => g.gelu()?,
        };
        let up = self.up.forward(x)?;
        self.down.forward(&(gate * up)?)
    }
}
