//! Limits on a resolved [`Config`] that keep every size the model computes
//! from it (projection widths, tensor element counts, RoPE tables) from
//! overflowing or asking for an absurd allocation before any tensor is read.

use crate::model::Config;

/// Largest context length accepted (RoPE tables are built for all of it).
pub const MAX_CONTEXT: usize = 1 << 24;
/// Largest number of RoPE table entries (positions x head_dim / 2).
pub const MAX_ROPE_ENTRIES: usize = 1 << 28;

/// Checks `cfg`; the error names the field.
pub fn check(cfg: &Config) -> Result<(), String> {
    let product = |a: usize, b: usize, what: &str| {
        a.checked_mul(b)
            .filter(|&p| p <= i64::MAX as usize)
            .ok_or_else(|| format!("{what} ({a} x {b}) overflows"))
    };
    product(
        cfg.num_heads,
        cfg.head_dim,
        "num_attention_heads x head_dim",
    )
    .and_then(|q| product(q, cfg.hidden_size, "attention projection size"))?;
    product(cfg.vocab_size, cfg.hidden_size, "vocab_size x hidden_size")?;
    product(
        cfg.intermediate_size,
        cfg.hidden_size,
        "intermediate_size x hidden_size",
    )?;
    if cfg.max_position_embeddings > MAX_CONTEXT {
        return Err(format!(
            "max_position_embeddings {} exceeds the supported maximum {MAX_CONTEXT}",
            cfg.max_position_embeddings
        ));
    }
    let rope = cfg.max_position_embeddings.saturating_mul(cfg.head_dim / 2);
    if rope > MAX_ROPE_ENTRIES {
        return Err(format!(
            "max_position_embeddings {} x head_dim {} / 2 needs {rope} RoPE table entries (at most {MAX_ROPE_ENTRIES})",
            cfg.max_position_embeddings, cfg.head_dim
        ));
    }
    Ok(())
}
