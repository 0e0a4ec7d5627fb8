//! [`HfConfig`] -> [`Config`]: transformers' defaults for the architecture,
//! consistency checks that name the offending field, and the size limits.

use super::hf::{HfConfig, RopeParametersField, TokenIds};
use super::{
    arch, limits, Activation, Architecture, AttentionKind, Config, Llama3Scaling, QkNorm,
    RopeScaling,
};
use crate::model::placement::{Placement, PlacementFields};

/// Gemma 3's default: every sixth block attends fully.
const GEMMA3_PATTERN: usize = 6;

impl HfConfig {
    /// The architecture `model_type` (or, without one, `architectures`) names.
    fn architecture(&self) -> Result<Architecture, String> {
        let named = || {
            let classes = self.architectures.iter().flatten();
            classes
                .filter_map(|c| arch::ALL.into_iter().find(|a| a.class_name() == c))
                .next()
        };
        match self.model_type.as_deref() {
            None => Ok(named().unwrap_or(Architecture::Llama)),
            Some("gemma3") => Err("model_type `gemma3` is Gemma 3's multimodal wrapper; \
                 use the text model's config.json (model_type `gemma3_text`)"
                .into()),
            Some(t) => Architecture::from_model_type(t).ok_or_else(|| {
                format!(
                    "model_type `{t}` is not supported (supported: {})",
                    arch::ALL.map(|a| a.model_type()).join(", ")
                )
            }),
        }
    }

