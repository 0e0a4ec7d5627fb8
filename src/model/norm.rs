//! RMSNorm: `y = g * x / sqrt(mean(x^2) + eps)`.

use candle_core::{DType, Tensor, D};

use super::layout::TensorSpec;
use super::source::TensorSource;
use crate::error::Result;

/// Root-mean-square normalization with a learned gain.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// Wraps a gain vector.
    pub fn new(weight: Tensor, eps: f64) -> Self {
        Self { weight, eps }
    }

    /// The norm whose gain `src` holds at `spec`.
    pub fn load(src: &dyn TensorSource, spec: &TensorSpec, eps: f64) -> Result<Self> {
        Ok(Self::new(src.tensor(spec)?, eps))
    }

    /// The gain vector.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Normalizes over the last dimension. `differentiable` selects plain
    /// tensor ops (with a backward pass) over candle's fused kernel.
    pub fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        if !differentiable {
            return Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)?);
        }
        let dtype = x.dtype();
        let xf = at_least_f32(x)?;
        let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let y = xf.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
        Ok(y.to_dtype(dtype)?.broadcast_mul(&self.weight)?)
    }
}

/// Half-precision tensors widened to f32; f32 and f64 unchanged.
pub fn at_least_f32(x: &Tensor) -> Result<Tensor> {
    Ok(match x.dtype() {
        DType::F16 | DType::BF16 => x.to_dtype(DType::F32)?,
        _ => x.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_and_differentiable_paths_agree() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 3.0, (2, 5, 16), &dev).unwrap();
        let g = Tensor::randn(1f32, 0.1, 16, &dev).unwrap();
        let n = RmsNorm::new(g, 1e-5);
        let a = n.forward(&x, false).unwrap();
        let b = n.forward(&x, true).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
