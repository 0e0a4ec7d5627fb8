//! What the 32-value formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) share: a ggml
//! block `d: f16, [m: f16], quants`, value `d * (q - OFFSET)` or
//! `d * q + m`, and a group block `d[8], [m[8]], unit` (all f16 scales of
//! the 8 rows side by side, then the interleaved quants).

use std::marker::PhantomData;

use super::interleave::{get_unit, put_unit, unit_bytes};
use super::{f16_at, idot, put_f16s, ActBlock, QuantFormat, GROUP};
use crate::kernels::act::ActKind;
use crate::kernels::WeightFormat;

/// A 32-value ggml format, described by its fields; [`QuantFormat`] follows.
pub(crate) trait Block32: Sync + 'static {
    /// The format.
    const FORMAT: WeightFormat;
    /// Bits per quant (8 for Q8_0, whose quants are stored as `q + 128`).
    const BITS: u32;
    /// Subtracted from every quant (0 for the formats with a min).
    const OFFSET: i32;
    /// Whether the block has a min `m` after `d`.
    const HAS_MIN: bool;

    /// The block's 32 quants, unsigned (`q + OFFSET` for signed ones).
    fn quants(block: &[u8]) -> [u8; 32];

    /// Writes quants back into a ggml block whose scales are in place.
    fn set_quants(q: &[u8; 32], block: &mut [u8]);
}

/// Byte offset of the interleaved quants in a group block of `F`.
pub(crate) const fn unit_at<F: Block32>() -> usize {
    if F::HAS_MIN {
        32
    } else {
        16
    }
}

/// The [`QuantFormat`] of a [`Block32`] description.
pub(crate) struct Blocks<F>(PhantomData<F>);

impl<F: Block32> QuantFormat for Blocks<F> {
    const FORMAT: WeightFormat = F::FORMAT;
    const GROUP_BYTES: usize = unit_at::<F>() + unit_bytes(F::BITS);
    const ACT: ActKind = ActKind::Q8;

    fn repack(blocks: [&[u8]; GROUP], out: &mut [u8]) {
        put_f16s(&blocks, 0, &mut out[..16]);
        if F::HAS_MIN {
            put_f16s(&blocks, 2, &mut out[16..32]);
        }
        let q = blocks.map(F::quants);
        put_unit(&q, F::BITS, &mut out[unit_at::<F>()..]);
    }

    fn unpack(group: &[u8], r: usize, out: &mut [u8]) {
        out[..2].copy_from_slice(&group[2 * r..2 * r + 2]);
        if F::HAS_MIN {
            out[2..4].copy_from_slice(&group[16 + 2 * r..18 + 2 * r]);
        }
        F::set_quants(&get_unit(&group[unit_at::<F>()..], F::BITS, r), out);
    }

    fn dequantize(block: &[u8], out: &mut [f32]) {
        let d = f16_at(block);
        let m = if F::HAS_MIN { f16_at(&block[2..]) } else { 0.0 };
        for (o, q) in out.iter_mut().zip(F::quants(block)) {
            *o = if F::HAS_MIN {
                f32::from(q) * d + m
            } else {
                (i32::from(q) - F::OFFSET) as f32 * d
            };
        }
    }

    fn dot(block: &[u8], x: ActBlock<'_>) -> f32 {
        let sumi = idot(&F::quants(block), F::OFFSET, x.qs);
        let dot = f16_at(block) * x.d * sumi as f32;
        if F::HAS_MIN {
            let s: i32 = x.qs.iter().map(|&q| i32::from(q)).sum();
            dot + f16_at(&block[2..]) * (x.d * s as f32)
        } else {
            dot
        }
    }
}
