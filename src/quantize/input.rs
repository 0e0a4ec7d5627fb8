//! What is being quantized: a GGUF file (any architecture: after the same
//! header validation every loader runs, names and metadata are copied and
//! tensors dequantized to f32 as llama-quantize --allow-requantize does; the
//! architecture-specific checks are the loader's business) or a Hugging Face
//! folder of any LLaMA-style family but Gemma 3 (tensors renamed to llama.cpp's
//! names, q/k rows permuted into its interleaved-RoPE order where its
//! converter does, llama3 RoPE scaling as `rope_freqs.weight`, metadata and
//! tokenizer built as convert_hf_to_gguf.py would, as if converted with
//! `--outtype f32`).

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::Device;

use super::gguf_out::{read_kvs, Kv};
use super::hf_meta;
use super::recipe::{llama_order, ModelInfo, TensorDesc};
use crate::error::{Error, Result};
use crate::model::config::Architecture;
use crate::model::layout::{self, Part, Site, StoredTensor};
use crate::model::rope::inverse_frequencies;
use crate::model::{Config, Placement, TensorSource};
use crate::weights::convert::permute_rows;
use crate::weights::gguf::GgufFile;
use crate::weights::gguf_config::ROPE_FREQS;
use crate::weights::safetensors::{safetensors_files, VarSource};
use crate::weights::validate::gguf_header::MetaValue;

/// A Hugging Face folder's tensors.
struct Folder {
    src: VarSource<'static>,
    cfg: Config,
    /// What each output tensor is made from, in `Input::tensors` order.
    tensors: Vec<FolderTensor>,
}

/// One tensor of the GGUF written from a folder.
enum FolderTensor {
    /// A checkpoint tensor (fused parts stacked, as llama.cpp stores them).
    Stored(StoredTensor),
    /// llama3 RoPE scaling as the per-frequency factors llama.cpp reads
    /// from `rope_freqs.weight`.
    RopeFreqs(Vec<f32>),
}

enum Source {
    Gguf(Box<GgufFile>),
    Folder(Box<Folder>),
}

/// An opened input: its tensors in llama.cpp's order and the metadata to copy.
pub struct Input {
    /// The file or folder.
    pub path: PathBuf,
    /// Tensors in the order they will be written.
    pub tensors: Vec<TensorDesc>,
    /// What the recipe needs about the model.
    pub info: ModelInfo,
    /// Metadata entries, in order (before `general.file_type` is set).
    pub kvs: Vec<Kv>,
    /// Data alignment of the output.
    pub alignment: u64,
    /// Bytes of the input's tensors (all files of a folder).
    pub bytes: u64,
    source: Source,
}

/// Keys of a split GGUF that a single output file must not carry.
const SPLIT_KEYS: [&str; 3] = ["split.no", "split.count", "split.tensors.count"];

impl Input {
    /// Opens a GGUF file or a Hugging Face folder.
    pub fn open(path: &Path) -> Result<Input> {
        if path.is_dir() {
            open_folder(path)
        } else {
            open_gguf(path)
        }
    }

    /// The stored bytes of tensor `i` when the input holds it in `dtype` (GGUF only).
    pub fn stored(&self, i: usize, dtype: GgmlDType) -> Option<&[u8]> {
        match &self.source {
            Source::Gguf(g) if self.tensors[i].dtype == dtype => {
                let t = g.layout.tensor(&self.tensors[i].name)?;
                Some(&g.bytes()[t.start..t.end])
            }
            _ => None,
        }
    }

    /// Tensor `i` as f32 values in ggml order (rows of `ne[0]`).
    pub fn values(&self, i: usize) -> Result<Vec<f32>> {
        let desc = &self.tensors[i];
        let (v, file) = match &self.source {
            Source::Gguf(g) => (gguf_values(g, desc)?, g.path.clone()),
            Source::Folder(f) => (f.values(i)?, self.path.clone()),
        };
        if let Some(j) = v.iter().position(|x| !x.is_finite()) {
            let kind = if v[j].is_nan() { "NaN" } else { "Inf" };
            return Err(Error::format(
                file,
                format!(
                    "tensor `{}` holds {kind} at element {j}; the checkpoint is corrupt",
                    desc.name
                ),
            ));
        }
        Ok(v)
    }
}

