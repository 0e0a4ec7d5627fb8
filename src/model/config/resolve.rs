//! [`HfConfig`] -> [`Config`]: transformers' defaults for the architecture,
//! consistency checks that name the offending field, and the size limits.

use super::hf::{HfConfig, RopeParametersField, TokenIds};
use super::{limits, Activation, Architecture, AttentionKind, Config, Llama3Scaling};
use crate::model::placement::{Placement, PlacementFields};

/// Gemma 3's default: every sixth block attends fully.
const GEMMA3_PATTERN: usize = 6;

impl HfConfig {
    /// The architecture `model_type` (or, without one, `architectures`) names.
    fn architecture(&self) -> Result<Architecture, String> {
        let named_gemma = self
            .architectures
            .iter()
            .flatten()
            .any(|a| a == "Gemma3ForCausalLM");
        match self.model_type.as_deref() {
            None if named_gemma => Ok(Architecture::Gemma3),
            None | Some("llama" | "mistral" | "smollm" | "smollm2") => Ok(Architecture::Llama),
            Some("gemma3_text") => Ok(Architecture::Gemma3),
            Some("gemma3") => Err("model_type `gemma3` is Gemma 3's multimodal wrapper; \
                 use the text model's config.json (model_type `gemma3_text`)"
                .into()),
            Some(t) => Err(format!(
                "model_type `{t}` is not supported (LLaMA-style models and gemma3_text)"
            )),
        }
    }

