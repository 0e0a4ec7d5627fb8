//! Hub repo ids resolved through the Hugging Face cache (hf-hub), honouring
//! `HF_HUB_OFFLINE` and `HF_HUB_CACHE`, which hf-hub itself does not read.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Files a Hugging Face LLaMA folder may hold besides the weights.
const OPTIONAL_FILES: [&str; 4] = [
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
];

/// True when `spec` looks like `owner/name` rather than a path.
pub fn looks_like_repo_id(spec: &str) -> bool {
    let mut parts = spec.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    ok(owner) && ok(name)
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

fn cache() -> hf_hub::Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) => hf_hub::Cache::new(PathBuf::from(dir)),
        None => hf_hub::Cache::from_env(),
    }
}

/// The local snapshot folder of hub repo `repo_id`, downloading what the cache lacks
/// unless offline.
pub fn resolve(repo_id: &str) -> Result<PathBuf> {
    let cache = cache();
    let cached = cache.model(repo_id.to_string());
    if let Some(folder) = cached_folder(&cached) {
        return Ok(folder);
    }
    let how = format!(
        "download it on a connected machine (`huggingface-cli download {repo_id}`) into {}, \
         or use a local folder or .gguf file",
        cache.path().display()
    );
    if offline() {
        return Err(Error::Fetch(format!(
            "model `{repo_id}` is not in the Hugging Face cache and HF_HUB_OFFLINE is set; {how}"
        )));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache.clone())
        .with_progress(true)
        .build()
        .map_err(|e| Error::Fetch(format!("cannot start the hub client: {e}")))?;
    let repo = api.model(repo_id.to_string());
    let fail = |file: &str, e: hf_hub::api::sync::ApiError| {
        Error::Fetch(format!(
            "cannot download {file} of `{repo_id}` from the hub ({e}); {how}"
        ))
    };
    let config = repo
        .get("config.json")
        .map_err(|e| fail("config.json", e))?;
    repo.get("tokenizer.json")
        .map_err(|e| fail("tokenizer.json", e))?;
    for file in OPTIONAL_FILES {
        let _ = repo.get(file);
    }
    match repo.get("model.safetensors.index.json") {
        Ok(index) => {
            for shard in shard_names(&index)? {
                repo.get(&shard).map_err(|e| fail(&shard, e))?;
            }
        }
        Err(_) => {
            repo.get("model.safetensors")
                .map_err(|e| fail("model.safetensors", e))?;
        }
    }
    Ok(config.parent().map(PathBuf::from).unwrap_or_default())
}

fn cached_folder(repo: &hf_hub::CacheRepo) -> Option<PathBuf> {
    let config = repo.get("config.json")?;
    repo.get("tokenizer.json")?;
    let complete = match repo.get("model.safetensors.index.json") {
        Some(index) => shard_names(&index)
            .ok()?
            .iter()
            .all(|s| repo.get(s).is_some()),
        None => repo.get("model.safetensors").is_some(),
    };
    complete
        .then(|| config.parent().map(PathBuf::from))
        .flatten()
}

fn shard_names(index: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(index, format!("not valid JSON: {e}")))?;
    let mut names: Vec<String> = json["weight_map"]
        .as_object()
        .ok_or_else(|| Error::format(index, "no `weight_map` object"))?
        .values()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_told_from_paths() {
        assert!(looks_like_repo_id("HuggingFaceTB/SmolLM2-135M-Instruct"));
        assert!(!looks_like_repo_id("./models/x"));
        assert!(!looks_like_repo_id("/abs/path"));
        assert!(!looks_like_repo_id("model.gguf"));
        assert!(!looks_like_repo_id("a/b/c"));
    }

    #[test]
    fn offline_cache_miss_says_how_to_get_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("HF_HUB_CACHE", dir.path());
        std::env::set_var("HF_HUB_OFFLINE", "1");
        let err = resolve("nobody/nothing").unwrap_err().to_string();
        assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
        assert!(
            err.contains("huggingface-cli download nobody/nothing"),
            "{err}"
        );
    }
}
