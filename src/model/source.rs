//! The loading seam: where the model's tensors come from (a safetensors
//! folder, a GGUF file, random weights, trainable variables). A source serves
//! each [`TensorSpec`] of [`super::layout`] by the name its format uses, checks
//! the shape, and names its file in errors.

use candle_core::Tensor;

use super::embedding::Embedding;
use super::layout::TensorSpec;
use super::linear::Linear;
use crate::error::{Error, Result};

/// Where the model's tensors come from.
pub trait TensorSource {
    /// The dense tensor `spec` in the model dtype, with shape `spec.shape`;
    /// a norm gain as the model multiplies by it (see [`TensorSpec::hf_gain_offset`]).
    fn tensor(&self, spec: &TensorSpec) -> Result<Tensor>;

    /// True when the checkpoint holds `spec`.
    fn contains(&self, spec: &TensorSpec) -> bool;

    /// An error about `spec`, naming the file that holds (or should hold) it.
    fn error(&self, spec: &TensorSpec, msg: &str) -> Error;

    /// The `(out, in)` weight `spec` as a linear map (dense unless the format is quantized).
    fn linear(&self, spec: &TensorSpec) -> Result<Linear> {
        Ok(Linear::dense(self.tensor(spec)?))
    }

    /// The token embedding (dense unless the format keeps it quantized).
    fn embedding(&self, spec: &TensorSpec) -> Result<Embedding> {
        Ok(Embedding::Dense(self.tensor(spec)?))
    }

    /// The LM head tied to the embedding `embed` (read from `embed_spec`).
    fn tied_head(&self, embed: &Embedding, _embed_spec: &TensorSpec) -> Result<Linear> {
        Ok(match embed {
            Embedding::Dense(t) => Linear::dense(t.clone()),
            Embedding::Rows(l) => l.clone(),
        })
    }
}

/// A tensor as a Hugging Face file stores it -> the model's value (norm gains
/// of architectures that store `gain - 1`, such as Gemma, get the 1 back).
pub fn from_hf_stored(spec: &TensorSpec, stored: Tensor) -> Result<Tensor> {
    let k = spec.hf_gain_offset;
    Ok(if k == 0.0 { stored } else { (stored + k)? })
}

/// The model's value -> what a Hugging Face file stores (the inverse of [`from_hf_stored`]).
pub fn to_hf_stored(spec: &TensorSpec, value: &Tensor) -> Result<Tensor> {
    let k = spec.hf_gain_offset;
    Ok(if k == 0.0 {
        value.clone()
    } else {
        (value - k)?
    })
}
