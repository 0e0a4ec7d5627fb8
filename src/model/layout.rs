//! The model's tensors, declared once: every weight a checkpoint of a given
//! [`Config`] holds, with its Hugging Face name, its GGUF (llama.cpp) name,
//! its shape and its place in the model. Loading, conversion, quantization,
//! variants and size accounting all derive their lists from here, so adding a
//! tensor or an architecture touches this file and the struct that holds it.

use super::config::{Architecture, Config};

/// Where a weight sits in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    /// The token embedding `(vocab, hidden)`.
    Embedding,
    /// Part `1` of block `0`.
    Block(usize, Part),
    /// The norm after the last block.
    FinalNorm,
    /// The LM head `(vocab, hidden)` (absent from a tied checkpoint).
    Head,
}

/// A weight inside a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The norm in front of attention.
    AttnNorm,
    /// Query projection `(heads * head_dim, hidden)`.
    Q,
    /// Key projection `(kv_heads * head_dim, hidden)`.
    K,
    /// Value projection `(kv_heads * head_dim, hidden)`.
    V,
    /// Output projection `(hidden, heads * head_dim)`.
    O,
    /// Per-head RMSNorm of the queries, before RoPE `(head_dim)`.
    QNorm,
    /// Per-head RMSNorm of the keys, before RoPE `(head_dim)`.
    KNorm,
    /// The norm on attention's output, before it joins the residual (Peri-LN).
    AttnPostNorm,
    /// The norm in front of the MLP.
    MlpNorm,
    /// MLP gate `(ffn, hidden)`.
    Gate,
    /// MLP up projection `(ffn, hidden)`.
    Up,
    /// MLP down projection `(hidden, ffn)`.
    Down,
    /// The norm on the MLP's output, before it joins the residual (Peri-LN).
    MlpPostNorm,
}

/// What kind of weight a tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A matrix `(out, in)` applied as `x W^T`.
    Linear,
    /// A norm gain vector.
    Norm,
    /// The token embedding matrix.
    Embedding,
}

impl Part {
    /// Every part in checkpoint order; [`Part::present`] says which a model has.
    pub const ALL: [Part; 13] = [
        Part::AttnNorm,
        Part::Q,
        Part::K,
        Part::V,
        Part::O,
        Part::QNorm,
        Part::KNorm,
        Part::AttnPostNorm,
        Part::MlpNorm,
        Part::Gate,
        Part::Up,
        Part::Down,
        Part::MlpPostNorm,
    ];

    /// The seven linear maps of a block, in the order they run.
    pub const LINEARS: [Part; 7] = [
        Part::Q,
        Part::K,
        Part::V,
        Part::O,
        Part::Gate,
        Part::Up,
        Part::Down,
    ];

    /// Whether a block of `cfg` holds this part.
    pub fn present(self, cfg: &Config) -> bool {
        match self {
            Part::QNorm | Part::KNorm => cfg.qk_norm,
            Part::AttnPostNorm | Part::MlpPostNorm => cfg.placement.has_post_norms(),
            _ => true,
        }
    }

    /// Linear map or norm.
    pub fn kind(self) -> Kind {
        match self {
            Part::Q | Part::K | Part::V | Part::O | Part::Gate | Part::Up | Part::Down => {
                Kind::Linear
            }
            _ => Kind::Norm,
        }
    }

    /// DeepNorm's initialization rule scales these by beta: the value and
    /// output projections and the MLP (SwiGLU's three matrices standing in
    /// for the two FFN matrices of arXiv 2203.00555).
    pub fn deepnorm_scaled(self) -> bool {
        matches!(self, Part::V | Part::O | Part::Gate | Part::Up | Part::Down)
    }

    /// The shape of this part in a model of `cfg`.
    pub fn shape(self, cfg: &Config) -> Vec<usize> {
        let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
        let (q, kv) = (
            cfg.num_heads * cfg.head_dim,
            cfg.num_kv_heads * cfg.head_dim,
        );
        match self {
            Part::Q => vec![q, h],
            Part::K | Part::V => vec![kv, h],
            Part::O => vec![h, q],
            Part::Gate | Part::Up => vec![f, h],
            Part::Down => vec![h, f],
            Part::QNorm | Part::KNorm => vec![cfg.head_dim],
            Part::AttnNorm | Part::AttnPostNorm | Part::MlpNorm | Part::MlpPostNorm => vec![h],
        }
    }

