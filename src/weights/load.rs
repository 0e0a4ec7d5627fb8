//! The loader: a `--model` spec (a Hugging Face folder, a `.gguf` file, a hub
//! repo id, or nothing for the default model) -> weights, tokenizer, stop ids
//! and chat template, ready to run.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use tokenizers::Tokenizer;

use super::check::{self, WeightCheck};
use super::folder::{self, ChatTemplate};
use super::{fetch, gguf, hub, safetensors, tokenizer, unused, Format};
use crate::error::{Error, Result};
use crate::model::{Config, LoadOptions, Model};

/// A model ready to run: weights, tokenizer, stop ids and chat template.
pub struct LoadedModel {
    /// The network.
    pub model: Model,
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

/// Loads `spec` (see [`resolve`]) for inference in `dtype` on `device`,
/// checking the cheap tensors for NaN and Inf.
pub fn load(spec: Option<&str>, device: &Device, dtype: DType) -> Result<LoadedModel> {
    load_with(
        spec,
        &LoadOptions::inference(dtype, device),
        WeightCheck::Cheap,
    )
}

/// Loads `spec` as `opts` asks, scanning the tensors `check` covers for NaN and Inf.
pub fn load_with(
    spec: Option<&str>,
    opts: &LoadOptions,
    check: WeightCheck,
) -> Result<LoadedModel> {
    let path = resolve(spec)?;
    if path.is_dir() {
        load_folder(&path, opts, check)
    } else {
        load_gguf(&path, opts, check)
    }
}

/// The local path `spec` names, fetching or downloading as needed: a
/// folder, a `.gguf` file, a hub repo id (`owner/name`), or the default model.
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
    if looks_like_path(spec) {
        return Err(Error::format(path, "no such file or folder"));
    }
    hub::resolve(spec)
}

/// True when `spec` (which names nothing on disk) should be read as a path
/// rather than a hub repo id: it ends in `.gguf`, `.safetensors` or `.json`,
/// starts with `.`, `/` or `~`, has more than one `/`, names an existing
/// parent folder, or is not a plausible `owner/name` at all.
pub fn looks_like_path(spec: &str) -> bool {
    let path = Path::new(spec);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("gguf" | "safetensors" | "json"))
        || spec.starts_with(['.', '/', '~'])
        || spec.matches('/').count() > 1
        || path
            .parent()
            .is_some_and(|d| !d.as_os_str().is_empty() && d.is_dir())
        || !hub::looks_like_repo_id(spec)
}

/// Loads a Hugging Face folder.
fn load_folder(folder: &Path, opts: &LoadOptions, check: WeightCheck) -> Result<LoadedModel> {
    let cfg_path = folder.join("config.json");
    if !cfg_path.exists() {
        return Err(Error::format(folder, "no config.json in this folder"));
    }
    let mut cfg = Config::from_file(&cfg_path)?;
    let files = safetensors::safetensors_files(folder)?;
    let src = safetensors::VarSource::open(&files, opts.dtype, &opts.device)?;
    for file in &files {
        let header = safetensors::read_header(file)?;
        let names = header.tensors.iter().map(|t| t.name.as_str());
        for name in unused::check(&cfg, names, &[], unused::Naming::HuggingFace, file)? {
            tracing::warn!(
                "{}: ignoring tensor `{name}` (recomputed from config.json)",
                file.display()
            );
        }
    }
    check::scan_safetensors(&files, check)?;
    if let Some(eos) = folder::generation_eos(folder)? {
        cfg.eos_token_ids = eos;
    }
    let tok_path = folder.join("tokenizer.json");
    let tokenizer = tokenizer::from_file(&tok_path)?;
    tokenizer::check_vocab(&tokenizer, cfg.vocab_size, &tok_path)?;
    let chat = folder::chat_template(folder)?;
    let model = Model::load(&src, cfg, opts)?;
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
fn load_gguf(path: &Path, opts: &LoadOptions, check: WeightCheck) -> Result<LoadedModel> {
    if opts.quantize.is_some() {
        return Err(Error::usage(format!(
            "{} is a GGUF file and already quantized; in-situ quantization needs a safetensors folder",
            path.display()
        )));
    }
    if opts.training {
        return Err(Error::usage(format!(
            "{} is quantized; variants and fine-tuning need a float checkpoint \
             (convert it first with `normscope convert`)",
            path.display()
        )));
    }
    let file = gguf::GgufFile::open(path)?;
    let cfg = file.config()?;
    file.check_tensor_names(&cfg)?;
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
    let src = gguf::GgufSource::new(&file, DType::F32, &opts.device);
    let gguf_opts = LoadOptions {
        dtype: DType::F32,
        ..opts.clone()
    };
    let model = Model::load(&src, cfg, &gguf_opts)?;
    Ok(LoadedModel {
        eos_ids: model.cfg.eos_token_ids.clone(),
        model,
        tokenizer,
        chat,
        path: path.to_path_buf(),
        format: Format::Gguf,
    })
}

#[cfg(test)]
mod tests {
    use super::looks_like_path;

    #[test]
    fn paths_are_told_from_repo_ids() {
        for path in [
            "models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "owner/model.safetensors",
            "owner/config.json",
            "./x",
            "../x/y",
            "/abs/path",
            "~/models/x",
            "a/b/c",
            "model.gguf",
            "justaname",
        ] {
            assert!(looks_like_path(path), "{path} is a path");
        }
        // Relative to the current folder: src/ exists in the crate root, where tests run.
        assert!(looks_like_path("src/missing-model"));
        for repo in ["HuggingFaceTB/SmolLM2-135M-Instruct", "google/gemma-3-270m"] {
            assert!(!looks_like_path(repo), "{repo} is a repo id");
        }
    }
}
