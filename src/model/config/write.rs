//! A [`Config`] written back as `config.json` (transformers 4 layout, which
//! transformers 5 also reads).

use super::hf::{HfConfig, RopeParameters, TokenIds};
use super::{Activation, Architecture, AttentionKind, Config, Llama3Scaling, RopeScaling};
use crate::model::placement::PlacementFields;

impl Config {
    /// The `config.json` that describes this configuration, with weights
    /// stored as `dtype` (`float32`, ...).
    pub fn to_hf(&self, dtype: &str) -> HfConfig {
        let gemma = self.architecture == Architecture::Gemma3;
        let activation = match self.activation {
            Activation::Silu => "silu",
            Activation::GeluTanh => "gelu_pytorch_tanh",
        };
        let arch = self.architecture;
        let windowed = self.has_sliding_layers();
        // Qwen2/3 and SmolLM3 only honour the window with this flag on.
        let flagged = matches!(
            arch,
            Architecture::Qwen2 | Architecture::Qwen3 | Architecture::SmolLm3
        );
        HfConfig {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_layers,
            num_attention_heads: self.num_heads,
            num_key_value_heads: Some(self.num_kv_heads),
            head_dim: Some(self.head_dim),
            vocab_size: self.vocab_size,
            rms_norm_eps: Some(self.rms_norm_eps),
            rope_theta: Some(self.rope_theta),
            rope_local_base_freq: gemma.then_some(self.local_rope_theta),
            rope_scaling: self.llama3_scaling().map(|s| RopeParameters {
                rope_type: Some("llama3".into()),
                rope_theta: None,
                factor: Some(s.factor),
                low_freq_factor: Some(s.low_freq_factor),
                high_freq_factor: Some(s.high_freq_factor),
                original_max_position_embeddings: Some(s.original_max_position_embeddings),
                partial_rotary_factor: None,
            }),
            rope_parameters: None,
            max_position_embeddings: Some(self.max_position_embeddings),
            tie_word_embeddings: Some(self.tie_word_embeddings),
            bos_token_id: self.bos_token_id.map(TokenIds::One),
            eos_token_id: match self.eos_token_ids.as_slice() {
                [] => None,
                [one] => Some(TokenIds::One(*one)),
                many => Some(TokenIds::Many(many.to_vec())),
            },
            hidden_act: (!gemma).then(|| activation.to_string()),
            hidden_activation: gemma.then(|| activation.to_string()),
            attention_bias: self.o_bias,
            mlp_bias: false,
            query_pre_attn_scalar: gemma.then_some(self.query_pre_attn_scalar),
            sliding_window: (gemma || windowed).then_some(self.sliding_window),
            use_sliding_window: (flagged && windowed).then_some(true),
            max_window_layers: None,
            no_rope_layers: (arch == Architecture::SmolLm3)
                .then(|| self.rope_layers.iter().map(|&r| u8::from(r)).collect()),
            no_rope_layer_interval: None,
            partial_rotary_factor: None,
            sliding_window_pattern: gemma.then(|| self.sliding_window_pattern()).flatten(),
            sliding_window_pattern_private: None,
            layer_types: (gemma || (windowed && flagged)).then(|| {
                self.layer_types
                    .iter()
                    .map(|k| match k {
                        AttentionKind::Full => "full_attention".to_string(),
                        AttentionKind::Sliding => "sliding_attention".to_string(),
                    })
                    .collect()
            }),
            attn_logit_softcapping: None,
            final_logit_softcapping: None,
            torch_dtype: Some(dtype.into()),
            dtype: None,
            model_type: Some(arch.model_type().into()),
            architectures: Some(vec![arch.class_name().into()]),
            normscope: if self.placement.is_native() {
                PlacementFields::default()
            } else {
                PlacementFields::of(self.placement)
            },
        }
    }

    /// The llama3 parameters of the RoPE scaling: as configured, or fitted to
    /// a GGUF's per-frequency factors (see [`super::rope_fit`]).
    pub fn llama3_scaling(&self) -> Option<Llama3Scaling> {
        match self.rope_scaling.as_ref()? {
            RopeScaling::Llama3(s) => Some(s.clone()),
            RopeScaling::Factors(f) => super::rope_fit::llama3_from_factors(
                f,
                self.head_dim,
                self.rope_theta,
                self.max_position_embeddings,
            ),
        }
    }

    /// `p` when block `l` attends fully exactly when `(l + 1) % p == 0`
    /// (how transformers before 4.53 described Gemma 3's blocks).
    fn sliding_window_pattern(&self) -> Option<usize> {
        let p = self
            .layer_types
            .iter()
            .position(|k| *k == AttentionKind::Full)?
            + 1;
        let follows = self
            .layer_types
            .iter()
            .enumerate()
            .all(|(l, k)| (*k == AttentionKind::Full) == (l + 1).is_multiple_of(p));
        follows.then_some(p)
    }
}
