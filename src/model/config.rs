//! Model configuration: `config.json` as transformers 4 and 5 write it,
//! resolved once into a plain, validated [`Config`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::placement::{Placement, PlacementFields};
use crate::error::{Error, Result};

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
}

/// `config.json` as found on disk; optional fields take LlamaConfig's defaults.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base (transformers 4 layout).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// RoPE scaling (transformers 4 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// RoPE parameters (transformers 5 layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    /// Context length the model was trained for.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Whether the LM head shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// BOS id(s).
    #[serde(default)]
    pub bos_token_id: Option<TokenIds>,
    /// EOS id(s).
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    /// Activation; only `silu` is supported.
    #[serde(default)]
    pub hidden_act: Option<String>,
    /// Attention projections with bias are not supported.
    #[serde(default)]
    pub attention_bias: bool,
    /// MLP projections with bias are not supported.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Storage dtype (transformers 4 name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    /// Storage dtype (transformers 5 name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// `llama`, `mistral`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// e.g. `["LlamaForCausalLM"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// normscope's norm-placement keys (absent for a Pre-Norm checkpoint).
    #[serde(flatten)]
    pub normscope: PlacementFields,
}

fn default_eps() -> f64 {
    1e-6
}

fn default_max_pos() -> usize {
    2048
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
    /// Per-head width.
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// Optional llama3 RoPE scaling.
    pub rope_scaling: Option<Llama3Scaling>,
    /// True when q/k rows are in llama.cpp's interleaved-RoPE order (GGUF).
    pub rope_interleaved: bool,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Whether the LM head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// BOS id, when the model has one.
    pub bos_token_id: Option<u32>,
    /// Ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// Where each block normalizes (Pre-Norm unless config.json says otherwise).
    pub placement: Placement,
}

impl Config {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let raw: HfConfig = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a valid config.json: {e}")))?;
        raw.resolve().map_err(|msg| Error::format(path, msg))
    }
}

impl HfConfig {
    /// Resolves optional fields and checks consistency; the error is a plain message.
    pub fn resolve(&self) -> std::result::Result<Config, String> {
        if let Some(t) = &self.model_type {
            if !matches!(t.as_str(), "llama" | "mistral" | "smollm" | "smollm2") {
                return Err(format!(
                    "model_type `{t}` is not a LLaMA-architecture model"
                ));
            }
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return Err(format!("hidden_act `{act}` is not supported (only silu)"));
            }
        }
        if self.attention_bias || self.mlp_bias {
            return Err("projections with bias are not supported".into());
        }
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        let num_heads = self.num_attention_heads;
        let num_kv_heads = self.num_key_value_heads.unwrap_or(num_heads);
        if num_kv_heads == 0 || !num_heads.is_multiple_of(num_kv_heads) {
            return Err(format!(
                "num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"
            ));
        }
        let head_dim = match self.head_dim {
            Some(d) => d,
            None => {
                if !self.hidden_size.is_multiple_of(num_heads) {
                    return Err(format!(
                        "hidden_size {} is not divisible by num_attention_heads {num_heads}",
                        self.hidden_size
                    ));
                }
                self.hidden_size / num_heads
            }
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(format!("head_dim {head_dim} must be positive and even"));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(format!(
                "rms_norm_eps {} must be positive",
                self.rms_norm_eps
            ));
        }
        let rope = self
            .rope_parameters
            .clone()
            .or_else(|| self.rope_scaling.clone())
            .unwrap_or_default();
        let rope_theta = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10000.0);
        if !(rope_theta.is_finite() && rope_theta > 0.0) {
            return Err(format!("rope_theta {rope_theta} must be positive"));
        }
        let rope_scaling = match rope.rope_type.as_deref() {
            None | Some("default") => None,
            Some("llama3") => Some(Llama3Scaling {
                factor: rope.factor.ok_or("llama3 rope scaling without `factor`")?,
                low_freq_factor: rope.low_freq_factor.unwrap_or(1.0),
                high_freq_factor: rope.high_freq_factor.unwrap_or(4.0),
                original_max_position_embeddings: rope
                    .original_max_position_embeddings
                    .unwrap_or(8192),
            }),
            Some(other) => return Err(format!("rope type `{other}` is not supported")),
        };
        Ok(Config {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_hidden_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: self.vocab_size,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta,
            rope_scaling,
            rope_interleaved: false,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            bos_token_id: self
                .bos_token_id
                .as_ref()
                .and_then(|b| b.to_vec().first().copied()),
            eos_token_ids: self
                .eos_token_id
                .as_ref()
                .map(TokenIds::to_vec)
                .unwrap_or_default(),
            placement: self.normscope.resolve(self.num_hidden_layers)?,
        })
    }
}