impl Folder {
    /// Output tensor `i` as f32 values: the parts read (norm gains as the
    /// model multiplies by them), q/k rows permuted where llama.cpp's
    /// converter permutes them, fused parts stacked.
    fn values(&self, i: usize) -> Result<Vec<f32>> {
        let stored = match &self.tensors[i] {
            FolderTensor::RopeFreqs(f) => return Ok(f.clone()),
            FolderTensor::Stored(s) => s,
        };
        let cfg = &self.cfg;
        let mut out = Vec::new();
        for spec in &stored.parts {
            let mut w = self.src.tensor(spec)?;
            if cfg.architecture.gguf_permutes_qk() {
                match spec.site {
                    Site::Block(_, Part::Q) => w = permute_rows(&w, cfg.num_heads)?,
                    Site::Block(_, Part::K) => w = permute_rows(&w, cfg.num_kv_heads)?,
                    _ => {}
                }
            }
            out.extend(w.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }
}

fn gguf_values(g: &GgufFile, desc: &TensorDesc) -> Result<Vec<f32>> {
    if desc.dtype == GgmlDType::F32 {
        let t = g
            .layout
            .tensor(&desc.name)
            .expect("listed tensors are in the layout");
        return Ok(g.bytes()[t.start..t.end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect());
    }
    let q = g.qtensor(&desc.name)?;
    Ok(q.dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

fn open_gguf(path: &Path) -> Result<Input> {
    let g = GgufFile::open_any(path)?;
    let mut tensors: Vec<TensorDesc> = g
        .layout
        .tensors
        .iter()
        .map(|t| TensorDesc {
            name: t.name.clone(),
            ne: t.ne.clone(),
            dtype: t.dtype,
        })
        .collect();
    tensors.sort_by(|a, b| llama_order(&a.name, &b.name));
    let int = |key: &str| match g.layout.get(key) {
        Some(MetaValue::Unsigned(v, _)) => Some(*v as usize),
        Some(MetaValue::Signed(v, _)) if *v >= 0 => Some(*v as usize),
        _ => None,
    };
    let arch = match g.layout.get("general.architecture") {
        Some(MetaValue::Str(a)) => a.clone(),
        _ => String::new(),
    };
    let n_head = int(&format!("{arch}.attention.head_count")).unwrap_or(0);
    let info = ModelInfo {
        n_layer: int(&format!("{arch}.block_count")).unwrap_or(0),
        n_head,
        n_head_kv: int(&format!("{arch}.attention.head_count_kv")).unwrap_or(n_head),
        n_expert: int(&format!("{arch}.expert_count")).unwrap_or(0),
        arch,
    };
    let mut kvs = read_kvs(g.bytes()).map_err(|m| Error::format(path, m))?;
    kvs.retain(|kv| !SPLIT_KEYS.contains(&kv.key.as_str()));
    let bytes = g
        .layout
        .tensors
        .iter()
        .map(|t| (t.end - t.start) as u64)
        .sum();
    Ok(Input {
        path: path.to_path_buf(),
        tensors,
        info,
        kvs,
        alignment: g.layout.alignment,
        bytes,
        source: Source::Gguf(Box::new(g)),
    })
}

fn open_folder(dir: &Path) -> Result<Input> {
    let cfg_path = dir.join("config.json");
    if !cfg_path.exists() {
        return Err(Error::format(dir, "no config.json in this folder"));
    }
    let cfg = Config::from_file(&cfg_path)?;
    if cfg.architecture == Architecture::Gemma3 {
        return Err(Error::format(
            &cfg_path,
            "Gemma 3 folders cannot be quantized yet; quantize the model's GGUF instead",
        ));
    }
    if cfg.placement != Placement::Pre && !cfg.placement.is_native() {
        return Err(Error::format(
            &cfg_path,
            "a norm-placement variant has no GGUF counterpart llama.cpp runs; \
             only checkpoints in their trained placement can be quantized",
        ));
    }
    // llama.cpp runs Mistral and Phi-3 GGUFs with full attention (the
    // converter writes no window for Mistral, and Phi-3's it ignores).
    let full_in_llama_cpp = matches!(cfg.architecture, Architecture::Mistral | Architecture::Phi3);
    if cfg.has_sliding_layers() && !full_in_llama_cpp {
        return Err(Error::format(
            &cfg_path,
            format!(
                "sliding-window attention in a {} folder has no GGUF counterpart llama.cpp runs",
                cfg.architecture.model_type()
            ),
        ));
    }
    let files = safetensors_files(dir)?;
    let src = VarSource::open(&files, candle_core::DType::F32, &Device::Cpu)?;
    let mut tensors: Vec<(String, Vec<usize>, FolderTensor)> = layout::stored_tensors(&cfg)
        .into_iter()
        .map(|s| {
            let ne = s.shape().iter().rev().copied().collect();
            (s.first().gguf_name.clone(), ne, FolderTensor::Stored(s))
        })
        .collect();
    if let Some(scaling) = cfg.llama3_scaling() {
        let base = inverse_frequencies(cfg.head_dim, cfg.rope_theta, None);
        let scaled = inverse_frequencies(cfg.head_dim, cfg.rope_theta, Some(&scaling));
        let factors: Vec<f32> = base
            .iter()
            .zip(&scaled)
            .map(|(b, s)| (b / s) as f32)
            .collect();
        tensors.push((
            ROPE_FREQS.to_string(),
            vec![factors.len()],
            FolderTensor::RopeFreqs(factors),
        ));
    }
    tensors.sort_by(|a, b| llama_order(&a.0, &b.0));
    let descs = tensors
        .iter()
        .map(|(name, ne, _)| TensorDesc {
            name: name.clone(),
            ne: ne.clone(),
            dtype: GgmlDType::F32,
        })
        .collect();
    let kvs = hf_meta::metadata(dir, &cfg)?;
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    Ok(Input {
        path: dir.to_path_buf(),
        tensors: descs,
        info: ModelInfo {
            arch: cfg.architecture.gguf_name().into(),
            n_layer: cfg.num_layers,
            n_head: cfg.num_heads,
            n_head_kv: cfg.num_kv_heads,
            n_expert: 0,
        },
        kvs,
        alignment: crate::weights::validate::gguf_header::DEFAULT_ALIGNMENT,
        bytes,
        source: Source::Folder(Box::new(Folder {
            src,
            cfg,
            tensors: tensors.into_iter().map(|(_, _, t)| t).collect(),
        })),
    })
}
