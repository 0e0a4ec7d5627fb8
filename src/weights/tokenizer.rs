//! Tokenizers: `tokenizer.json` from a Hugging Face folder, or one built from a
//! GGUF's BPE vocabulary and merges the way llama.cpp tokenizes.

use std::path::Path;
use std::str::FromStr;

use candle_core::quantized::gguf_file::Value;
use serde_json::json;
use tokenizers::Tokenizer;

use super::gguf::GgufFile;
use crate::error::{Error, Result};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Loads `tokenizer.json`.
pub fn from_file(path: &Path) -> Result<Tokenizer> {
    if !path.exists() {
        return Err(Error::format(path, "tokenizer.json is missing"));
    }
    Tokenizer::from_file(path)
        .map_err(|e| Error::format(path, format!("cannot parse tokenizer: {e}")))
}

/// Fails when `tokenizer` can produce ids at or beyond the model's `vocab_size`
/// (they would index past the embedding); `source` is the file to name.
pub fn check_vocab(tokenizer: &Tokenizer, vocab_size: usize, source: &Path) -> Result<()> {
    let n = tokenizer.get_vocab_size(true);
    if n > vocab_size {
        return Err(Error::format(
            source,
            format!(
                "the tokenizer has {n} tokens but the model's vocabulary has only {vocab_size}"
            ),
        ));
    }
    Ok(())
}

/// The `tokenizer.json` document equivalent to a GGUF's embedded tokenizer.
pub fn gguf_tokenizer_json(gguf: &GgufFile) -> Result<serde_json::Value> {
    let path = &gguf.path;
    let model = gguf.meta_str("tokenizer.ggml.model").unwrap_or("");
    if model != "gpt2" {
        return Err(Error::format(
            path,
            format!("tokenizer.ggml.model is `{model}`; only byte-level BPE (`gpt2`) is supported"),
        ));
    }
    let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
    let merges = string_array(gguf, "tokenizer.ggml.merges")?;
    let types: Vec<i32> = match gguf.content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(vs)) => vs.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let pre = gguf.meta_str("tokenizer.ggml.pre").unwrap_or("default");
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let pre_tokenizer = match pre {
        "default" | "gpt2" | "gpt-2" => byte_level.clone(),
        // llama.cpp splits every digit on its own before the GPT-2 regex.
        "smollm" | "starcoder" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level.clone()]}),
        other => {
            return Err(Error::format(
                path,
                format!("tokenizer.ggml.pre `{other}` is not supported (known: smollm, starcoder, gpt2, default)"),
            ))
        }
    };
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .zip(types.iter().chain(std::iter::repeat(&1)))
        .enumerate()
        .filter(|(_, (_, &ty))| ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(i, (t, &ty))| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": ty == TOKEN_TYPE_CONTROL})
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    }))
}

/// The tokenizer embedded in a GGUF file.
pub fn from_gguf(gguf: &GgufFile) -> Result<Tokenizer> {
    let doc = gguf_tokenizer_json(gguf)?;
    Tokenizer::from_str(&doc.to_string())
        .map_err(|e| Error::format(&gguf.path, format!("cannot build tokenizer: {e}")))
}

/// The token string for `id` in a GGUF vocabulary.
pub fn gguf_token(gguf: &GgufFile, id: u32) -> Option<String> {
    match gguf.content.metadata.get("tokenizer.ggml.tokens") {
        Some(Value::Array(vs)) => vs.get(id as usize)?.to_string().ok().cloned(),
        _ => None,
    }
}

fn string_array(gguf: &GgufFile, key: &str) -> Result<Vec<String>> {
    match gguf.meta(key)? {
        Value::Array(vs) => vs
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|_| Error::format(&gguf.path, format!("`{key}` holds a non-string")))
            })
            .collect(),
        _ => Err(Error::format(
            &gguf.path,
            format!("`{key}` is not an array"),
        )),
    }
}
