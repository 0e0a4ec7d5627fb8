//! The seam between checkpoint formats and the model: tensors by their
//! Hugging Face names, with shapes checked and errors that name the file.

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::model::embedding::Embedding;
use crate::model::linear::Linear;

/// Where the model's tensors come from (a safetensors folder, a GGUF file, a `VarMap`).
pub trait TensorSource {
    /// The dense tensor `name` in the model dtype; its shape must be `shape`.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor>;

    /// True when the checkpoint holds `name`.
    fn contains(&self, name: &str) -> bool;

    /// An error about tensor `name`, naming the file that holds (or should hold) it.
    fn error(&self, name: &str, msg: &str) -> Error;

    /// The `(out, in)` weight `name` as a linear map (dense unless the format is quantized).
    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear> {
        Ok(Linear::dense(self.tensor(name, &[out, inp])?))
    }

    /// The token embedding `name` of shape `shape` (dense unless the format
    /// keeps it quantized).
    fn embedding(&self, name: &str, shape: &[usize]) -> Result<Embedding> {
        Ok(Embedding::Dense(self.tensor(name, shape)?))
    }

    /// The LM head tied to the embedding `embed`.
    fn tied_head(&self, embed: &Embedding) -> Result<Linear> {
        Ok(match embed {
            Embedding::Dense(t) => Linear::dense(t.clone()),
            Embedding::Rows(l) => l.clone(),
        })
    }
}
