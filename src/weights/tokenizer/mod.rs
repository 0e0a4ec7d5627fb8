//! Tokenizers: `tokenizer.json` from a Hugging Face folder, or one built from
//! a GGUF's vocabulary the way llama.cpp tokenizes: byte-level BPE with merges
//! ([`bpe`], `tokenizer.ggml.model = gpt2`) or SentencePiece with scores
//! ([`spm`], `llama`).

mod bpe;
mod spm;

pub use bpe::pre_name_of;

use std::path::Path;
use std::str::FromStr;

use candle_core::quantized::gguf_file::Value;
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

/// The tokenizer embedded in a GGUF file.
pub fn from_gguf(gguf: &GgufFile) -> Result<Tokenizer> {
    let cannot =
        |e: tokenizers::Error| Error::format(&gguf.path, format!("cannot build tokenizer: {e}"));
    match gguf.meta_str("tokenizer.ggml.model").unwrap_or("") {
        "gpt2" => Tokenizer::from_str(&bpe::tokenizer_json(gguf)?.to_string()).map_err(cannot),
        "llama" => spm::tokenizer(gguf),
        other => Err(Error::format(
            &gguf.path,
            format!(
                "tokenizer.ggml.model is `{other}`; supported: byte-level BPE (`gpt2`) \
                 and SentencePiece (`llama`)"
            ),
        )),
    }
}

/// The `tokenizer.json` document equivalent to a GGUF's embedded tokenizer.
pub fn gguf_tokenizer_json(gguf: &GgufFile) -> Result<serde_json::Value> {
    let tokenizer = from_gguf(gguf)?;
    let text = tokenizer
        .to_string(false)
        .map_err(|e| Error::format(&gguf.path, format!("cannot write tokenizer: {e}")))?;
    Ok(serde_json::from_str(&text).expect("tokenizers writes valid JSON"))
}

/// Whether whitespace after the special token `token` is dropped, as
/// llama.cpp's vocabulary loader decides by the file's `general.name`: for
/// Phi-3 (a name containing `phi-3` or `phi3`) after every special token but
/// `<unk>`, `<s>` and `<|endoftext|>`.
fn rstrips(gguf: &GgufFile, token: &str) -> bool {
    let name = gguf.meta_str("general.name").unwrap_or("").to_lowercase();
    (name.contains("phi-3") || name.contains("phi3"))
        && !["<unk>", "<s>", "<|endoftext|>"].contains(&token)
}

/// A `TemplateProcessing` post-processor that puts `token` (id `id`) in
/// front of every sequence, as llama.cpp adds BOS.
fn bos_template(token: &str, id: u32) -> serde_json::Value {
    serde_json::json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {token: {"id": token, "ids": [id], "tokens": [token]}}
    })
}

/// GGUF token types, one per token (normal where the file has none).
fn token_types(gguf: &GgufFile, n: usize) -> Vec<i32> {
    match gguf.content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(vs)) => vs.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => vec![1; n],
    }
}

/// The token string for `id` in a GGUF vocabulary.
pub fn gguf_token(gguf: &GgufFile, id: u32) -> Option<String> {
    match gguf.content.metadata.get("tokenizer.ggml.tokens") {
        Some(Value::Array(vs)) => vs.get(id as usize)?.to_string().ok().cloned(),
        _ => None,
    }
}

/// The strings of array metadata `key`.
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
