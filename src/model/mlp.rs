//! The gated MLP: `down(act(gate(x)) * up(x))`, with SiLU (SwiGLU, LLaMA) or
//! tanh-approximated GELU (GeGLU, Gemma; through ggml's f16 table when the
//! weights are ggml-quantized, as llama.cpp computes it).

use candle_core::Tensor;

use super::config::Activation;
use super::linear::Linear;
use crate::error::Result;
use crate::kernels;

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
            // On ggml-quantized weights, llama.cpp's f16 GELU table.
            Activation::GeluTanh if self.gate.quantizes_activations() => gelu_f16(&g)?,
            Activation::GeluTanh => g.gelu()?,
        };
        let up = self.up.forward(x)?;
        self.down.forward(&(gate * up)?)
    }
}

/// [`kernels::gelu_tanh_f16`] on an f32 tensor.
fn gelu_f16(g: &Tensor) -> Result<Tensor> {
    let mut v = g.flatten_all()?.to_vec1::<f32>()?;
    kernels::gelu_tanh_f16(&mut v);
    Ok(Tensor::from_vec(v, g.shape(), g.device())?)
}
