//! What Q4_K and Q5_K share: a 256-value super-block `d: f16, dmin: f16,
//! scales: [u8; 12]` (eight 6-bit scales and eight 6-bit mins), then the
//! quants; value `c` of sub-block `j` (32 values) is
//! `d * sc_j * q - dmin * m_j`.
//!
//! Group block: `d[8] (f16), dmin[8] (f16), sc[4][8][2], m[4][8][2]` (the
//! scales and mins as bytes, pair `p` of row `r` holding sub-blocks `2p`
//! and `2p + 1`), then 8 interleaved units, one per sub-block.

use std::marker::PhantomData;

use super::interleave::{get_unit, put_unit, unit_bytes};
use super::{f16_at, idot, put_f16s, ActBlock, QuantFormat, GROUP};
use crate::kernels::act::ActKind;
use crate::kernels::WeightFormat;

/// Offset of the scale pairs in a group block.
pub(crate) const SC_AT: usize = 32;
/// Offset of the min pairs in a group block.
pub(crate) const MIN_AT: usize = 96;
/// Offset of the first unit in a group block.
pub(crate) const UNITS_AT: usize = 160;

/// A 256-value format with 6-bit scales and mins; [`QuantFormat`] follows.
pub(crate) trait ScaleMinK: Sync + 'static {
    /// The format.
    const FORMAT: WeightFormat;
    /// Bits per quant.
    const BITS: u32;

    /// The 256 quants of a ggml super-block.
    fn quants(block: &[u8]) -> [u8; 256];

    /// Writes quants back into a ggml super-block.
    fn set_quants(q: &[u8; 256], block: &mut [u8]);
}

/// ggml's `get_scale_min_k4` for all 8 sub-blocks: `(scales, mins)`.
pub(crate) fn scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let sc = std::array::from_fn(|j| {
        if j < 4 {
            s[j] & 63
        } else {
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)
        }
    });
    let m = std::array::from_fn(|j| {
        if j < 4 {
            s[j + 4] & 63
        } else {
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        }
    });
    (sc, m)
}

/// Inverse of [`scales_mins`].
fn pack_scales_mins(sc: &[u8; 8], m: &[u8; 8], s: &mut [u8]) {
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
    }
}

/// Writes `v[r][2p + i]` to `out[16 p + 2 r + i]`.
pub(crate) fn put_pairs<const N: usize>(v: &[[u8; N]; GROUP], out: &mut [u8]) {
    for (r, row) in v.iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            out[16 * (j / 2) + 2 * r + j % 2] = x;
        }
    }
}

/// Row `r` of [`put_pairs`]'s output.
pub(crate) fn get_pairs<const N: usize>(pairs: &[u8], r: usize) -> [u8; N] {
    std::array::from_fn(|j| pairs[16 * (j / 2) + 2 * r + j % 2])
}

/// The [`QuantFormat`] of a [`ScaleMinK`] description.
pub(crate) struct ScaleMin<F>(PhantomData<F>);

impl<F: ScaleMinK> QuantFormat for ScaleMin<F> {
    const FORMAT: WeightFormat = F::FORMAT;
    const GROUP_BYTES: usize = UNITS_AT + 8 * unit_bytes(F::BITS);
    const ACT: ActKind = ActKind::Q8K;

    fn repack(blocks: [&[u8]; GROUP], out: &mut [u8]) {
        put_f16s(&blocks, 0, &mut out[..16]);
        put_f16s(&blocks, 2, &mut out[16..32]);
        let sm = blocks.map(|b| scales_mins(&b[4..16]));
        put_pairs(&sm.map(|s| s.0), &mut out[SC_AT..MIN_AT]);
        put_pairs(&sm.map(|s| s.1), &mut out[MIN_AT..UNITS_AT]);
        let q = blocks.map(F::quants);
        let ub = unit_bytes(F::BITS);
        for u in 0..8 {
            let rows = q.map(|q| std::array::from_fn(|c| q[32 * u + c]));
            put_unit(&rows, F::BITS, &mut out[UNITS_AT + u * ub..]);
        }
    }

    fn unpack(group: &[u8], r: usize, out: &mut [u8]) {
        out[..2].copy_from_slice(&group[2 * r..2 * r + 2]);
        out[2..4].copy_from_slice(&group[16 + 2 * r..18 + 2 * r]);
        let sc = get_pairs::<8>(&group[SC_AT..], r);
        let m = get_pairs::<8>(&group[MIN_AT..], r);
        pack_scales_mins(&sc, &m, &mut out[4..16]);
        let ub = unit_bytes(F::BITS);
        let mut q = [0; 256];
        for (u, chunk) in q.chunks_exact_mut(32).enumerate() {
            chunk.copy_from_slice(&get_unit(&group[UNITS_AT + u * ub..], F::BITS, r));
        }
        F::set_quants(&q, out);
    }

    fn dequantize(block: &[u8], out: &mut [f32]) {
        let (d, dmin) = (f16_at(block), f16_at(&block[2..]));
        let (sc, m) = scales_mins(&block[4..16]);
        let q = F::quants(block);
        for (j, (out, q)) in out.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
            let (d1, m1) = (d * f32::from(sc[j]), dmin * f32::from(m[j]));
            for (o, &q) in out.iter_mut().zip(q) {
                *o = d1 * f32::from(q) - m1;
            }
        }
    }

    fn dot(block: &[u8], x: ActBlock<'_>) -> f32 {
        let (sc, m) = scales_mins(&block[4..16]);
        let q = F::quants(block);
        let (mut sumi, mut summ) = (0i32, 0i32);
        for (j, (q, x)) in q.chunks_exact(32).zip(x.qs.chunks_exact(32)).enumerate() {
            sumi += i32::from(sc[j]) * idot(q, 0, x);
            summ += i32::from(m[j]) * x.iter().map(|&v| i32::from(v)).sum::<i32>();
        }
        f16_at(block) * x.d * sumi as f32 - f16_at(&block[2..]) * x.d * summ as f32
    }
}
