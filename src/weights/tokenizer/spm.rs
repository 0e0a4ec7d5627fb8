//! A GGUF's SentencePiece vocabulary (`tokenizer.ggml.model = llama`, as
//! Gemma's: tokens with scores, byte fallback) as a `tokenizers` BPE model,
//! the way transformers converts a SentencePiece model: merges are every split
//! of a token into two tokens, ranked by the merged token's score (higher
//! first), which is the order llama.cpp's SentencePiece tokenizer merges in.
//! Spaces become `▁` (with one prepended when `add_space_prefix` is set);
//! control tokens are special, user-defined ones are matched as written.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use serde_json::json;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, Tokenizer};

use super::{rstrips, string_array, token_types, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};
use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

/// The tokenizer of a SentencePiece GGUF vocabulary.
pub fn tokenizer(gguf: &GgufFile) -> Result<Tokenizer> {
    let path = &gguf.path;
    let bad = |msg: String| Error::format(path, msg);
    let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
    let scores = match gguf.content.metadata.get("tokenizer.ggml.scores") {
        Some(Value::Array(vs)) if vs.len() == tokens.len() => vs
            .iter()
            .map(|v| {
                v.to_f32()
                    .map_err(|_| bad("tokenizer.ggml.scores holds a non-float".into()))
            })
            .collect::<Result<Vec<f32>>>()?,
        Some(Value::Array(vs)) => {
            return Err(bad(format!(
                "tokenizer.ggml.scores has {} entries for {} tokens",
                vs.len(),
                tokens.len()
            )))
        }
        _ => return Err(bad(
            "tokenizer.ggml.scores is missing: a SentencePiece vocabulary needs its token scores"
                .into(),
        )),
    };
    let types = token_types(gguf, tokens.len());
    let flag = |key: &str| {
        gguf.content
            .metadata
            .get(key)
            .and_then(|v| v.to_bool().ok())
    };
    let id_token = |key: &str| {
        let id = gguf.meta_usize(key).ok()?;
        tokens.get(id).cloned()
    };
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges(&tokens, &scores))
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = id_token("tokenizer.ggml.unknown_token_id") {
        builder = builder.unk_token(unk);
    }
    let model = builder
        .build()
        .map_err(|e| bad(format!("cannot build the SentencePiece tokenizer: {e}")))?;
    let mut tok = Tokenizer::new(model);
    let prefix = flag("tokenizer.ggml.add_space_prefix").unwrap_or(true);
    let replace = json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"});
    let normalizer = if prefix {
        json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, replace]})
    } else {
        replace
    };
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    tok.with_normalizer(Some(piece::<NormalizerWrapper>(path, normalizer)?))
        .map_err(|e| bad(format!("cannot build the tokenizer: {e}")))?;
    tok.with_decoder(Some(piece::<DecoderWrapper>(
        path,
        json!({"type": "Sequence", "decoders": decoders}),
    )?));
    if let (Some(true), Some(bos)) = (
        flag("tokenizer.ggml.add_bos_token"),
        id_token("tokenizer.ggml.bos_token_id"),
    ) {
        let bos_id = gguf.meta_usize("tokenizer.ggml.bos_token_id")? as u32;
        tok.with_post_processor(Some(piece::<PostProcessorWrapper>(
            path,
            super::bos_template(&bos, bos_id),
        )?));
    }
    let added = |ty: i32, special: bool| {
        tokens
            .iter()
            .zip(&types)
            .filter(move |(_, &t)| t == ty)
            .map(move |(t, _)| {
                AddedToken::from(t.clone(), special)
                    .normalized(false)
                    .rstrip(rstrips(gguf, t))
            })
            .collect::<Vec<_>>()
    };
    tok.add_special_tokens(added(TOKEN_TYPE_CONTROL, true))
        .map_err(|e| bad(format!("cannot add control tokens: {e}")))?;
    tok.add_tokens(added(TOKEN_TYPE_USER_DEFINED, false))
        .map_err(|e| bad(format!("cannot add user-defined tokens: {e}")))?;
    Ok(tok)
}

/// A tokenizer component (normalizer, decoder, ...) from its JSON form.
fn piece<T: serde::de::DeserializeOwned>(path: &Path, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| Error::format(path, format!("cannot build the tokenizer: {e}")))
}

/// One candidate merge: the merged token's score, the parts' lengths in
/// characters, the merged token's id, and the parts' ids.
struct Merge {
    score: f32,
    chars: (usize, usize),
    merged: usize,
    parts: (usize, usize),
}

/// Every `(left, right)` pair of tokens whose concatenation is a token, in
/// the order transformers' `SentencePieceExtractor` ranks them: the merged
/// token's score highest first, then the longer left part, then the longer
/// right part, then vocabulary order.
fn merges(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    let id: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut found: Vec<Merge> = Vec::new();
    for (merged, token) in tokens.iter().enumerate() {
        for (n, (cut, _)) in token.char_indices().enumerate().skip(1) {
            let (l, r) = token.split_at(cut);
            if let (Some(&li), Some(&ri)) = (id.get(l), id.get(r)) {
                found.push(Merge {
                    score: scores[merged],
                    chars: (n, r.chars().count()),
                    merged,
                    parts: (li, ri),
                });
            }
        }
    }
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.chars.0.cmp(&a.chars.0))
            .then(b.chars.1.cmp(&a.chars.1))
            .then(a.merged.cmp(&b.merged))
            .then(a.parts.cmp(&b.parts))
    });
    found
        .into_iter()
        .map(|m| (tokens[m.parts.0].clone(), tokens[m.parts.1].clone()))
        .collect()
}
