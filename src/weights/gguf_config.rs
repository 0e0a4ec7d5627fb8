//! A GGUF's metadata (`llama.*` or `gemma3.*` keys, as llama.cpp writes
//! them) -> the model [`Config`], through the same resolution and limits as a
//! `config.json`.

use candle_core::quantized::gguf_file::Value;

use super::gguf::GgufFile;
use crate::error::{Error, Result};
use crate::model::config::{HfConfig, TokenIds};
use crate::model::Config;

/// The architectures a GGUF may name in `general.architecture`.
pub const ARCHITECTURES: [&str; 2] = ["llama", "gemma3"];

impl GgufFile {
    /// Metadata value `key`, or an error naming the key and the file.
    pub fn meta(&self, key: &str) -> Result<&Value> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| Error::format(&self.path, format!("metadata key `{key}` is missing")))
    }

    /// Integer metadata `key`.
    pub fn meta_usize(&self, key: &str) -> Result<usize> {
        let v = self.meta(key)?;
        v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .or_else(|_| v.to_i32().map(|x| x as usize))
            .map_err(|e| Error::format(&self.path, format!("metadata `{key}`: {e}")))
    }

    /// Float metadata `key`, as the shortest decimal of the stored f32
    /// (1e-5, not 9.99999974e-6).
    pub fn meta_f64(&self, key: &str) -> Result<f64> {
        self.meta(key)?
            .to_f32()
            .map(|v| v.to_string().parse::<f64>().unwrap_or(v as f64))
            .map_err(|e| Error::format(&self.path, format!("metadata `{key}`: {e}")))
    }

    /// Optional string metadata.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.content
            .metadata
            .get(key)
            .and_then(|v| v.to_string().ok())
            .map(|s| s.as_str())
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> &str {
        self.meta_str("general.architecture").unwrap_or("")
    }

    /// The model configuration from the architecture's metadata. A LLaMA
    /// GGUF's q/k rows stay in llama.cpp's interleaved-RoPE order (Gemma's
    /// are not permuted by llama.cpp's converter).
    pub fn config(&self) -> Result<Config> {
        let arch = self.architecture();
        if !ARCHITECTURES.contains(&arch) {
            return Err(Error::format(
                &self.path,
                format!(
                    "general.architecture is `{arch}`; supported: {}",
                    ARCHITECTURES.join(", ")
                ),
            ));
        }
        let key = |k: &str| format!("{arch}.{k}");
        let int = |k: &str| self.meta_usize(&key(k));
        let gemma = arch == "gemma3";
        let vocab = match self.content.tensor_infos.get("token_embd.weight") {
            Some(info) => info.shape.dims()[0],
            None => {
                return Err(Error::format(
                    &self.path,
                    "tensor `token_embd.weight` is missing",
                ))
            }
        };
        let head_dim = int("attention.key_length")
            .or_else(|_| int("rope.dimension_count"))
            .ok();
        let token_id = |k: &str| self.meta_usize(k).ok().map(|v| TokenIds::One(v as u32));
        let raw = HfConfig {
            model_type: Some(if gemma { "gemma3_text" } else { "llama" }.into()),
            hidden_size: int("embedding_length")?,
            intermediate_size: int("feed_forward_length")?,
            num_hidden_layers: int("block_count")?,
            num_attention_heads: int("attention.head_count")?,
            num_key_value_heads: int("attention.head_count_kv").ok(),
            head_dim,
            vocab_size: vocab,
            rms_norm_eps: Some(self.meta_f64(&key("attention.layer_norm_rms_epsilon"))?),
            rope_theta: Some(self.meta_f64(&key("rope.freq_base")).unwrap_or(if gemma {
                1_000_000.0
            } else {
                10_000.0
            })),
            max_position_embeddings: Some(int("context_length")?),
            tie_word_embeddings: Some(!self.content.tensor_infos.contains_key("output.weight")),
            bos_token_id: token_id("tokenizer.ggml.bos_token_id"),
            eos_token_id: token_id("tokenizer.ggml.eos_token_id"),
            // llama.cpp fixes these for Gemma 3 rather than storing them.
            sliding_window: gemma.then(|| int("attention.sliding_window")).transpose()?,
            sliding_window_pattern: gemma
                .then(|| int("attention.sliding_window_pattern").ok())
                .flatten(),
            query_pre_attn_scalar: head_dim.filter(|_| gemma).map(|d| d as f64),
            ..Default::default()
        };
        let mut cfg = raw.resolve().map_err(|m| Error::format(&self.path, m))?;
        cfg.rope_interleaved = !gemma;
        Ok(cfg)
    }
}
