//! The architecture families normscope runs, and what each one's files say
//! about it: transformers' `model_type` and class, llama.cpp's
//! `general.architecture`, and the defaults transformers' config classes use
//! when `config.json` leaves a field out.

/// The architecture family: which names a checkpoint uses, which conventions
/// its file formats follow, and which defaults its `config.json` assumes.
/// Everything that changes the computation is a field of
/// [`super::Config`]; the family only chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// LLaMA 1-3 (and SmolLM 1/2): Pre-Norm, SwiGLU, RoPE.
    Llama,
    /// Mistral: LLaMA with an optional sliding window (a GGUF says `llama`).
    Mistral,
    /// Qwen2 / Qwen2.5: LLaMA with biases on q, k and v.
    Qwen2,
    /// Qwen3: LLaMA with per-head q/k RMSNorm and a free head_dim.
    Qwen3,
    /// Phi-3: LLaMA with fused `qkv_proj` and `gate_up_proj`.
    Phi3,
    /// OLMo 2: norms after each sublayer instead of before, q/k RMSNorm over
    /// the whole projection.
    Olmo2,
    /// SmolLM3: LLaMA without RoPE in every fourth block.
    SmolLm3,
    /// Gemma 3 (text): Peri-LN norms, QK-norm, GELU-tanh gating, sliding windows.
    Gemma3,
}

/// Every architecture, in documentation order.
pub const ALL: [Architecture; 8] = [
    Architecture::Llama,
    Architecture::Mistral,
    Architecture::Qwen2,
    Architecture::Qwen3,
    Architecture::Phi3,
    Architecture::Olmo2,
    Architecture::SmolLm3,
    Architecture::Gemma3,
];

impl Architecture {
    /// transformers' `model_type` (Gemma 3: the text model's).
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Phi3 => "phi3",
            Architecture::Olmo2 => "olmo2",
            Architecture::SmolLm3 => "smollm3",
            Architecture::Gemma3 => "gemma3_text",
        }
    }

    /// transformers' causal-LM class, as `config.json`'s `architectures` names it.
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Qwen3 => "Qwen3ForCausalLM",
            Architecture::Phi3 => "Phi3ForCausalLM",
            Architecture::Olmo2 => "Olmo2ForCausalLM",
            Architecture::SmolLm3 => "SmolLM3ForCausalLM",
            Architecture::Gemma3 => "Gemma3ForCausalLM",
        }
    }

    /// `general.architecture` in a GGUF (llama.cpp writes Mistral as `llama`).
    pub fn gguf_name(self) -> &'static str {
        match self {
            Architecture::Llama | Architecture::Mistral => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Phi3 => "phi3",
            Architecture::Olmo2 => "olmo2",
            Architecture::SmolLm3 => "smollm3",
            Architecture::Gemma3 => "gemma3",
        }
    }

    /// The family a `model_type` names (`smollm`/`smollm2` checkpoints are LLaMA).
    pub fn from_model_type(name: &str) -> Option<Architecture> {
        Some(match name {
            "llama" | "smollm" | "smollm2" => Architecture::Llama,
            "gemma3_text" => Architecture::Gemma3,
            other => *ALL.iter().find(|a| a.model_type() == other)?,
        })
    }

    /// The family a GGUF's `general.architecture` names (`llama` covers Mistral).
    pub fn from_gguf_name(name: &str) -> Option<Architecture> {
        ALL.into_iter().find(|a| a.gguf_name() == name)
    }

    /// The `general.architecture` names normscope runs.
    pub fn gguf_names() -> Vec<&'static str> {
        let mut names: Vec<&str> = ALL.iter().map(|a| a.gguf_name()).collect();
        names.dedup();
        names
    }

    /// True when llama.cpp's converter permutes this family's `attn_q` /
    /// `attn_k` rows for interleaved RoPE (its `LlamaModel` and subclasses);
    /// the others keep Hugging Face's half-split order in the GGUF.
    pub fn gguf_permutes_qk(self) -> bool {
        matches!(
            self,
            Architecture::Llama | Architecture::Mistral | Architecture::SmolLm3
        )
    }

    /// transformers' default `rms_norm_eps` for the family's config class.
    pub fn default_rms_norm_eps(self) -> f64 {
        match self {
            Architecture::Phi3 | Architecture::Olmo2 => 1e-5,
            _ => 1e-6,
        }
    }

    /// transformers' default RoPE base for the family's config class.
    pub fn default_rope_theta(self) -> f64 {
        match self {
            Architecture::SmolLm3 => 2_000_000.0,
            Architecture::Gemma3 => 1_000_000.0,
            _ => 10_000.0,
        }
    }

    /// transformers' default `tie_word_embeddings` for the family's config class.
    pub fn default_tied(self) -> bool {
        matches!(self, Architecture::Gemma3 | Architecture::SmolLm3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in ALL {
            assert_eq!(Architecture::from_model_type(a.model_type()), Some(a));
        }
        assert_eq!(
            Architecture::from_gguf_name("llama"),
            Some(Architecture::Llama)
        );
        assert_eq!(
            Architecture::gguf_names(),
            ["llama", "qwen2", "qwen3", "phi3", "olmo2", "smollm3", "gemma3"]
        );
    }
}
