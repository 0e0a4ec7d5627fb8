//! The ggml block formats: each file holds one format's block layout, its
//! repacked layout (groups of [`GROUP`] interleaved rows), ggml's
//! dequantization and a scalar reference dot product.
//!
//! Repacking, shared by every quantized format: the rows of a matrix are
//! taken [`GROUP`] at a time, and block `b` of the group's 8 rows is stored
//! as one "group block": the 8 rows' scales side by side, then their quants
//! interleaved so that one 32-byte load holds 4 consecutive values of each
//! of the 8 rows (see [`interleave`]). A SIMD kernel then computes 8 rows'
//! dot products in the 8 lanes of one register, with no horizontal sums.

pub(crate) mod block32;
pub(crate) mod dense;
pub(crate) mod interleave;
pub(crate) mod kscale;
pub(crate) mod q4_0;
pub(crate) mod q4_1;
pub(crate) mod q4_k;
pub(crate) mod q5_0;
pub(crate) mod q5_1;
pub(crate) mod q5_k;
pub(crate) mod q6_k;
pub(crate) mod q8_0;

use half::f16;

use super::act::{ActKind, QuantActs};
use super::WeightFormat;

/// Weight rows interleaved in one group.
pub(crate) const GROUP: usize = 8;

/// One activation block as a scalar dot product sees it.
pub(crate) struct ActBlock<'a> {
    /// The block's quants (as many as the weight block has values).
    pub(crate) qs: &'a [i8],
    /// Their scale (Q8_K: the super-block's; Q8: the block's).
    pub(crate) d: f32,
}

impl QuantActs {
    /// Block `b` (of `values` values) of row `a`.
    pub(crate) fn block(&self, a: usize, b: usize, values: usize, kind: ActKind) -> ActBlock<'_> {
        let start = a * self.cols + b * values;
        ActBlock {
            qs: &self.qs[start..start + values],
            d: self.d[start / kind.block()],
        }
    }
}

/// A ggml quantized block format and its repacked group layout.
pub(crate) trait QuantFormat: Sync + 'static {
    /// The format.
    const FORMAT: WeightFormat;
    /// Values per block.
    const VALUES: usize = Self::FORMAT.block_values();
    /// Bytes per ggml block.
    const BYTES: usize = Self::FORMAT.block_bytes();
    /// Bytes per group block ([`GROUP`] rows' block `b`, repacked).
    const GROUP_BYTES: usize;
    /// The activation quantization ggml pairs with this format.
    const ACT: ActKind;

    /// Repacks block `b` of 8 rows (`blocks[r]`, ggml layout) into `out`.
    fn repack(blocks: [&[u8]; GROUP], out: &mut [u8]);

    /// Writes row `r`'s ggml block from a group block (inverse of `repack`).
    fn unpack(group: &[u8], r: usize, out: &mut [u8]);

    /// ggml's `dequantize_row_*` for one block.
    fn dequantize(block: &[u8], out: &mut [f32]);

    /// ggml's scalar `vec_dot` for one block: integer sums, then scales.
    fn dot(block: &[u8], x: ActBlock<'_>) -> f32;
}

/// The little-endian f16 at `b[0..2]` as f32.
pub(crate) fn f16_at(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Copies the 2-byte field at `src[at..]` of each row's block into
/// `out[2 r..]` (8 rows' f16 scales side by side).
pub(crate) fn put_f16s(blocks: &[&[u8]; GROUP], at: usize, out: &mut [u8]) {
    for (r, b) in blocks.iter().enumerate() {
        out[2 * r..2 * r + 2].copy_from_slice(&b[at..at + 2]);
    }
}

/// Integer dot product of `q - offset` with `x` (exact).
pub(crate) fn idot(q: &[u8], offset: i32, x: &[i8]) -> i32 {
    q.iter()
        .zip(x)
        .map(|(&q, &x)| (i32::from(q) - offset) * i32::from(x))
        .sum()
}

/// 4-bit pairs as ggml stores a 32-value block: byte `j` holds value `j`
/// (low nibble) and value `j + 16` (high nibble).
pub(crate) fn split_nibbles(qs: &[u8], q: &mut [u8; 32]) {
    for (j, &b) in qs[..16].iter().enumerate() {
        q[j] = b & 0x0F;
        q[j + 16] = b >> 4;
    }
}

/// Inverse of [`split_nibbles`].
pub(crate) fn join_nibbles(q: &[u8; 32], qs: &mut [u8]) {
    for j in 0..16 {
        qs[j] = q[j] | (q[j + 16] << 4);
    }
}

/// ggml's 32-bit `qh` of Q5_0 / Q5_1: bit `j` is bit 4 of value `j`.
pub(crate) fn add_high_bits(qh: &[u8], q: &mut [u8; 32]) {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    for (j, q) in q.iter_mut().enumerate() {
        *q |= (((h >> j) & 1) as u8) << 4;
    }
}

/// Inverse of [`add_high_bits`]: the `qh` word of `q`.
pub(crate) fn high_bits(q: &[u8; 32]) -> [u8; 4] {
    let h = q
        .iter()
        .enumerate()
        .fold(0u32, |h, (j, &q)| h | (u32::from(q >> 4) << j));
    h.to_le_bytes()
}
