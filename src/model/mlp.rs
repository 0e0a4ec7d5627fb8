//! The SwiGLU MLP: `down(silu(gate(x)) * up(x))`.

use candle_core::Tensor;

use super::linear::Linear;
use crate::error::Result;

/// Gated MLP with SiLU activation.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// `(ffn, hidden)`.
    pub gate: Linear,
    /// `(ffn, hidden)`.
    pub up: Linear,
    /// `(hidden, ffn)`.
    pub down: Linear,
}

impl Mlp {
    /// `(b, t, hidden) -> (b, t, hidden)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(x)?)?;
        let up = self.up.forward(x)?;
        self.down.forward(&(gate * up)?)
    }
}
