//! Pre-Norm weights -> a variant's weights.
//!
//! Every pretrained tensor keeps its name and its role: each norm gain still
//! scales the input of the sublayer (or LM head) it scaled before, because the
//! Post-Norm forms normalize the residual with the norm that already sits in
//! front of the next sublayer (see [`crate::model::block`]). So
//!
//! - `post` and `lnscale` copy every tensor unchanged; only config.json changes
//!   (the placement, and for lnscale the fixed 1/sqrt(l+1) factor it implies);
//! - `deepnorm` also multiplies `v_proj`, `o_proj`, `gate_proj`, `up_proj`
//!   and `down_proj` of every block by beta (DeepNet's initialization rule, with
//!   SwiGLU's three matrices standing in for the two FFN matrices); q, k, the
//!   embedding, the gains and the head are unchanged.
//!
//! None of the variants computes the function the checkpoint was trained to
//! compute: the residual is renormalized at every sublayer (post, deepnorm) or
//! each sublayer's input shrinks (lnscale). Fine-tuning is what adapts them.

use std::collections::HashMap;

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::model::{Config, Llama, Placement};
use crate::weights::convert::hf_tensor_names;

/// The weights DeepNorm multiplies by beta, per block.
pub const BETA_SCALED: [&str; 5] = [
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

/// The model's weights by Hugging Face name (dense models only; a tied head is
/// left out, as the checkpoint writes it).
pub fn model_tensors(model: &Llama) -> Result<HashMap<String, Tensor>> {
    let quantized = |name: &str| {
        Error::usage(format!(
            "{name} is quantized; variants and fine-tuning need a float checkpoint \
             (convert a GGUF first with `normscope convert`)"
        ))
    };
    let dense = |name: &str, lin: &crate::model::linear::Linear| {
        lin.dense_weight().cloned().ok_or_else(|| quantized(name))
    };
    let mut out = HashMap::new();
    for name in hf_tensor_names(&model.cfg) {
        let t = match name.split('.').collect::<Vec<_>>().as_slice() {
            ["model", "embed_tokens", _] => model
                .embed
                .dense()
                .cloned()
                .ok_or_else(|| quantized(&name))?,
            ["model", "norm", _] => model.norm.weight().clone(),
            ["lm_head", _] => dense(&name, &model.lm_head)?,
            ["model", "layers", l, part @ .., _] => {
                let b = &model.blocks[l.parse::<usize>().expect("names come from hf_tensor_names")];
                match part.join(".").as_str() {
                    "input_layernorm" => b.attn_norm.weight().clone(),
                    "post_attention_layernorm" => b.mlp_norm.weight().clone(),
                    "self_attn.q_proj" => dense(&name, &b.attn.q)?,
                    "self_attn.k_proj" => dense(&name, &b.attn.k)?,
                    "self_attn.v_proj" => dense(&name, &b.attn.v)?,
                    "self_attn.o_proj" => dense(&name, &b.attn.o)?,
                    "mlp.gate_proj" => dense(&name, &b.mlp.gate)?,
                    "mlp.up_proj" => dense(&name, &b.mlp.up)?,
                    "mlp.down_proj" => dense(&name, &b.mlp.down)?,
                    other => unreachable!("unexpected tensor part {other}"),
                }
            }
            _ => unreachable!("unexpected tensor name {name}"),
        };
        out.insert(name, t);
    }
    Ok(out)
}

/// Rewrites a Pre-Norm checkpoint's `tensors` and `cfg` as the `target` variant.
pub fn make_variant(
    tensors: &mut HashMap<String, Tensor>,
    cfg: &mut Config,
    target: Placement,
) -> Result<()> {
    if cfg.placement != Placement::Pre {
        return Err(Error::usage(format!(
            "the model is already a `{}` variant; variants are made from a Pre-Norm checkpoint",
            cfg.placement.name()
        )));
    }
    let beta = target.beta();
    if beta != 1.0 {
        for l in 0..cfg.num_layers {
            for part in BETA_SCALED {
                let name = format!("model.layers.{l}.{part}.weight");
                let t = tensors
                    .get(&name)
                    .ok_or_else(|| Error::usage(format!("tensor {name} is missing")))?;
                let scaled = (t * beta)?;
                tensors.insert(name, scaled);
            }
        }
    }
    cfg.placement = target;
    Ok(())
}