    /// The name after `model.layers.N.` in a Hugging Face checkpoint (without `.weight`).
    pub fn hf_name(self, arch: Architecture) -> &'static str {
        match (self, arch) {
            (Part::AttnNorm, _) => "input_layernorm",
            (Part::Q, _) => "self_attn.q_proj",
            (Part::K, _) => "self_attn.k_proj",
            (Part::V, _) => "self_attn.v_proj",
            (Part::O, _) => "self_attn.o_proj",
            (Part::QNorm, _) => "self_attn.q_norm",
            (Part::KNorm, _) => "self_attn.k_norm",
            // Gemma's post-attention norm is Model's pre-MLP norm's name.
            (Part::AttnPostNorm, _) => "post_attention_layernorm",
            (Part::MlpNorm, Architecture::Llama) => "post_attention_layernorm",
            (Part::MlpNorm, Architecture::Gemma3) => "pre_feedforward_layernorm",
            (Part::Gate, _) => "mlp.gate_proj",
            (Part::Up, _) => "mlp.up_proj",
            (Part::Down, _) => "mlp.down_proj",
            (Part::MlpPostNorm, _) => "post_feedforward_layernorm",
        }
    }

    /// The name after `blk.N.` in a GGUF (without `.weight`), as llama.cpp writes it.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Part::AttnNorm => "attn_norm",
            Part::Q => "attn_q",
            Part::K => "attn_k",
            Part::V => "attn_v",
            Part::O => "attn_output",
            Part::QNorm => "attn_q_norm",
            Part::KNorm => "attn_k_norm",
            Part::AttnPostNorm => "post_attention_norm",
            Part::MlpNorm => "ffn_norm",
            Part::Gate => "ffn_gate",
            Part::Up => "ffn_up",
            Part::Down => "ffn_down",
            Part::MlpPostNorm => "post_ffw_norm",
        }
    }
}

/// One tensor of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Its place in the model.
    pub site: Site,
    /// Linear map, norm or embedding.
    pub kind: Kind,
    /// Its Hugging Face name (`model.layers.3.self_attn.q_proj.weight`).
    pub hf_name: String,
    /// Its GGUF name (`blk.3.attn_q.weight`).
    pub gguf_name: String,
    /// Its shape, `(out, in)` for linear maps.
    pub shape: Vec<usize>,
    /// What a Hugging Face file stores is the gain minus this (Gemma's norms
    /// compute `1 + w` and store `w`; GGUF files store the gain itself).
    pub hf_gain_offset: f64,
}

/// The tensor at `site` of a model of `cfg`.
pub fn spec(cfg: &Config, site: Site) -> TensorSpec {
    let (h, v) = (cfg.hidden_size, cfg.vocab_size);
    let gain_offset = match cfg.architecture {
        Architecture::Llama => 0.0,
        Architecture::Gemma3 => 1.0,
    };
    let (kind, hf, gguf, shape, offset) = match site {
        Site::Embedding => (
            Kind::Embedding,
            "model.embed_tokens".to_string(),
            "token_embd".to_string(),
            vec![v, h],
            0.0,
        ),
        Site::FinalNorm => (
            Kind::Norm,
            "model.norm".into(),
            "output_norm".into(),
            vec![h],
            gain_offset,
        ),
        Site::Head => (
            Kind::Linear,
            "lm_head".into(),
            "output".into(),
            vec![v, h],
            0.0,
        ),
        Site::Block(l, p) => (
            p.kind(),
            format!("model.layers.{l}.{}", p.hf_name(cfg.architecture)),
            format!("blk.{l}.{}", p.gguf_name()),
            p.shape(cfg),
            if p.kind() == Kind::Norm {
                gain_offset
            } else {
                0.0
            },
        ),
    };
    TensorSpec {
        site,
        kind,
        hf_name: format!("{hf}.weight"),
        gguf_name: format!("{gguf}.weight"),
        shape,
        hf_gain_offset: offset,
    }
}

/// Every tensor a checkpoint of `cfg` holds, in checkpoint order: the
/// embedding, each block's parts, the final norm, and the LM head unless it is
/// tied to the embedding.
pub fn tensors(cfg: &Config) -> Vec<TensorSpec> {
    let mut sites = vec![Site::Embedding];
    for l in 0..cfg.num_layers {
        sites.extend(
            Part::ALL
                .into_iter()
                .filter(|p| p.present(cfg))
                .map(|p| Site::Block(l, p)),
        );
    }
    sites.push(Site::FinalNorm);
    if !cfg.tie_word_embeddings {
        sites.push(Site::Head);
    }
    sites.into_iter().map(|s| spec(cfg, s)).collect()
}

/// The block a Hugging Face tensor name belongs to (`model.layers.N.`), if any.
pub fn hf_layer(name: &str) -> Option<usize> {
    name.strip_prefix("model.layers.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
