//! `normscope convert`: a GGUF of any supported architecture -> a Hugging
//! Face folder (dequantized weights with q/k rows put back in half-split
//! RoPE order where llama.cpp permuted them, fused tensors kept fused as
//! both formats store them, config, tokenizer, chat template).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use super::gguf::GgufFile;
use super::tokenizer::{gguf_token, gguf_tokenizer_json};
use crate::error::{Error, Result};
use crate::model::config::Architecture;
use crate::model::layout::{self, Part, Site};
use crate::model::source::to_hf_stored;
use crate::output::StagedDir;

/// Undoes llama.cpp's row permutation of `attn_q` / `attn_k` for interleaved RoPE:
/// `w.reshape(n, head_dim/2, 2, cols).swapaxes(1, 2).reshape(rows, cols)`.
pub fn unpermute_rows(w: &Tensor, n_heads: usize) -> Result<Tensor> {
    let head_dim = w.dim(0)? / n_heads;
    swap_row_axes(w, n_heads, head_dim / 2, 2)
}

/// llama.cpp's row permutation of `attn_q` / `attn_k` (what its converter
/// applies): `w.reshape(n, 2, head_dim/2, cols).swapaxes(1, 2).reshape(rows, cols)`.
pub fn permute_rows(w: &Tensor, n_heads: usize) -> Result<Tensor> {
    let head_dim = w.dim(0)? / n_heads;
    swap_row_axes(w, n_heads, 2, head_dim / 2)
}

/// `w.reshape(n, a, b, cols).swapaxes(1, 2).reshape(rows, cols)`.
fn swap_row_axes(w: &Tensor, n: usize, a: usize, b: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    Ok(w.reshape((n, a, b, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

/// The name transformers uses for a dtype in `config.json`.
pub fn dtype_name(dtype: DType) -> Result<&'static str> {
    Ok(match dtype {
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        other => return Err(Error::usage(format!("cannot write weights as {other:?}"))),
    })
}

/// Converts `input` (GGUF) into a Hugging Face folder `out`, with weights in `dtype`.
pub fn convert_gguf(input: &Path, out: &Path, dtype: DType, force: bool) -> Result<()> {
    let gguf = GgufFile::open(input)?;
    let mut cfg = gguf.config()?;
    let tokenizer = gguf_tokenizer_json(&gguf)?;
    let staged = StagedDir::new(out, force)?;
    let dtype_str = dtype_name(dtype)?;

    gguf.check_tensor_names(&cfg)?;
    if cfg.rope_scaling.is_some() && cfg.llama3_scaling().is_none() {
        return Err(Error::format(
            input,
            "tensor `rope_freqs.weight` holds RoPE factors no llama3 scaling gives; \
             config.json cannot describe them",
        ));
    }
    let mut tensors = HashMap::new();
    for stored in layout::stored_tensors(&cfg) {
        let spec = stored.first();
        let g = &spec.gguf_name;
        if !gguf.content.tensor_infos.contains_key(g) {
            return Err(Error::format(input, format!("tensor `{g}` is missing")));
        }
        let mut w = gguf.qtensor(g)?.dequantize(&Device::Cpu)?;
        if w.dims() != stored.shape().as_slice() {
            return Err(Error::format(
                input,
                format!(
                    "tensor `{g}` has shape {:?}, expected {:?}",
                    w.dims(),
                    stored.shape()
                ),
            ));
        }
        if cfg.rope_interleaved {
            match spec.site {
                Site::Block(_, Part::Q) => w = unpermute_rows(&w, cfg.num_heads)?,
                Site::Block(_, Part::K) => w = unpermute_rows(&w, cfg.num_kv_heads)?,
                _ => {}
            }
        }
        tensors.insert(
            spec.hf_name.clone(),
            to_hf_stored(spec, &w)?.to_dtype(dtype)?,
        );
    }
    crate::output::save_safetensors(&tensors, &staged.path().join("model.safetensors"))?;

    cfg.rope_interleaved = false;
    let mut config = serde_json::to_value(cfg.to_hf(dtype_str)).expect("config serializes");
    // Written even when absent: some config classes default it to an id
    // beyond a small vocabulary (Phi3Config: 32000).
    config["pad_token_id"] = json!(gguf.meta_usize("tokenizer.ggml.padding_token_id").ok());
    write_json(staged.path(), "config.json", &config)?;
    let mut gen = json!({"bos_token_id": cfg.bos_token_id, "do_sample": false});
    gen["eos_token_id"] = json!(cfg.eos_token_ids);
    write_json(staged.path(), "generation_config.json", &gen)?;
    write_json(staged.path(), "tokenizer.json", &tokenizer)?;

    let token = |id: Option<u32>| id.and_then(|i| gguf_token(&gguf, i));
    // The class transformers would pick for this vocabulary.
    let class = match (cfg.architecture, gguf.meta_str("tokenizer.ggml.model")) {
        (Architecture::Gemma3, _) => "GemmaTokenizer",
        (_, Some("llama")) => "LlamaTokenizer",
        (Architecture::Qwen2 | Architecture::Qwen3, _) => "Qwen2Tokenizer",
        _ => "GPT2Tokenizer",
    };
    let mut tok_cfg = json!({
        "tokenizer_class": class,
        "add_bos_token": gguf.content.metadata.get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok()).unwrap_or(false),
        "clean_up_tokenization_spaces": false,
        "model_max_length": cfg.max_position_embeddings,
        "bos_token": token(cfg.bos_token_id),
        "eos_token": token(cfg.eos_token_ids.first().copied()),
    });
    if let Some(t) = gguf.meta_str("tokenizer.chat_template") {
        tok_cfg["chat_template"] = json!(t);
    }
    write_json(staged.path(), "tokenizer_config.json", &tok_cfg)?;
    staged.commit()?;
    Ok(())
}

fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> Result<()> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        let w = Tensor::arange(0f32, 3.0 * 8.0 * 5.0, &Device::Cpu)
            .unwrap()
            .reshape((24, 5))
            .unwrap();
        let back = unpermute_rows(&permute_rows(&w, 3).unwrap(), 3).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        // One head of 6 rows: halves [0 1 2 | 3 4 5] interleave as llama.cpp stores them.
        let rows = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((6, 1))
            .unwrap();
        let p = permute_rows(&rows, 1).unwrap().flatten_all().unwrap();
        assert_eq!(p.to_vec1::<f32>().unwrap(), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
