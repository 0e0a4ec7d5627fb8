//! What a GGUF must say to be a model normscope can run: a known
//! architecture, its `<arch>.*` hyperparameters as positive integers (or a
//! positive float for the norm epsilon), a `block_count` that agrees with the
//! `blk.N` tensors, and an embedding with at least as many rows as tokens.
//! (Tensor names and shapes are checked against the model layout at load.)

use std::collections::BTreeSet;

use super::gguf_header::{GgufLayout, MetaValue};
use crate::model::config::Architecture;

/// Keys (after `<arch>.`) that must hold a positive integer.
fn required_ints(arch: &str) -> &'static [&'static str] {
    match arch {
        "gemma3" => &[
            "embedding_length",
            "feed_forward_length",
            "block_count",
            "attention.head_count",
            "context_length",
            "attention.key_length",
            "attention.sliding_window",
        ],
        _ => &[
            "embedding_length",
            "feed_forward_length",
            "block_count",
            "attention.head_count",
            "context_length",
        ],
    }
}

/// Keys (after `<arch>.`) that, when present, must hold a positive integer.
const OPTIONAL_INTS: [&str; 5] = [
    "attention.key_length",
    "attention.head_count_kv",
    "rope.dimension_count",
    "attention.value_length",
    "attention.sliding_window_pattern",
];

/// Checks `layout` against what the loader reads.
pub fn check(layout: &GgufLayout) -> Result<(), String> {
    let known = Architecture::gguf_names();
    let arch = match layout.get("general.architecture") {
        Some(MetaValue::Str(a)) if known.contains(&a.as_str()) => a.as_str(),
        Some(MetaValue::Str(a)) => {
            return Err(format!(
                "general.architecture is `{a}`; supported: {}",
                known.join(", ")
            ))
        }
        _ => return Err("metadata key `general.architecture` (a string) is missing".into()),
    };
    let key = |k: &str| format!("{arch}.{k}");
    for k in required_ints(arch) {
        let k = key(k);
        positive_int(layout, &k)?.ok_or_else(|| format!("metadata key `{k}` is missing"))?;
    }
    for k in OPTIONAL_INTS {
        positive_int(layout, &key(k))?;
    }
    let eps = key("attention.layer_norm_rms_epsilon");
    match layout.get(&eps) {
        Some(MetaValue::Float(e)) if e.is_finite() && *e > 0.0 => {}
        Some(v) => {
            return Err(format!(
                "metadata `{eps}` is {v:?}; expected a positive float"
            ))
        }
        None => return Err(format!("metadata key `{eps}` is missing")),
    }
    let blocks = positive_int(layout, &key("block_count"))?.unwrap_or(0);
    check_blocks(layout, arch, blocks)?;
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

fn check_blocks(layout: &GgufLayout, arch: &str, blocks: u64) -> Result<(), String> {
    let seen: BTreeSet<u64> = layout
        .tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk.")?.split('.').next()?.parse().ok())
        .collect();
    if let Some(&max) = seen.last() {
        if max >= blocks {
            return Err(format!(
                "{arch}.block_count is {blocks} but there are tensors for block {max}"
            ));
        }
    }
    if let Some(missing) = (0..blocks).find(|b| !seen.contains(b)) {
        return Err(format!(
            "{arch}.block_count is {blocks} but block {missing} has no tensors"
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
