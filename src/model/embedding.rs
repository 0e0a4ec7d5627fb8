//! The token embedding: a dense matrix, or the rows of a (quantized) weight
//! shared with a tied LM head, dequantized only for the tokens looked up.

use candle_core::{DType, Tensor};

use super::linear::Linear;
use crate::error::Result;

/// Token embedding `(vocab, hidden)`.
#[derive(Debug, Clone)]
pub enum Embedding {
    /// A dense matrix in the model dtype (trainable when it is a `Var`).
    Dense(Tensor),
    /// The weight of a linear map (a GGUF's quantized `token_embd` on the
    /// CPU); a tied LM head is the same map, so the bytes are held once.
    Rows(Linear),
}

impl Embedding {
    /// Vectors `(n, hidden)` of token ids `(n,)`, in `dtype`.
    pub fn forward(&self, ids: &Tensor, dtype: DType) -> Result<Tensor> {
        Ok(match self {
            Embedding::Dense(t) => t.index_select(ids, 0)?,
            Embedding::Rows(l) => l.rows(ids)?.to_dtype(dtype)?,
        })
    }

    /// The dense matrix, when the embedding is one.
    pub fn dense(&self) -> Option<&Tensor> {
        match self {
            Embedding::Dense(t) => Some(t),
            Embedding::Rows(_) => None,
        }
    }

    /// `(vocab, hidden)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        match self {
            Embedding::Dense(t) => Ok(t.dims2()?),
            Embedding::Rows(l) => l.dims(),
        }
    }

    /// Bytes the matrix takes in memory.
    pub fn storage_bytes(&self) -> usize {
        match self {
            Embedding::Dense(t) => t.elem_count() * t.dtype().size_in_bytes(),
            Embedding::Rows(l) => l.weight_bytes(),
        }
    }

    /// True when `head` is this embedding's own weight (a tied LM head).
    pub fn is_tied_to(&self, head: &Linear) -> bool {
        match self {
            Embedding::Dense(t) => head.dense_weight().is_some_and(|w| w.id() == t.id()),
            Embedding::Rows(l) => l.shares_weight(head),
        }
    }
}
