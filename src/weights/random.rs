//! Random weights of the right shapes, for benchmarking an architecture
//! without its checkpoint (`--random-init`) and for tests.

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::model::layout::{Kind, Site, TensorSpec};
use crate::model::source::TensorSource;

/// Serves every tensor a model asks for: norm gains are 1, biases 0, matrices are
/// normal with standard deviation 0.02 (the usual LLaMA initialization).
pub struct RandomSource {
    dtype: DType,
    device: Device,
    tied: bool,
}

impl RandomSource {
    /// Random tensors in `dtype` on `device`; `tied` leaves out `lm_head.weight`.
    pub fn new(dtype: DType, device: &Device, tied: bool) -> Self {
        Self {
            dtype,
            device: device.clone(),
            tied,
        }
    }
}

impl TensorSource for RandomSource {
    fn tensor(&self, spec: &TensorSpec) -> Result<Tensor> {
        let shape = spec.shape.as_slice();
        let t = if spec.kind == Kind::Bias {
            Tensor::zeros(shape, DType::F32, &self.device)?
        } else if shape.len() == 1 {
            Tensor::ones(shape, DType::F32, &self.device)?
        } else {
            Tensor::randn(0f32, 0.02, shape, &self.device)?
        };
        Ok(t.to_dtype(self.dtype)?)
    }

    fn contains(&self, spec: &TensorSpec) -> bool {
        !(self.tied && spec.site == Site::Head)
    }

    fn error(&self, spec: &TensorSpec, msg: &str) -> Error {
        Error::usage(format!("random weights: {}: {msg}", spec.hf_name))
    }
}
