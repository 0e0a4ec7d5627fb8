//! Q6_K: ggml super-block `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16],
//! d: f16`; value `v` is `d * scales[v / 16] * (q_v - 32)` with 6-bit
//! `q_v` (see [`quants`] for where its bits live).
//!
//! Group block: `d[8] (f16), sc[8][8][2] (i8)` (pair `p` of row `r` holds
//! the scales of 16-value sub-blocks `2p` and `2p + 1`, i.e. of unit `p`),
//! then 8 interleaved 6-bit units of 32 values.

use super::interleave::{get_unit, put_unit, unit_bytes};
use super::kscale::{get_pairs, put_pairs};
use super::{f16_at, idot, put_f16s, ActBlock, QuantFormat, GROUP};
use crate::kernels::act::ActKind;
use crate::kernels::WeightFormat;

/// Offset of the scale pairs in a group block.
pub(crate) const SC_AT: usize = 16;
/// Offset of the first unit in a group block.
pub(crate) const UNITS_AT: usize = 144;

/// The Q6_K format.
pub(crate) struct Q6K;

/// The 256 6-bit quants: in each 128-value half `n`, for `l` in 0..32,
/// values `l, l + 32, l + 64, l + 96` take their low nibbles from
/// `ql[64 n + l]`, `ql[64 n + l + 32]` (low, low, high, high) and their
/// high bit pairs from bits 0, 2, 4, 6 of `qh[32 n + l]`.
fn quants(block: &[u8]) -> [u8; 256] {
    let (ql, qh) = (&block[..128], &block[128..192]);
    std::array::from_fn(|v| {
        let (n, i) = (v / 128, v % 128);
        let (quarter, l) = (i / 32, i % 32);
        let low = (ql[64 * n + l + 32 * (quarter % 2)] >> (4 * (quarter / 2))) & 0x0F;
        low | (((qh[32 * n + l] >> (2 * quarter)) & 3) << 4)
    })
}

/// Inverse of [`quants`].
fn set_quants(q: &[u8; 256], block: &mut [u8]) {
    block[..192].fill(0);
    for (v, &q) in q.iter().enumerate() {
        let (n, i) = (v / 128, v % 128);
        let (quarter, l) = (i / 32, i % 32);
        block[64 * n + l + 32 * (quarter % 2)] |= (q & 0x0F) << (4 * (quarter / 2));
        block[128 + 32 * n + l] |= (q >> 4) << (2 * quarter);
    }
}

impl QuantFormat for Q6K {
    const FORMAT: WeightFormat = WeightFormat::Q6_K;
    const GROUP_BYTES: usize = UNITS_AT + 8 * unit_bytes(6);
    const ACT: ActKind = ActKind::Q8K;

    fn repack(blocks: [&[u8]; GROUP], out: &mut [u8]) {
        put_f16s(&blocks, 208, &mut out[..16]);
        let sc = blocks.map(|b| std::array::from_fn::<u8, 16, _>(|i| b[192 + i]));
        put_pairs(&sc, &mut out[SC_AT..UNITS_AT]);
        let q = blocks.map(quants);
        for u in 0..8 {
            let rows = q.map(|q| std::array::from_fn(|c| q[32 * u + c]));
            put_unit(&rows, 6, &mut out[UNITS_AT + u * unit_bytes(6)..]);
        }
    }

    fn unpack(group: &[u8], r: usize, out: &mut [u8]) {
        out[208..210].copy_from_slice(&group[2 * r..2 * r + 2]);
        out[192..208].copy_from_slice(&get_pairs::<16>(&group[SC_AT..], r));
        let mut q = [0; 256];
        for (u, chunk) in q.chunks_exact_mut(32).enumerate() {
            chunk.copy_from_slice(&get_unit(&group[UNITS_AT + u * unit_bytes(6)..], 6, r));
        }
        set_quants(&q, out);
    }

    fn dequantize(block: &[u8], out: &mut [f32]) {
        let d = f16_at(&block[208..]);
        for (v, (o, q)) in out.iter_mut().zip(quants(block)).enumerate() {
            let sc = f32::from(block[192 + v / 16] as i8);
            *o = d * sc * (i32::from(q) - 32) as f32;
        }
    }

    fn dot(block: &[u8], x: ActBlock<'_>) -> f32 {
        let q = quants(block);
        let sumi: i32 = q
            .chunks_exact(16)
            .zip(x.qs.chunks_exact(16))
            .enumerate()
            .map(|(i, (q, x))| i32::from(block[192 + i] as i8) * idot(q, 32, x))
            .sum();
        f16_at(&block[208..]) * x.d * sumi as f32
    }
}