    /// Resolves optional fields and checks consistency and size limits; the
    /// error is a plain message naming the field.
    pub fn resolve(&self) -> Result<Config, String> {
        let arch = self.architecture()?;
        let gemma = arch == Architecture::Gemma3;
        if self.attention_bias || self.mlp_bias {
            return Err("projections with bias are not supported".into());
        }
        for (name, v) in [
            ("attn_logit_softcapping", self.attn_logit_softcapping),
            ("final_logit_softcapping", self.final_logit_softcapping),
        ] {
            if v.is_some() {
                return Err(format!("{name} is not supported (Gemma 3 sets it to null)"));
            }
        }
        let max_position_embeddings = self.max_position_embeddings.unwrap_or(2048);
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", max_position_embeddings),
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
            None if self.hidden_size.is_multiple_of(num_heads) => self.hidden_size / num_heads,
            None => {
                return Err(format!(
                    "hidden_size {} is not divisible by num_attention_heads {num_heads}",
                    self.hidden_size
                ))
            }
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(format!("head_dim {head_dim} must be positive and even"));
        }
        let rms_norm_eps = self.rms_norm_eps.unwrap_or(1e-6);
        if !(rms_norm_eps.is_finite() && rms_norm_eps > 0.0) {
            return Err(format!("rms_norm_eps {rms_norm_eps} must be positive"));
        }
        let activation = self.activation(arch)?;
        let (rope_theta, rope_scaling, local_rope_theta) = self.rope(gemma)?;
        let (layer_types, sliding_window) = self.layer_types(gemma)?;
        let query_pre_attn_scalar = self.query_pre_attn_scalar.unwrap_or(head_dim as f64);
        if !(query_pre_attn_scalar.is_finite() && query_pre_attn_scalar > 0.0) {
            return Err(format!(
                "query_pre_attn_scalar {query_pre_attn_scalar} must be positive"
            ));
        }
        let placement = match arch {
            Architecture::Llama => self.normscope.resolve(self.num_hidden_layers)?,
            Architecture::Gemma3 if self.normscope == PlacementFields::default() => Placement::Peri,
            Architecture::Gemma3 => {
                return Err(
                    "normscope_norm_placement: Gemma 3 keeps its own (peri) placement; \
                     variants are made from Pre-Norm checkpoints"
                        .into(),
                )
            }
        };
        let cfg = Config {
            architecture: arch,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_hidden_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: self.vocab_size,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            local_rope_theta,
            rope_interleaved: false,
            max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(gemma),
            bos_token_id: self
                .bos_token_id
                .as_ref()
                .and_then(|b| b.to_vec().first().copied()),
            eos_token_ids: self
                .eos_token_id
                .as_ref()
                .map(TokenIds::to_vec)
                .unwrap_or_default(),
            placement,
            activation,
            qk_norm: gemma,
            embedding_scale: gemma.then(|| (self.hidden_size as f64).sqrt()),
            query_pre_attn_scalar,
            sliding_window,
            layer_types,
        };
        limits::check(&cfg)?;
        Ok(cfg)
    }

    fn activation(&self, arch: Architecture) -> Result<Activation, String> {
        let name = self.hidden_activation.as_ref().or(self.hidden_act.as_ref());
        match (arch, name.map(String::as_str)) {
            (Architecture::Llama, None | Some("silu")) => Ok(Activation::Silu),
            (Architecture::Gemma3, None | Some("gelu_pytorch_tanh" | "gelu_tanh")) => {
                Ok(Activation::GeluTanh)
            }
            (_, Some(other)) => Err(format!("hidden activation `{other}` is not supported")),
        }
    }

    /// `(rope_theta, llama3 scaling, local_rope_theta)` from either layout.
    fn rope(&self, gemma: bool) -> Result<(f64, Option<Llama3Scaling>, f64), String> {
        let default_theta = if gemma { 1_000_000.0 } else { 10_000.0 };
        let (full, local) = match &self.rope_parameters {
            Some(RopeParametersField::PerLayerType {
                full_attention,
                sliding_attention,
            }) => (full_attention.clone(), Some(sliding_attention.clone())),
            Some(RopeParametersField::Shared(p)) => (p.clone(), None),
            None => (self.rope_scaling.clone().unwrap_or_default(), None),
        };
        let theta = full.rope_theta.or(self.rope_theta).unwrap_or(default_theta);
        let local_theta = local
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_local_base_freq)
            .unwrap_or(if gemma { 10_000.0 } else { theta });
        for (name, v) in [("rope_theta", theta), ("rope_local_base_freq", local_theta)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} {v} must be positive"));
            }
        }
        if let Some(t) = local.and_then(|p| p.rope_type) {
            if t != "default" {
                return Err(format!(
                    "sliding_attention rope type `{t}` is not supported"
                ));
            }
        }
        let scaling = match full.rope_type.as_deref() {
            None | Some("default") => None,
            Some("llama3") => Some(Llama3Scaling {
                factor: full.factor.ok_or("llama3 rope scaling without `factor`")?,
                low_freq_factor: full.low_freq_factor.unwrap_or(1.0),
                high_freq_factor: full.high_freq_factor.unwrap_or(4.0),
                original_max_position_embeddings: full
                    .original_max_position_embeddings
                    .unwrap_or(8192),
            }),
            Some(other) => return Err(format!("rope type `{other}` is not supported")),
        };
        Ok((theta, scaling, local_theta))
    }

    /// Per-block attention kinds and the sliding window (0 when unused).
    fn layer_types(&self, gemma: bool) -> Result<(Vec<AttentionKind>, usize), String> {
        let n = self.num_hidden_layers;
        if !gemma {
            if self.layer_types.is_some() || self.sliding_window.is_some() {
                return Err("sliding-window attention is supported for Gemma 3 only".into());
            }
            return Ok((vec![AttentionKind::Full; n], 0));
        }
        let kinds = match &self.layer_types {
            Some(names) => {
                if names.len() != n {
                    return Err(format!(
                        "layer_types has {} entries for {n} blocks",
                        names.len()
                    ));
                }
                names
                    .iter()
                    .map(|t| match t.as_str() {
                        "full_attention" => Ok(AttentionKind::Full),
                        "sliding_attention" => Ok(AttentionKind::Sliding),
                        other => Err(format!("layer_types: `{other}` is not known")),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let p = self
                    .sliding_window_pattern
                    .or(self.sliding_window_pattern_private)
                    .unwrap_or(GEMMA3_PATTERN);
                if p == 0 {
                    return Err("sliding_window_pattern must be positive".into());
                }
                (0..n)
                    .map(|l| match (l + 1).is_multiple_of(p) {
                        true => AttentionKind::Full,
                        false => AttentionKind::Sliding,
                    })
                    .collect()
            }
        };
        let window = self.sliding_window.unwrap_or(4096);
        if window == 0 && kinds.contains(&AttentionKind::Sliding) {
            return Err("sliding_window must be positive".into());
        }
        Ok((kinds, window))
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
