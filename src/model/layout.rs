//! The model's tensors, declared once: every weight a checkpoint of a given
//! [`Config`] holds, with its Hugging Face name, its GGUF (llama.cpp) name,
//! its shape and its place in the model. Loading, conversion, quantization,
//! variants and size accounting all derive their lists from here, so adding a
//! tensor or an architecture touches this file and the struct that holds it.

use super::config::{Architecture, Config, QkNorm};

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
    /// RMSNorm of the queries, before RoPE: `(head_dim)` per head, or
    /// `(heads * head_dim)` over the whole projection (OLMo 2).
    QNorm,
    /// RMSNorm of the keys, before RoPE: `(head_dim)` or `(kv_heads * head_dim)`.
    KNorm,
    /// The norm on attention's output, before it joins the residual (Peri-LN, OLMo 2).
    AttnPostNorm,
    /// The norm in front of the MLP.
    MlpNorm,
    /// MLP gate `(ffn, hidden)`.
    Gate,
    /// MLP up projection `(ffn, hidden)`.
    Up,
    /// MLP down projection `(hidden, ffn)`.
    Down,
    /// The norm on the MLP's output, before it joins the residual (Peri-LN, OLMo 2).
    MlpPostNorm,
    /// Query bias `(heads * head_dim)` (Qwen2).
    QBias,
    /// Key bias `(kv_heads * head_dim)`.
    KBias,
    /// Value bias `(kv_heads * head_dim)`.
    VBias,
    /// Output-projection bias `(hidden)` (`attention_bias: true`).
    OBias,
}

/// What kind of weight a tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A matrix `(out, in)` applied as `x W^T`.
    Linear,
    /// A norm gain vector.
    Norm,
    /// A bias vector added after a linear map.
    Bias,
    /// The token embedding matrix.
    Embedding,
}

