//! GGUF files (llama architecture): metadata -> [`Config`], tensors on the
//! quantized path with llama.cpp's names mapped to Hugging Face's.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};

use super::source::TensorSource;
use super::validate::gguf_header::{self, GgufLayout};
use super::validate::{self, gguf_llama};
use crate::error::{Error, Result};
use crate::model::config::Config;
use crate::model::embedding::Embedding;
use crate::model::linear::Linear;

/// A parsed GGUF file, memory-mapped.
pub struct GgufFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Header: metadata and tensor table.
    pub content: Content,
    /// The header as our own validator walked it (tensor byte ranges included).
    pub layout: GgufLayout,
    mmap: memmap2::Mmap,
}

impl GgufFile {
    /// Maps `path`, validates its header (as a llama model) and parses it.
    pub fn open(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only mapping; the file must not be truncated while in use.
        let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
        let layout = gguf_header::check(&mmap)
            .and_then(|l| gguf_llama::check(&l).map(|_| l))
            .map_err(|m| Error::format(path, m))?;
        let content = Content::read(&mut Cursor::new(&mmap[..]))
            .map_err(|e| Error::format(path, format!("not a valid GGUF file: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            layout,
            mmap,
        })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
    }

    /// Metadata value `key`, or an error naming the key and the file.
    pub fn meta(&self, key: &str) -> Result<&Value> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| Error::format(&self.path, format!("metadata key `{key}` is missing")))
    }

    fn meta_u32(&self, key: &str) -> Result<usize> {
        let v = self.meta(key)?;
        v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .or_else(|_| v.to_i32().map(|x| x as usize))
            .map_err(|e| Error::format(&self.path, format!("metadata `{key}`: {e}")))
    }

    fn meta_f32(&self, key: &str) -> Result<f64> {
        self.meta(key)?
            .to_f32()
            // The shortest decimal of the f32 (1e-5, not 9.99999974e-6).
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

    /// The model configuration from `llama.*` metadata (q/k rows stay in
    /// llama.cpp's interleaved-RoPE order).
    pub fn config(&self) -> Result<Config> {
        let arch = self.meta_str("general.architecture").unwrap_or("");
        if arch != "llama" {
            return Err(Error::format(
                &self.path,
                format!("general.architecture is `{arch}`; only `llama` is supported"),
            ));
        }
        let hidden = self.meta_u32("llama.embedding_length")?;
        let heads = self.meta_u32("llama.attention.head_count")?;
        let kv_heads = self
            .meta_u32("llama.attention.head_count_kv")
            .unwrap_or(heads);
        let vocab = match self.content.tensor_infos.get("token_embd.weight") {
            Some(info) => info.shape.dims()[0],
            None => {
                return Err(Error::format(
                    &self.path,
                    "tensor `token_embd.weight` is missing",
                ))
            }
        };
        let token_id = |key: &str| self.meta_u32(key).ok().map(|v| v as u32);
        let raw = crate::model::config::HfConfig {
            hidden_size: hidden,
            intermediate_size: self.meta_u32("llama.feed_forward_length")?,
            num_hidden_layers: self.meta_u32("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv_heads),
            head_dim: self.meta_u32("llama.rope.dimension_count").ok(),
            vocab_size: vocab,
            rms_norm_eps: self.meta_f32("llama.attention.layer_norm_rms_epsilon")?,
            rope_theta: Some(self.meta_f32("llama.rope.freq_base").unwrap_or(10000.0)),
            rope_scaling: None,
            rope_parameters: None,
            max_position_embeddings: self.meta_u32("llama.context_length")?,
            tie_word_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
            bos_token_id: token_id("tokenizer.ggml.bos_token_id")
                .map(crate::model::config::TokenIds::One),
            eos_token_id: token_id("tokenizer.ggml.eos_token_id")
                .map(crate::model::config::TokenIds::One),
            hidden_act: None,
            attention_bias: false,
            mlp_bias: false,
            torch_dtype: None,
            dtype: None,
            model_type: None,
            architectures: None,
            normscope: Default::default(),
        };
        let mut cfg = raw
            .resolve()
            .and_then(|c| validate::config::check(&c).map(|_| c))
            .map_err(|m| Error::format(&self.path, m))?;
        cfg.rope_interleaved = true;
        Ok(cfg)
    }

    /// Reads tensor `gguf_name` as stored (quantized or not).
    pub fn qtensor(&self, gguf_name: &str) -> Result<QTensor> {
        self.content
            .tensor(&mut Cursor::new(&self.mmap[..]), gguf_name, &Device::Cpu)
            .map_err(|e| Error::format(&self.path, format!("tensor `{gguf_name}`: {e}")))
    }
}

/// llama.cpp's tensor name for a Hugging Face LLaMA tensor name.
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(n) = fixed {
        return Some(n.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let part = match part {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{part}"))
}

/// GGUF tensors served on the quantized path: linear maps stay quantized,
/// norms and the embedding are dequantized to the compute dtype.
pub struct GgufSource<'a> {
    file: &'a GgufFile,
    device: Device,
    dtype: DType,
}

impl<'a> GgufSource<'a> {
    /// Serves `file`'s tensors on `device`, dense ones in `dtype`.
    pub fn new(file: &'a GgufFile, dtype: DType, device: &Device) -> Self {
        Self {
            file,
            device: device.clone(),
            dtype,
        }
    }

    fn checked(&self, name: &str, shape: &[usize]) -> Result<QTensor> {
        let g = gguf_name(name).ok_or_else(|| self.error(name, "no GGUF counterpart"))?;
        if !self.file.content.tensor_infos.contains_key(&g) {
            return Err(self.error(
                name,
                &format!("tensor `{g}` is missing (expected shape {shape:?})"),
            ));
        }
        let q = self.file.qtensor(&g)?;
        if q.shape().dims() != shape {
            return Err(self.error(
                name,
                &format!(
                    "tensor `{g}` has shape {:?}, expected {shape:?}",
                    q.shape().dims()
                ),
            ));
        }
        Ok(q)
    }

    fn quantized_linear(&self, q: QTensor) -> Result<Linear> {
        let q = if self.device.is_cpu() {
            q
        } else {
            move_qtensor(q, &self.device)?
        };
        Ok(Linear::Quantized(QMatMul::from_arc(Arc::new(q))?))
    }
}

fn move_qtensor(q: QTensor, device: &Device) -> Result<QTensor> {
    let data = q.data()?.into_owned();
    let storage = candle_core::quantized::QStorage::from_data(data.into(), device, q.dtype())?;
    Ok(QTensor::new(storage, q.shape().clone())?)
}

impl TensorSource for GgufSource<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let q = self.checked(name, shape)?;
        Ok(q.dequantize(&Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?)
    }

    fn contains(&self, name: &str) -> bool {
        gguf_name(name).is_some_and(|g| self.file.content.tensor_infos.contains_key(&g))
    }

    fn error(&self, name: &str, msg: &str) -> Error {
        Error::format(&self.file.path, format!("{name}: {msg}"))
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear> {
        let q = self.checked(name, &[out, inp])?;
        self.quantized_linear(q)
    }

    /// On the CPU a quantized embedding stays quantized (rows are
    /// dequantized per lookup, and a tied head shares the bytes); elsewhere
    /// it is dequantized once.
    fn embedding(&self, name: &str, shape: &[usize]) -> Result<Embedding> {
        let q = self.checked(name, shape)?;
        if self.device.is_cpu() && q.dtype().block_size() > 1 {
            return Ok(Embedding::Rows(self.quantized_linear(q)?));
        }
        Ok(Embedding::Dense(
            q.dequantize(&Device::Cpu)?
                .to_dtype(self.dtype)?
                .to_device(&self.device)?,
        ))
    }

    fn tied_head(&self, embed: &Embedding) -> Result<Linear> {
        if let Embedding::Rows(l) = embed {
            return Ok(l.clone());
        }
        let q = self.checked(
            "model.embed_tokens.weight",
            &[embed.dims()?.0, embed.dims()?.1],
        )?;
        self.quantized_linear(q)
    }
}

#[cfg(test)]
mod tests {
    use super::gguf_name;

    #[test]
    fn names_map_to_llama_cpp() {
        assert_eq!(
            gguf_name("model.layers.3.self_attn.o_proj.weight").unwrap(),
            "blk.3.attn_output.weight"
        );
        assert_eq!(
            gguf_name("model.layers.12.mlp.down_proj.weight").unwrap(),
            "blk.12.ffn_down.weight"
        );
        assert_eq!(gguf_name("lm_head.weight").unwrap(), "output.weight");
        assert!(gguf_name("model.layers.1.bogus").is_none());
    }
}