    /// Resolves optional fields and checks consistency and size limits; the
    /// error is a plain message naming the field.
    pub fn resolve(&self) -> Result<Config, String> {
        let arch = self.architecture()?;
        let gemma = arch == Architecture::Gemma3;
        if self.mlp_bias {
            return Err("mlp_bias: MLP projections with bias are not supported".into());
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
        let rms_norm_eps = self
            .rms_norm_eps
            .unwrap_or_else(|| arch.default_rms_norm_eps());
        if !(rms_norm_eps.is_finite() && rms_norm_eps > 0.0) {
            return Err(format!("rms_norm_eps {rms_norm_eps} must be positive"));
        }
        let activation = self.activation(arch)?;
        let (rope_theta, rope_scaling, local_rope_theta) = self.rope(arch)?;
        let rope_layers = self.rope_layers(arch)?;
        let (layer_types, sliding_window) = self.layer_types(arch, &rope_layers)?;
        let query_pre_attn_scalar = self.query_pre_attn_scalar.unwrap_or(head_dim as f64);
        if !(query_pre_attn_scalar.is_finite() && query_pre_attn_scalar > 0.0) {
            return Err(format!(
                "query_pre_attn_scalar {query_pre_attn_scalar} must be positive"
            ));
        }
        let native = match arch {
            Architecture::Gemma3 => Some(Placement::Peri),
            Architecture::Olmo2 => Some(Placement::Reordered),
            _ => None,
        };
        let placement = match native {
            None => self.normscope.resolve(self.num_hidden_layers)?,
            Some(p) if self.normscope == PlacementFields::default() => p,
            Some(p) => {
                return Err(format!(
                    "normscope_norm_placement: {} keeps its own ({}) placement; \
                     variants are made from Pre-Norm checkpoints",
                    arch.model_type(),
                    p.name()
                ))
            }
        };
        let qk_norm = match arch {
            Architecture::Gemma3 | Architecture::Qwen3 => Some(QkNorm::PerHead),
            Architecture::Olmo2 => Some(QkNorm::Whole),
            _ => None,
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
            tie_word_embeddings: self
                .tie_word_embeddings
                .unwrap_or_else(|| arch.default_tied()),
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
            qk_norm,
            qkv_bias: arch == Architecture::Qwen2 || self.attention_bias,
            o_bias: arch != Architecture::Qwen2 && self.attention_bias,
            fused_projections: arch == Architecture::Phi3,
            rope_layers,
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
            (Architecture::Gemma3, None | Some("gelu_pytorch_tanh" | "gelu_tanh")) => {
                Ok(Activation::GeluTanh)
            }
            (Architecture::Gemma3, _) => Err(format!(
                "hidden activation `{}` is not supported for Gemma 3",
                name.map(String::as_str).unwrap_or_default()
            )),
            (_, None | Some("silu")) => Ok(Activation::Silu),
            (_, Some(other)) => Err(format!("hidden activation `{other}` is not supported")),
        }
    }

    /// `(rope_theta, scaling, local_rope_theta)` from either layout.
    fn rope(&self, arch: Architecture) -> Result<(f64, Option<RopeScaling>, f64), String> {
        let gemma = arch == Architecture::Gemma3;
        let (full, local) = match &self.rope_parameters {
            Some(RopeParametersField::PerLayerType {
                full_attention,
                sliding_attention,
            }) => (full_attention.clone(), Some(sliding_attention.clone())),
            Some(RopeParametersField::Shared(p)) => (p.clone(), None),
            None => (self.rope_scaling.clone().unwrap_or_default(), None),
        };
        let theta = full
            .rope_theta
            .or(self.rope_theta)
            .unwrap_or_else(|| arch.default_rope_theta());
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
        let partial = full.partial_rotary_factor.or(self.partial_rotary_factor);
        if partial.is_some_and(|f| f != 1.0) {
            return Err(format!(
                "partial_rotary_factor {}: RoPE on part of each head is not supported",
                partial.unwrap_or(1.0)
            ));
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
            Some("llama3") => Some(RopeScaling::Llama3(Llama3Scaling {
                factor: full.factor.ok_or("llama3 rope scaling without `factor`")?,
                low_freq_factor: full.low_freq_factor.unwrap_or(1.0),
                high_freq_factor: full.high_freq_factor.unwrap_or(4.0),
                original_max_position_embeddings: full
                    .original_max_position_embeddings
                    .unwrap_or(8192),
            })),
            Some(t @ ("longrope" | "su")) => {
                return Err(format!(
                    "rope type `{t}` (LongRoPE, Phi-3's 128k-context variants) is not supported; \
                     the 4k-context checkpoints have none"
                ))
            }
            Some(other) => return Err(format!("rope type `{other}` is not supported")),
        };
        if let Some(RopeScaling::Llama3(s)) = &scaling {
            if !(s.factor >= 1.0
                && s.high_freq_factor > s.low_freq_factor
                && s.low_freq_factor > 0.0)
            {
                return Err(format!(
                    "llama3 rope scaling needs factor >= 1 and high_freq_factor > low_freq_factor > 0 \
                     (got {}, {}, {})",
                    s.factor, s.high_freq_factor, s.low_freq_factor
                ));
            }
        }
        Ok((theta, scaling, local_theta))
    }

    /// Per block, whether attention applies RoPE (SmolLM3's `no_rope_layers`,
    /// or one block in `no_rope_layer_interval` without; every block elsewhere).
    fn rope_layers(&self, arch: Architecture) -> Result<Vec<bool>, String> {
        let n = self.num_hidden_layers;
        if arch != Architecture::SmolLm3 {
            return Ok(vec![true; n]);
        }
        match (
            &self.no_rope_layers,
            self.no_rope_layer_interval.unwrap_or(4),
        ) {
            (Some(flags), _) if flags.len() != n => Err(format!(
                "no_rope_layers has {} entries for {n} blocks",
                flags.len()
            )),
            (Some(flags), _) => Ok(flags.iter().map(|&f| f != 0).collect()),
            (None, 0) => Err("no_rope_layer_interval must be positive".into()),
            (None, k) => Ok((0..n).map(|l| !(l + 1).is_multiple_of(k)).collect()),
        }
    }

    /// Per-block attention kinds and the sliding window (0 when unused), by
    /// transformers' rules: `layer_types` when given; otherwise Gemma 3's
    /// pattern, every block for Mistral and Phi-3 when a window is set,
    /// blocks from `max_window_layers` on for Qwen2/3 with `use_sliding_window`,
    /// and SmolLM3's no-RoPE blocks with `use_sliding_window`.
    fn layer_types(
        &self,
        arch: Architecture,
        rope_layers: &[bool],
    ) -> Result<(Vec<AttentionKind>, usize), String> {
        use AttentionKind::{Full, Sliding};
        let n = self.num_hidden_layers;
        let enabled = self.use_sliding_window.unwrap_or(false);
        let window = self.sliding_window;
        let kinds: Vec<AttentionKind> = match (&self.layer_types, arch) {
            (Some(names), _) => {
                if names.len() != n {
                    return Err(format!(
                        "layer_types has {} entries for {n} blocks",
                        names.len()
                    ));
                }
                names
                    .iter()
                    .map(|t| match t.as_str() {
                        "full_attention" => Ok(Full),
                        "sliding_attention" => Ok(Sliding),
                        other => Err(format!("layer_types: `{other}` is not known")),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            (None, Architecture::Gemma3) => {
                let p = self
                    .sliding_window_pattern
                    .or(self.sliding_window_pattern_private)
                    .unwrap_or(GEMMA3_PATTERN);
                if p == 0 {
                    return Err("sliding_window_pattern must be positive".into());
                }
                (0..n)
                    .map(|l| {
                        if (l + 1).is_multiple_of(p) {
                            Full
                        } else {
                            Sliding
                        }
                    })
                    .collect()
            }
            (None, Architecture::Mistral | Architecture::Phi3) if window.is_some() => {
                vec![Sliding; n]
            }
            (None, Architecture::Qwen2 | Architecture::Qwen3) if enabled && window.is_some() => {
                let first = self.max_window_layers.unwrap_or(28);
                (0..n)
                    .map(|l| if l >= first { Sliding } else { Full })
                    .collect()
            }
            (None, Architecture::SmolLm3) if enabled && window.is_some() => rope_layers
                .iter()
                .map(|&rope| if rope { Full } else { Sliding })
                .collect(),
            (None, Architecture::Llama | Architecture::Olmo2) if window.is_some() => {
                return Err(format!(
                    "sliding_window is set but {} has no sliding-window attention",
                    arch.model_type()
                ))
            }
            (None, _) => vec![Full; n],
        };
        if !kinds.contains(&Sliding) {
            return Ok((kinds, 0));
        }
        let window = window.unwrap_or(if arch == Architecture::Gemma3 {
            4096
        } else {
            0
        });
        if window == 0 {
            return Err("sliding_window must be positive".into());
        }
        Ok((kinds, window))
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