impl Part {
    /// Every part in checkpoint order; [`Part::present`] says which a model has.
    pub const ALL: [Part; 17] = [
        Part::AttnNorm,
        Part::Q,
        Part::QBias,
        Part::K,
        Part::KBias,
        Part::V,
        Part::VBias,
        Part::O,
        Part::OBias,
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
            Part::QNorm | Part::KNorm => cfg.qk_norm.is_some(),
            Part::AttnNorm | Part::MlpNorm => cfg.placement.has_pre_norms(),
            Part::AttnPostNorm | Part::MlpPostNorm => cfg.placement.has_post_norms(),
            Part::QBias | Part::KBias | Part::VBias => cfg.qkv_bias,
            Part::OBias => cfg.o_bias,
            _ => true,
        }
    }

    /// Linear map or norm.
    pub fn kind(self) -> Kind {
        match self {
            Part::Q | Part::K | Part::V | Part::O | Part::Gate | Part::Up | Part::Down => {
                Kind::Linear
            }
            Part::QBias | Part::KBias | Part::VBias | Part::OBias => Kind::Bias,
            _ => Kind::Norm,
        }
    }

    /// DeepNorm's initialization rule scales these by beta: the value and
    /// output projections and the MLP (SwiGLU's three matrices standing in
    /// for the two FFN matrices of arXiv 2203.00555), with their biases.
    pub fn deepnorm_scaled(self) -> bool {
        matches!(
            self,
            Part::V | Part::O | Part::Gate | Part::Up | Part::Down | Part::VBias | Part::OBias
        )
    }

    /// The shape of this part in a model of `cfg`.
    pub fn shape(self, cfg: &Config) -> Vec<usize> {
        let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
        let (q, kv) = (cfg.q_width(), cfg.kv_width());
        let whole = cfg.qk_norm == Some(QkNorm::Whole);
        match self {
            Part::Q => vec![q, h],
            Part::K | Part::V => vec![kv, h],
            Part::O => vec![h, q],
            Part::Gate | Part::Up => vec![f, h],
            Part::Down => vec![h, f],
            Part::QNorm if whole => vec![q],
            Part::KNorm if whole => vec![kv],
            Part::QNorm | Part::KNorm => vec![cfg.head_dim],
            Part::QBias => vec![q],
            Part::KBias | Part::VBias => vec![kv],
            Part::OBias => vec![h],
            Part::AttnNorm | Part::AttnPostNorm | Part::MlpNorm | Part::MlpPostNorm => vec![h],
        }
    }

    /// Where a fused checkpoint (Phi-3) keeps this part: rows
    /// `offset..offset + rows` of a tensor of `total` rows.
    fn fused_rows(self, cfg: &Config) -> Option<FusedRows> {
        if !cfg.fused_projections {
            return None;
        }
        let (q, kv, f) = (cfg.q_width(), cfg.kv_width(), cfg.intermediate_size);
        let (offset, total) = match self {
            Part::Q => (0, q + 2 * kv),
            Part::K => (q, q + 2 * kv),
            Part::V => (q + kv, q + 2 * kv),
            Part::Gate => (0, 2 * f),
            Part::Up => (f, 2 * f),
            _ => return None,
        };
        Some(FusedRows { offset, total })
    }

    /// The name after `model.layers.N.` in a Hugging Face checkpoint (with
    /// `.weight` or `.bias`).
    pub fn hf_name(self, cfg: &Config) -> &'static str {
        let fused = cfg.fused_projections;
        match (self, cfg.architecture) {
            (Part::AttnNorm, _) => "input_layernorm.weight",
            (Part::Q | Part::K | Part::V, _) if fused => "self_attn.qkv_proj.weight",
            (Part::Q, _) => "self_attn.q_proj.weight",
            (Part::K, _) => "self_attn.k_proj.weight",
            (Part::V, _) => "self_attn.v_proj.weight",
            (Part::O, _) => "self_attn.o_proj.weight",
            (Part::QBias, _) => "self_attn.q_proj.bias",
            (Part::KBias, _) => "self_attn.k_proj.bias",
            (Part::VBias, _) => "self_attn.v_proj.bias",
            (Part::OBias, _) => "self_attn.o_proj.bias",
            (Part::QNorm, _) => "self_attn.q_norm.weight",
            (Part::KNorm, _) => "self_attn.k_norm.weight",
            // Gemma's and OLMo 2's post-attention norm has LLaMA's pre-MLP norm's name.
            (Part::AttnPostNorm, _) => "post_attention_layernorm.weight",
            (Part::MlpNorm, Architecture::Gemma3) => "pre_feedforward_layernorm.weight",
            (Part::MlpNorm, _) => "post_attention_layernorm.weight",
            (Part::Gate | Part::Up, _) if fused => "mlp.gate_up_proj.weight",
            (Part::Gate, _) => "mlp.gate_proj.weight",
            (Part::Up, _) => "mlp.up_proj.weight",
            (Part::Down, _) => "mlp.down_proj.weight",
            (Part::MlpPostNorm, _) => "post_feedforward_layernorm.weight",
        }
    }

    /// The name after `blk.N.` in a GGUF (with `.weight` or `.bias`), as
    /// llama.cpp writes it (Phi-3's fused gate/up is its `ffn_up`).
    pub fn gguf_name(self, cfg: &Config) -> &'static str {
        let fused = cfg.fused_projections;
        match self {
            Part::AttnNorm => "attn_norm.weight",
            Part::Q | Part::K | Part::V if fused => "attn_qkv.weight",
            Part::Q => "attn_q.weight",
            Part::K => "attn_k.weight",
            Part::V => "attn_v.weight",
            Part::O => "attn_output.weight",
            Part::QBias => "attn_q.bias",
            Part::KBias => "attn_k.bias",
            Part::VBias => "attn_v.bias",
            Part::OBias => "attn_output.bias",
            Part::QNorm => "attn_q_norm.weight",
            Part::KNorm => "attn_k_norm.weight",
            Part::AttnPostNorm => "post_attention_norm.weight",
            Part::MlpNorm => "ffn_norm.weight",
            Part::Gate if fused => "ffn_up.weight",
            Part::Gate => "ffn_gate.weight",
            Part::Up => "ffn_up.weight",
            Part::Down => "ffn_down.weight",
            Part::MlpPostNorm => "post_ffw_norm.weight",
        }
    }
}

