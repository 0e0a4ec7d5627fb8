//! Model configuration: `config.json` as transformers 4 and 5 write it for
//! LLaMA-style and Gemma 3 checkpoints ([`hf`]), resolved once into a plain
//! [`Config`] that has passed every consistency check and size limit
//! ([`limits`]) before any tensor is read.

pub mod hf;
pub mod limits;
mod resolve;
mod write;

use std::path::Path;

pub use hf::{HfConfig, RopeParameters, RopeParametersField, TokenIds};

use super::placement::Placement;
use crate::error::{Error, Result};

/// The architecture family: which names a checkpoint uses and which
/// conventions its file formats follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// LLaMA and its relatives (Mistral, SmolLM): Pre-Norm, SwiGLU, RoPE.
    Llama,
    /// Gemma 3 (text): Peri-LN norms, QK-norm, GELU-tanh gating, sliding windows.
    Gemma3,
}

impl Architecture {
    /// `general.architecture` in a GGUF.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Gemma3 => "gemma3",
        }
    }
}

/// The MLP's gating activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU with the tanh approximation (GeGLU), `gelu_pytorch_tanh`.
    GeluTanh,
}

/// Whether a block attends to every earlier position or a recent window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// Every earlier position (RoPE base `rope_theta`).
    Full,
    /// The last `sliding_window` positions (RoPE base `local_rope_theta`).
    Sliding,
}

/// llama3-style RoPE frequency scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Llama3Scaling {
    /// Overall factor.
    pub factor: f64,
    /// Low-frequency factor.
    pub low_freq_factor: f64,
    /// High-frequency factor.
    pub high_freq_factor: f64,
    /// Original context length.
    pub original_max_position_embeddings: usize,
}

/// The resolved, validated configuration the model is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Architecture family.
    pub architecture: Architecture,
    /// Residual width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width (independent of `hidden_size / num_heads`).
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base of full-attention blocks.
    pub rope_theta: f64,
    /// Optional llama3 RoPE scaling (full-attention blocks).
    pub rope_scaling: Option<Llama3Scaling>,
    /// RoPE base of sliding-window blocks (when there are any).
    pub local_rope_theta: f64,
    /// True when q/k rows are in llama.cpp's interleaved-RoPE order (a LLaMA GGUF).
    pub rope_interleaved: bool,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Whether the LM head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// BOS id, when the model has one.
    pub bos_token_id: Option<u32>,
    /// Ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// Where each block normalizes.
    pub placement: Placement,
    /// The MLP's gating activation.
    pub activation: Activation,
    /// Per-head RMSNorm of queries and keys before RoPE.
    pub qk_norm: bool,
    /// Embeddings are multiplied by this before block 0 (Gemma: sqrt(hidden)).
    pub embedding_scale: Option<f64>,
    /// Attention scores are scaled by `query_pre_attn_scalar^-1/2`.
    pub query_pre_attn_scalar: f64,
    /// Window of sliding-window blocks, in positions (the query's own included).
    pub sliding_window: usize,
    /// Full or sliding attention, per block.
    pub layer_types: Vec<AttentionKind>,
}

impl Config {
    /// Reads `config.json` and resolves it (checks and limits included).
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let raw: HfConfig = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a valid config.json: {e}")))?;
        raw.resolve().map_err(|msg| Error::format(path, msg))
    }

    /// The window block `layer` attends over, or `None` for full attention.
    pub fn window(&self, layer: usize) -> Option<usize> {
        match self.layer_types[layer] {
            AttentionKind::Full => None,
            AttentionKind::Sliding => Some(self.sliding_window),
        }
    }

    /// The multiplier on attention scores, `query_pre_attn_scalar^-1/2`.
    pub fn attention_scale(&self) -> f64 {
        1.0 / self.query_pre_attn_scalar.sqrt()
    }

    /// True when some block attends over a sliding window.
    pub fn has_sliding_layers(&self) -> bool {
        self.layer_types.contains(&AttentionKind::Sliding)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small resolved LLaMA configuration (untied head).
    pub(crate) fn tiny_config() -> Config {
        serde_json::from_value::<HfConfig>(serde_json::json!({
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100
        }))
        .unwrap()
        .resolve()
        .unwrap()
    }

    #[test]
    fn llama_blocks_all_attend_fully() {
        let c = tiny_config();
        assert_eq!(c.architecture, Architecture::Llama);
        assert_eq!(c.window(1), None);
        assert!(!c.has_sliding_layers());
        assert_eq!(c.attention_scale(), 0.25);
    }
}
