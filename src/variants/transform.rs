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
use crate::model::layout::{self, Site};
use crate::model::source::to_hf_stored;
use crate::model::{Config, Model, Placement, Weight};

/// The model's weights by Hugging Face name, as a checkpoint stores them
/// (dense models only; a tied head is left out, as the checkpoint writes it).
pub fn model_tensors(model: &Model) -> Result<HashMap<String, Tensor>> {
    let quantized = |name: &str| {
        Error::usage(format!(
            "{name} is quantized; variants and fine-tuning need a float checkpoint \
             (convert a GGUF first with `normscope convert`)"
        ))
    };
    if model.cfg.fused_projections {
        return Err(Error::usage(format!(
            "{} checkpoints store q/k/v and gate/up fused; variants and fine-tuning \
             do not write fused tensors yet",
            model.cfg.architecture.model_type()
        )));
    }
    let mut out = HashMap::new();
    for spec in layout::tensors(&model.cfg) {
        let name = &spec.hf_name;
        let value = match model.weight(spec.site) {
            Some(Weight::Embedding(e)) => e.dense().cloned().ok_or_else(|| quantized(name))?,
            Some(Weight::Linear(l)) => l.dense_weight().cloned().ok_or_else(|| quantized(name))?,
            Some(Weight::Norm(n)) => n.weight().clone(),
            Some(Weight::Bias(b)) => b.clone(),
            None => return Err(Error::internal(format!("the model has no tensor {name}"))),
        };
        out.insert(name.clone(), to_hf_stored(&spec, &value)?);
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
            "the model's norm placement is `{}` ({}); variants are made from a Pre-Norm checkpoint",
            cfg.placement.name(),
            cfg.architecture.model_type()
        )));
    }
    let beta = target.beta();
    if beta != 1.0 {
        for spec in layout::tensors(cfg) {
            let Site::Block(_, part) = spec.site else {
                continue;
            };
            if !part.deepnorm_scaled() {
                continue;
            }
            let t = tensors
                .get(&spec.hf_name)
                .ok_or_else(|| Error::internal(format!("tensor {} is missing", spec.hf_name)))?;
            let scaled = (t * beta)?;
            tensors.insert(spec.hf_name, scaled);
        }
    }
    cfg.placement = target;
    Ok(())
}
