//! A GGUF's metadata (`<arch>.*` keys, as llama.cpp writes them for each
//! [`Architecture`]) -> the model [`Config`], through the same resolution and
//! limits as a `config.json`.

use candle_core::quantized::gguf_file::Value;

use super::gguf::GgufFile;
use super::unused;
use crate::error::{Error, Result};
use crate::model::config::{Architecture, HfConfig, RopeScaling, TokenIds};
use crate::model::Config;

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

    /// The model configuration from the architecture's metadata, as
    /// llama.cpp reads it. The q/k rows of the families llama.cpp's converter
    /// permutes stay in its interleaved-RoPE order; a Llama 3 `rope_freqs`
    /// tensor becomes the RoPE scaling; sliding windows the GGUF may record
    /// for Phi-3 are not applied, as llama.cpp applies none (Mistral GGUFs
    /// carry none).
    pub fn config(&self) -> Result<Config> {
        let name = self.architecture();
        let arch = Architecture::from_gguf_name(name).ok_or_else(|| {
            Error::format(
                &self.path,
                format!(
                    "general.architecture is `{name}`; supported: {}",
                    Architecture::gguf_names().join(", ")
                ),
            )
        })?;
        let key = |k: &str| format!("{name}.{k}");
        let int = |k: &str| self.meta_usize(&key(k));
        let gemma = arch == Architecture::Gemma3;
        let has = |t: &str| self.content.tensor_infos.contains_key(t);
        let vocab = match self.content.tensor_infos.get("token_embd.weight") {
            Some(info) => info.shape.dims()[0],
            None => {
                return Err(Error::format(
                    &self.path,
                    "tensor `token_embd.weight` is missing",
                ))
            }
        };
        let hidden = int("embedding_length")?;
        let heads = int("attention.head_count")?;
        let head_dim = int("attention.key_length")
            .or_else(|_| int("rope.dimension_count"))
            .ok();
        let rotated = int("rope.dimension_count").ok();
        let width = head_dim.unwrap_or(hidden / heads.max(1));
        if let Some(r) = rotated.filter(|&r| r != width) {
            return Err(Error::format(
                &self.path,
                format!(
                    "{}: RoPE on {r} of each head's {width} dimensions (partial rotary) is not supported",
                    key("rope.dimension_count")
                ),
            ));
        }
        if gemma && has("blk.0.attn_q.bias") {
            return Err(Error::format(
                &self.path,
                "tensor `blk.0.attn_q.bias`: Gemma 3 has no attention biases",
            ));
        }
        if arch == Architecture::Olmo2 && int("attention.sliding_window").is_ok() {
            return Err(Error::format(
                &self.path,
                format!(
                    "{}: sliding-window attention in an olmo2 GGUF (OLMo 3) is not supported",
                    key("attention.sliding_window")
                ),
            ));
        }
        let token_id = |k: &str| self.meta_usize(k).ok().map(|v| TokenIds::One(v as u32));
        let raw = HfConfig {
            model_type: Some(arch.model_type().into()),
            hidden_size: hidden,
            intermediate_size: int("feed_forward_length")?,
            num_hidden_layers: int("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: int("attention.head_count_kv").ok(),
            head_dim,
            vocab_size: vocab,
            rms_norm_eps: Some(self.meta_f64(&key("attention.layer_norm_rms_epsilon"))?),
            rope_theta: Some(
                self.meta_f64(&key("rope.freq_base"))
                    .unwrap_or_else(|_| arch.default_rope_theta()),
            ),
            max_position_embeddings: Some(int("context_length")?),
            tie_word_embeddings: Some(!has("output.weight")),
            bos_token_id: token_id("tokenizer.ggml.bos_token_id"),
            eos_token_id: token_id("tokenizer.ggml.eos_token_id"),
            // An output-projection bias means every projection has one.
            attention_bias: has("blk.0.attn_output.bias"),
            // llama.cpp fixes these for Gemma 3 rather than storing them.
            sliding_window: gemma.then(|| int("attention.sliding_window")).transpose()?,
            sliding_window_pattern: gemma
                .then(|| int("attention.sliding_window_pattern").ok())
                .flatten(),
            // llama.cpp leaves out RoPE in every fourth SmolLM3 block, whatever the file says.
            no_rope_layer_interval: (arch == Architecture::SmolLm3).then_some(4),
            query_pre_attn_scalar: head_dim.filter(|_| gemma).map(|d| d as f64),
            ..Default::default()
        };
        let mut cfg = raw.resolve().map_err(|m| Error::format(&self.path, m))?;
        cfg.rope_interleaved = arch.gguf_permutes_qk();
        if has(ROPE_FREQS) {
            cfg.rope_scaling = Some(RopeScaling::Factors(self.rope_factors(&cfg)?));
        }
        Ok(cfg)
    }

    /// Fails when the file holds a tensor a model of `cfg` would not read
    /// (see [`crate::weights::unused`]); `rope_freqs.weight` is read into `cfg`.
    pub fn check_tensor_names(&self, cfg: &Config) -> Result<()> {
        let names = self.layout.tensors.iter().map(|t| t.name.as_str());
        unused::check(cfg, names, &[ROPE_FREQS], unused::Naming::Gguf, &self.path)?;
        Ok(())
    }

    /// The per-frequency RoPE divisors of a Llama 3 GGUF (`rope_freqs.weight`),
    /// checked: one positive finite value per frequency.
    fn rope_factors(&self, cfg: &Config) -> Result<Vec<f32>> {
        let fail = |m: String| Error::format(&self.path, format!("tensor `{ROPE_FREQS}`: {m}"));
        if !matches!(
            cfg.architecture,
            Architecture::Llama | Architecture::Mistral
        ) {
            return Err(fail(format!(
                "per-frequency RoPE factors are not used by {} models",
                cfg.architecture.gguf_name()
            )));
        }
        let t = self
            .qtensor(ROPE_FREQS)?
            .dequantize(&candle_core::Device::Cpu)?;
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        if v.len() != cfg.head_dim / 2 {
            return Err(fail(format!(
                "has {} factors; head_dim {} needs {}",
                v.len(),
                cfg.head_dim,
                cfg.head_dim / 2
            )));
        }
        if let Some(bad) = v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(fail(format!("holds {bad}; factors must be positive")));
        }
        Ok(v)
    }
}

/// The tensor in which llama.cpp's converter stores llama3 RoPE scaling.
pub const ROPE_FREQS: &str = "rope_freqs.weight";
