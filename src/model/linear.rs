//! A bias-free linear map `y = x W^T`, dense or quantized.

use candle_core::quantized::QMatMul;
use candle_core::{Module, Tensor};

use crate::error::Result;

/// A weight matrix of shape `(out, in)`, stored densely or quantized.
#[derive(Debug, Clone)]
pub enum Linear {
    /// Dense weights in the model dtype (trainable when they are `Var`s).
    Dense(candle_nn::Linear),
    /// Quantized weights (GGUF or in-situ quantization).
    Quantized(QMatMul),
}

impl Linear {
    /// A dense map from an `(out, in)` weight.
    pub fn dense(weight: Tensor) -> Self {
        Linear::Dense(candle_nn::Linear::new(weight, None))
    }

    /// Applies the map to `(.., in)` and returns `(.., out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Linear::Dense(l) => l.forward(x)?,
            Linear::Quantized(q) => q.forward(x)?,
        })
    }

    /// The dense weight, when there is one.
    pub fn dense_weight(&self) -> Option<&Tensor> {
        match self {
            Linear::Dense(l) => Some(l.weight()),
            Linear::Quantized(_) => None,
        }
    }
}