impl Config {
    /// The `config.json` that describes this configuration (transformers 4 layout,
    /// which transformers 5 also reads).
    pub fn to_hf(&self, dtype: &str) -> HfConfig {
        HfConfig {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_layers,
            num_attention_heads: self.num_heads,
            num_key_value_heads: Some(self.num_kv_heads),
            head_dim: Some(self.head_dim),
            vocab_size: self.vocab_size,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta: Some(self.rope_theta),
            rope_scaling: self.rope_scaling.as_ref().map(|s| RopeParameters {
                rope_type: Some("llama3".into()),
                rope_theta: None,
                factor: Some(s.factor),
                low_freq_factor: Some(s.low_freq_factor),
                high_freq_factor: Some(s.high_freq_factor),
                original_max_position_embeddings: Some(s.original_max_position_embeddings),
            }),
            rope_parameters: None,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            bos_token_id: self.bos_token_id.map(TokenIds::One),
            eos_token_id: match self.eos_token_ids.as_slice() {
                [] => None,
                [one] => Some(TokenIds::One(*one)),
                many => Some(TokenIds::Many(many.to_vec())),
            },
            hidden_act: Some("silu".into()),
            attention_bias: false,
            mlp_bias: false,
            torch_dtype: Some(dtype.into()),
            dtype: None,
            model_type: Some("llama".into()),
            architectures: Some(vec!["LlamaForCausalLM".into()]),
            normscope: PlacementFields::of(self.placement),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100
        })
    }

    fn resolve(v: serde_json::Value) -> std::result::Result<Config, String> {
        serde_json::from_value::<HfConfig>(v).unwrap().resolve()
    }

    #[test]
    fn transformers5_rope_parameters_are_read() {
        let mut v = base();
        v["rope_parameters"] = serde_json::json!({"rope_type": "default", "rope_theta": 100000.0});
        assert_eq!(resolve(v).unwrap().rope_theta, 100000.0);
    }

    #[test]
    fn transformers4_rope_theta_and_llama3_scaling() {
        let mut v = base();
        v["rope_theta"] = serde_json::json!(500000.0);
        v["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let c = resolve(v).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.rope_scaling.unwrap().factor, 8.0);
    }

    #[test]
    fn eos_as_list_and_defaults() {
        let mut v = base();
        v["eos_token_id"] = serde_json::json!([2, 7]);
        let c = resolve(v).unwrap();
        assert_eq!(c.eos_token_ids, vec![2, 7]);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.rope_theta, 10000.0);
        assert!(!c.tie_word_embeddings);
    }

    #[test]
    fn inconsistent_heads_are_rejected() {
        let mut v = base();
        v["num_key_value_heads"] = serde_json::json!(3);
        assert!(resolve(v).unwrap_err().contains("not a multiple"));
        let mut v = base();
        v["num_attention_heads"] = serde_json::json!(6);
        assert!(resolve(v).unwrap_err().contains("not divisible"));
    }

    #[test]
    fn round_trip_through_hf_layout() {
        let c = resolve(base()).unwrap();
        let again = c.to_hf("float32").resolve().unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn placement_is_read_and_written_under_normscope_keys() {
        let mut v = base();
        v["normscope_norm_placement"] = serde_json::json!("deepnorm");
        v["normscope_deepnorm_alpha"] = serde_json::json!(1.5);
        let c = resolve(v).unwrap();
        assert_eq!(
            c.placement,
            Placement::DeepNorm {
                alpha: 1.5,
                beta: 16f64.powf(-0.25)
            }
        );
        let json = serde_json::to_value(c.to_hf("float32")).unwrap();
        assert_eq!(json["normscope_norm_placement"], "deepnorm");
        assert_eq!(json["normscope_deepnorm_alpha"], 1.5);
        let pre = serde_json::to_value(resolve(base()).unwrap().to_hf("float32")).unwrap();
        assert!(pre
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("normscope")));
    }
}
