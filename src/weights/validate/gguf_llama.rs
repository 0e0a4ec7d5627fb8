//! What a GGUF must say to be a LLaMA model normscope can run: the
//! architecture, the `llama.*` hyperparameters as positive integers (or a
//! positive float for the norm epsilon), a `block_count` that agrees with the
//! `blk.N` tensors, and an embedding with at least as many rows as tokens.

use std::collections::BTreeSet;

use super::gguf_header::{GgufLayout, MetaValue};

/// Keys that must hold a positive integer.
const REQUIRED_INTS: [&str; 5] = [
    "llama.embedding_length",
    "llama.feed_forward_length",
    "llama.block_count",
    "llama.attention.head_count",
    "llama.context_length",
];

/// Keys that, when present, must hold a positive integer.
const OPTIONAL_INTS: [&str; 2] = [
    "llama.attention.head_count_kv",
    "llama.rope.dimension_count",
];

/// Checks `layout` against what the llama loader reads.
pub fn check(layout: &GgufLayout) -> Result<(), String> {
    match layout.get("general.architecture") {
        Some(MetaValue::Str(a)) if a == "llama" => {}
        Some(MetaValue::Str(a)) => {
            return Err(format!(
                "general.architecture is `{a}`; only `llama` is supported"
            ))
        }
        _ => return Err("metadata key `general.architecture` (a string) is missing".into()),
    }
    for key in REQUIRED_INTS {
        positive_int(layout, key)?.ok_or_else(|| format!("metadata key `{key}` is missing"))?;
    }
    for key in OPTIONAL_INTS {
        positive_int(layout, key)?;
    }
    match layout.get("llama.attention.layer_norm_rms_epsilon") {
        Some(MetaValue::Float(e)) if e.is_finite() && *e > 0.0 => {}
        Some(v) => {
            return Err(format!(
            "metadata `llama.attention.layer_norm_rms_epsilon` is {v:?}; expected a positive float"
        ))
        }
        None => {
            return Err("metadata key `llama.attention.layer_norm_rms_epsilon` is missing".into())
        }
    }
    let blocks = positive_int(layout, "llama.block_count")?.unwrap_or(0);
    check_blocks(layout, blocks)?;
    check_vocab(layout)
}

/// The value of integer key `key` (`None` when absent); it must be in 1..=u32::MAX.
fn positive_int(layout: &GgufLayout, key: &str) -> Result<Option<u64>, String> {
    let v = match layout.get(key) {
        None => return Ok(None),
        // Types GgufFile reads as integers: any unsigned type, i32.
        Some(MetaValue::Unsigned(v, _)) => *v as i128,
        Some(MetaValue::Signed(v, 5)) => *v as i128,
        Some(other) => {
            return Err(format!(
                "metadata `{key}` is {other:?}; expected an unsigned integer or an i32"
            ))
        }
    };
    if !(1..=u32::MAX as i128).contains(&v) {
        return Err(format!(
            "metadata `{key}` is {v}; expected a positive integer below 2^32"
        ));
    }
    Ok(Some(v as u64))
}

fn check_blocks(layout: &GgufLayout, blocks: u64) -> Result<(), String> {
    let seen: BTreeSet<u64> = layout
        .tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk.")?.split('.').next()?.parse().ok())
        .collect();
    if let Some(&max) = seen.last() {
        if max >= blocks {
            return Err(format!(
                "llama.block_count is {blocks} but there are tensors for block {max}"
            ));
        }
    }
    if let Some(missing) = (0..blocks).find(|b| !seen.contains(b)) {
        return Err(format!(
            "llama.block_count is {blocks} but block {missing} has no tensors"
        ));
    }
    Ok(())
}

fn check_vocab(layout: &GgufLayout) -> Result<(), String> {
    let embd = layout
        .tensor("token_embd.weight")
        .ok_or("tensor `token_embd.weight` is missing")?;
    if embd.ne.len() != 2 {
        return Err(format!(
            "tensor `token_embd.weight` has shape {:?}; expected [vocab, embedding_length]",
            embd.shape()
        ));
    }
    let rows = embd.ne[1] as u64;
    if let Some(MetaValue::Array(_, n)) = layout.get("tokenizer.ggml.tokens") {
        if *n > rows {
            return Err(format!(
                "tokenizer.ggml.tokens has {n} tokens but token_embd.weight has only {rows} rows"
            ));
        }
    }
    Ok(())
}
