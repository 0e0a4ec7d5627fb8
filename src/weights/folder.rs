//! What a Hugging Face folder holds besides weights: generation_config.json's
//! stop ids and the chat template (transformers 4 and 5 conventions).

use std::path::{Path, PathBuf};

use super::validate;
use crate::error::{Error, Result};

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

/// The strictly parsed JSON at `path`, or `None` when there is no such file.
pub(crate) fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    validate::json::parse_strict(&bytes)
        .map(Some)
        .map_err(|e| Error::format(path, e))
}

/// `eos_token_id` from generation_config.json, which overrides config.json's.
pub fn generation_eos(folder: &Path) -> Result<Option<Vec<u32>>> {
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
pub fn chat_template(folder: &Path) -> Result<ChatTemplate> {
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
