//! Checkpoints: formats (safetensors folders, GGUF), the hub cache, the
//! default model's fetch, tokenizers, and GGUF -> Hugging Face conversion.

pub mod check;
pub mod convert;
pub mod fetch;
pub mod gguf;
pub mod hub;
pub mod random;
pub mod safetensors;
pub mod source;
pub mod tokenizer;
pub mod validate;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use tokenizers::Tokenizer;

pub use check::WeightCheck;
pub use source::TensorSource;

use crate::error::{Error, Result};
use crate::model::{Config, Llama};

/// How a checkpoint is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A Hugging Face folder with safetensors weights.
    Safetensors,
    /// A GGUF file (quantized path).
    Gguf,
}

/// What the chat template needs besides the messages.
#[derive(Debug, Clone, Default)]
pub struct ChatTemplate {
    /// The Jinja template source, when the model has one.
    pub source: Option<String>,
    /// `bos_token` as the template sees it.
    pub bos_token: Option<String>,
    /// `eos_token` as the template sees it.
    pub eos_token: Option<String>,
    /// The file the template came from, for error messages.
    pub origin: PathBuf,
}

/// A model ready to run: weights, tokenizer, stop ids and chat template.
pub struct LoadedModel {
    /// The network.
    pub model: Llama,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Token ids that end generation.
    pub eos_ids: Vec<u32>,
    /// Chat template and its special tokens.
    pub chat: ChatTemplate,
    /// The file or folder it came from.
    pub path: PathBuf,
    /// Its storage format.
    pub format: Format,
}

/// Loads `spec` (a Hugging Face folder, a `.gguf` file, or a hub repo id; the
/// default model, fetched on first use, when `None`), checking the cheap
/// tensors for NaN and Inf.
pub fn load(spec: Option<&str>, device: &Device, dtype: DType) -> Result<LoadedModel> {
    load_checked(spec, device, dtype, WeightCheck::Cheap)
}

/// [`load`], scanning the tensors `check` covers for NaN and Inf.
pub fn load_checked(
    spec: Option<&str>,
    device: &Device,
    dtype: DType,
    check: WeightCheck,
) -> Result<LoadedModel> {
    let path = resolve(spec)?;
    if path.is_dir() {
        load_folder(&path, device, dtype, check)
    } else {
        load_gguf(&path, device, check)
    }
}

/// The local path `spec` names, fetching or downloading as needed.
pub fn resolve(spec: Option<&str>) -> Result<PathBuf> {
    let Some(spec) = spec else {
        return Ok(fetch::fetch_default()?.folder);
    };
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if path.is_file() {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        {
            return Ok(path.to_path_buf());
        }
        return Err(Error::format(
            path,
            "not a model: pass a Hugging Face folder, a .gguf file or a hub repo id",
        ));
    }
    if hub::looks_like_repo_id(spec) {
        return hub::resolve(spec);
    }
    Err(Error::format(path, "no such file or folder"))
}

/// Loads a Hugging Face folder.
pub fn load_folder(
    folder: &Path,
    device: &Device,
    dtype: DType,
    check: WeightCheck,
) -> Result<LoadedModel> {
    let cfg_path = folder.join("config.json");
    if !cfg_path.exists() {
        return Err(Error::format(folder, "no config.json in this folder"));
    }
    let mut cfg = Config::from_file(&cfg_path)?;
    validate::config::check(&cfg).map_err(|m| Error::format(&cfg_path, m))?;
    let files = safetensors::safetensors_files(folder)?;
    let src = safetensors::VarSource::open(&files, dtype, device)?;
    check::scan_safetensors(&files, check)?;
    if let Some(eos) = generation_eos(folder)? {
        cfg.eos_token_ids = eos;
    }
    let tok_path = folder.join("tokenizer.json");
    let tokenizer = tokenizer::from_file(&tok_path)?;
    tokenizer::check_vocab(&tokenizer, cfg.vocab_size, &tok_path)?;
    let chat = folder_chat_template(folder)?;
    let mut model = Llama::load(&src, cfg, dtype, device)?;
    if device.is_cpu() {
        model.use_cpu_kernels()?;
    }
    Ok(LoadedModel {
        eos_ids: model.cfg.eos_token_ids.clone(),
        model,
        tokenizer,
        chat,
        path: folder.to_path_buf(),
        format: Format::Safetensors,
    })
}

/// Loads a GGUF file on the quantized path (activations in f32).
pub fn load_gguf(path: &Path, device: &Device, check: WeightCheck) -> Result<LoadedModel> {
    let file = gguf::GgufFile::open(path)?;
    let cfg = file.config()?;
    check::scan_gguf(&file, check)?;
    let tokenizer = tokenizer::from_gguf(&file)?;
    tokenizer::check_vocab(&tokenizer, cfg.vocab_size, path)?;
    let token = |id: Option<u32>| id.and_then(|i| tokenizer::gguf_token(&file, i));
    let chat = ChatTemplate {
        source: file.meta_str("tokenizer.chat_template").map(String::from),
        bos_token: token(cfg.bos_token_id),
        eos_token: token(cfg.eos_token_ids.first().copied()),
        origin: path.to_path_buf(),
    };
    let src = gguf::GgufSource::new(&file, DType::F32, device);
    let mut model = Llama::load(&src, cfg, DType::F32, device)?;
    if device.is_cpu() {
        model.use_cpu_kernels()?;
    }
    Ok(LoadedModel {
        eos_ids: model.cfg.eos_token_ids.clone(),
        model,
        tokenizer,
        chat,
        path: path.to_path_buf(),
        format: Format::Gguf,
    })
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    validate::json::parse_strict(&bytes)
        .map(Some)
        .map_err(|e| Error::format(path, e))
}

/// `eos_token_id` from generation_config.json, which overrides config.json's.
fn generation_eos(folder: &Path) -> Result<Option<Vec<u32>>> {
    let path = folder.join("generation_config.json");
    let Some(json) = read_json(&path)? else {
        return Ok(None);
    };
    let ids = match &json["eos_token_id"] {
        serde_json::Value::Null => return Ok(None),
        v => serde_json::from_value::<crate::model::config::TokenIds>(v.clone())
            .map_err(|_| Error::format(&path, "eos_token_id is not an id or a list of ids"))?,
    };
    Ok(Some(ids.to_vec()))
}

/// The chat template: `chat_template.jinja` (transformers 5) or the
/// `chat_template` field of tokenizer_config.json (transformers 4; a string or
/// a list of named templates, of which `default` is used).
fn folder_chat_template(folder: &Path) -> Result<ChatTemplate> {
    let cfg_path = folder.join("tokenizer_config.json");
    let tok_cfg = read_json(&cfg_path)?.unwrap_or_default();
    let special = |key: &str| match &tok_cfg[key] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    };
    let jinja = folder.join("chat_template.jinja");
    let origin = if jinja.exists() {
        jinja.clone()
    } else {
        cfg_path.clone()
    };
    let source = if jinja.exists() {
        Some(std::fs::read_to_string(&jinja).map_err(|e| Error::io(&jinja, e))?)
    } else {
        match &tok_cfg["chat_template"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(list) => list
                .iter()
                .find(|t| t["name"] == "default")
                .or_else(|| list.first())
                .and_then(|t| t["template"].as_str())
                .map(String::from),
            _ => None,
        }
    };
    Ok(ChatTemplate {
        source,
        bos_token: special("bos_token"),
        eos_token: special("eos_token"),
        origin,
    })
}
