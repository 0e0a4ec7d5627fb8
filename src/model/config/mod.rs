//! Model configuration: `config.json` as transformers 4 and 5 write it for
//! LLaMA-style and Gemma 3 checkpoints ([`hf`]), resolved once into a plain
//! [`Config`] that has passed every consistency check and size limit
//! ([`limits`]) before any tensor is read.

mod arch;
pub mod hf;
pub mod limits;
mod resolve;
mod rope_fit;
mod write;

use std::path::Path;

pub use hf::{HfConfig, RopeParameters, RopeParametersField, TokenIds};

use super::placement::Placement;
use crate::error::{Error, Result};

pub use arch::Architecture;

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

/// How RoPE frequencies are scaled from `1 / theta^(2i/d)`.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// llama3's rule (transformers' `rope_type: llama3`).
    Llama3(Llama3Scaling),
    /// Frequency `i` is divided by `factors[i]` (a Llama 3 GGUF's
    /// `rope_freqs.weight`, which llama.cpp's converter computes from llama3's rule).
    Factors(Vec<f32>),
}

/// Which query/key normalization a model applies before RoPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkNorm {
    /// An RMSNorm over each head's vector (width head_dim): Gemma 3, Qwen3.
    PerHead,
    /// An RMSNorm over the whole projection (width heads x head_dim): OLMo 2.
    Whole,
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
    /// Optional RoPE frequency scaling (full-attention blocks).
    pub rope_scaling: Option<RopeScaling>,
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
    /// RMSNorm of queries and keys before RoPE, per head or over the whole projection.
    pub qk_norm: Option<QkNorm>,
    /// Biases on the query, key and value projections (Qwen2; any `attention_bias: true`).
    pub qkv_bias: bool,
    /// A bias on the attention output projection (`attention_bias: true`).
    pub o_bias: bool,
    /// The checkpoint stores q/k/v as one `qkv_proj` and gate/up as one
    /// `gate_up_proj` (Phi-3); the model splits them on load.
    pub fused_projections: bool,
    /// Per block: whether attention rotates q and k (SmolLM3 leaves out every fourth).
    pub rope_layers: Vec<bool>,
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

    /// The width of the query projection, heads x head_dim.
    pub fn q_width(&self) -> usize {
        self.num_heads * self.head_dim
    }

    /// The width of the key and value projections, KV heads x head_dim.
    pub fn kv_width(&self) -> usize {
        self.num_kv_heads * self.head_dim
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
