//! A GGUF's byte-level BPE vocabulary (`tokenizer.ggml.model = gpt2`, as
//! SmolLM2's) as a `tokenizer.json` document.

use serde_json::json;

use super::{string_array, token_types, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};
use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

/// The `tokenizer.json` document of a GGUF's byte-level BPE vocabulary
/// (`tokenizer.ggml.model = gpt2`): tokens and merges as llama.cpp reads them.
pub fn tokenizer_json(gguf: &GgufFile) -> Result<serde_json::Value> {
    let path = &gguf.path;
    let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
    let merges = string_array(gguf, "tokenizer.ggml.merges")?;
    let types = token_types(gguf, tokens.len());
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
