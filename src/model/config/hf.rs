//! `config.json` as transformers writes it for every family of
//! [`super::Architecture`] (LlamaConfig, Qwen2Config, Phi3Config, Gemma3TextConfig, ...;
//! transformers 4 and 5 layouts). [`super::resolve`] turns it into a [`super::Config`].

use serde::{Deserialize, Serialize};

use crate::model::placement::PlacementFields;

/// One token id or a list of them (`eos_token_id` may be either).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// RoPE parameters: transformers 4's `rope_scaling` or transformers 5's `rope_parameters`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct RopeParameters {
    /// `default`, `llama3`, ... (transformers 4 also wrote it as `type`).
    #[serde(alias = "type", default)]
    pub rope_type: Option<String>,
    /// The RoPE base (transformers 5 keeps it here, not at the top level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// llama3 scaling factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// llama3 low-frequency factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    /// llama3 high-frequency factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    /// llama3 original context length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
    /// The fraction of each head that is rotated (transformers 5 keeps
    /// Phi-3's here); only 1 is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_rotary_factor: Option<f64>,
}

/// transformers 5's `rope_parameters`: one set, or one per attention type
/// (Gemma 3: `full_attention` and `sliding_attention`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum RopeParametersField {
    /// Per attention type.
    PerLayerType {
        /// Parameters of full-attention blocks.
        full_attention: RopeParameters,
        /// Parameters of sliding-window blocks.
        sliding_attention: RopeParameters,
    },
    /// One set for every block.
    Shared(RopeParameters),
}

/// `config.json` as found on disk; optional fields take transformers' defaults
/// for the architecture.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct HfConfig {
    /// Residual width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (defaults to the query heads).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width (defaults to hidden / heads).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RMSNorm epsilon (default 1e-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rms_norm_eps: Option<f64>,
    /// RoPE base (transformers 4 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// RoPE base of sliding-window blocks (Gemma 3, transformers 4 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_local_base_freq: Option<f64>,
    /// RoPE scaling (transformers 4 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// RoPE parameters (transformers 5 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParametersField>,
    /// Context length the model was trained for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_position_embeddings: Option<usize>,
    /// Whether the LM head shares the embedding matrix (default: false for
    /// LLaMA, true for Gemma 3, as transformers has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_word_embeddings: Option<bool>,
    /// BOS id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<TokenIds>,
    /// EOS id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    /// Activation (LLaMA's name for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_act: Option<String>,
    /// Activation (Gemma's name for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_activation: Option<String>,
    /// Biases on every attention projection (Qwen2 has q/k/v biases whatever this says).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attention_bias: bool,
    /// MLP projections with bias are not supported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mlp_bias: bool,
    /// Gemma: attention scores are scaled by this to the power -1/2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_pre_attn_scalar: Option<f64>,
    /// The window of sliding-window blocks (Gemma 3, Mistral, Phi-3, Qwen2/3 when enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
    /// Qwen2 / Qwen3 / SmolLM3: whether `sliding_window` applies at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_sliding_window: Option<bool>,
    /// Qwen2 / Qwen3: blocks from this index on use the sliding window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_window_layers: Option<usize>,
    /// SmolLM3: per block, 1 when it applies RoPE and 0 when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_rope_layers: Option<Vec<u8>>,
    /// SmolLM3: without `no_rope_layers`, every this many blocks one has no RoPE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_rope_layer_interval: Option<usize>,
    /// The fraction of each head that is rotated (transformers 4's Phi-3 key); only 1 is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_rotary_factor: Option<f64>,
    /// Gemma 3: every this many blocks, one attends fully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window_pattern: Option<usize>,
    /// The same, under the name transformers 4.5x writes.
    #[serde(
        default,
        rename = "_sliding_window_pattern",
        skip_serializing_if = "Option::is_none"
    )]
    pub sliding_window_pattern_private: Option<usize>,
    /// Gemma 3: `sliding_attention` or `full_attention`, per block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<String>>,
    /// Gemma 2's attention soft-capping (not supported; null in Gemma 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma 2's logit soft-capping (not supported; null in Gemma 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_logit_softcapping: Option<f64>,
    /// Storage dtype (transformers 4 name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    /// Storage dtype (transformers 5 name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// `llama`, `mistral`, `gemma3_text`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// e.g. `["LlamaForCausalLM"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// normscope's norm-placement keys (absent for a checkpoint as trained).
    #[serde(flatten)]
    pub normscope: PlacementFields,
}