/// Rows of a fused stored tensor that hold one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FusedRows {
    /// The first row.
    pub offset: usize,
    /// Rows of the stored tensor.
    pub total: usize,
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
    /// When the checkpoint stores it as rows of a larger tensor (the names
    /// above are then that tensor's): which rows.
    pub fused: Option<FusedRows>,
    /// What a Hugging Face file stores is the gain minus this (Gemma's norms
    /// compute `1 + w` and store `w`; GGUF files store the gain itself).
    pub hf_gain_offset: f64,
}

impl TensorSpec {
    /// The shape of the tensor the checkpoint stores under this spec's names
    /// (the whole fused tensor for a fused part).
    pub fn stored_shape(&self) -> Vec<usize> {
        match self.fused {
            Some(f) => vec![f.total, self.shape[1]],
            None => self.shape.clone(),
        }
    }
}

/// The tensor at `site` of a model of `cfg`.
pub fn spec(cfg: &Config, site: Site) -> TensorSpec {
    let (h, v) = (cfg.hidden_size, cfg.vocab_size);
    let gain_offset = match cfg.architecture {
        Architecture::Gemma3 => 1.0,
        _ => 0.0,
    };
    let (kind, hf, gguf, shape, offset) = match site {
        Site::Embedding => (
            Kind::Embedding,
            "model.embed_tokens.weight".to_string(),
            "token_embd.weight".to_string(),
            vec![v, h],
            0.0,
        ),
        Site::FinalNorm => (
            Kind::Norm,
            "model.norm.weight".into(),
            "output_norm.weight".into(),
            vec![h],
            gain_offset,
        ),
        Site::Head => (
            Kind::Linear,
            "lm_head.weight".into(),
            "output.weight".into(),
            vec![v, h],
            0.0,
        ),
        Site::Block(l, p) => (
            p.kind(),
            format!("model.layers.{l}.{}", p.hf_name(cfg)),
            format!("blk.{l}.{}", p.gguf_name(cfg)),
            p.shape(cfg),
            if p.kind() == Kind::Norm {
                gain_offset
            } else {
                0.0
            },
        ),
    };
    let fused = match site {
        Site::Block(_, p) => p.fused_rows(cfg),
        _ => None,
    };
    TensorSpec {
        site,
        kind,
        hf_name: hf,
        gguf_name: gguf,
        shape,
        fused,
        hf_gain_offset: offset,
    }
}

/// Every tensor a checkpoint of `cfg` holds, in checkpoint order: the
/// embedding, each block's parts, the final norm, and the LM head unless it is
/// tied to the embedding. A fused tensor (Phi-3) appears once per part.
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

/// One tensor as a checkpoint stores it: a part, or (Phi-3) several parts'
/// rows stacked in `parts` order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// The parts it holds, in row order (one unless fused).
    pub parts: Vec<TensorSpec>,
}

impl StoredTensor {
    /// The part that is (or starts) this tensor; its names are the tensor's.
    pub fn first(&self) -> &TensorSpec {
        &self.parts[0]
    }

    /// The stored shape: the parts' rows stacked.
    pub fn shape(&self) -> Vec<usize> {
        self.first().stored_shape()
    }
}

/// Every tensor a checkpoint of `cfg` stores, in checkpoint order: what
/// [`tensors`] lists, with the parts of a fused tensor grouped.
pub fn stored_tensors(cfg: &Config) -> Vec<StoredTensor> {
    let mut out: Vec<StoredTensor> = Vec::new();
    for spec in tensors(cfg) {
        match out.last_mut() {
            Some(last) if spec.fused.is_some() && last.first().hf_name == spec.hf_name => {
                last.parts.push(spec)
            }
            _ => out.push(StoredTensor { parts: vec![spec] }),
        }
    }
    out
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
