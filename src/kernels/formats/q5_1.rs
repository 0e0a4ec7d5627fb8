//! Q5_1: ggml block `d: f16, m: f16, qh: u32, qs: [u8; 16]`; value `j` is
//! `d * q_j + m` with `q_j` built as in Q5_0.

use super::block32::Block32;
use super::{add_high_bits, high_bits, join_nibbles, split_nibbles};
use crate::kernels::WeightFormat;

/// The Q5_1 format.
pub(crate) struct Q5_1;

impl Block32 for Q5_1 {
    const FORMAT: WeightFormat = WeightFormat::Q5_1;
    const BITS: u32 = 5;
    const OFFSET: i32 = 0;
    const HAS_MIN: bool = true;

    fn quants(block: &[u8]) -> [u8; 32] {
        let mut q = [0; 32];
        split_nibbles(&block[8..24], &mut q);
        add_high_bits(&block[4..8], &mut q);
        q
    }

    fn set_quants(q: &[u8; 32], block: &mut [u8]) {
        block[4..8].copy_from_slice(&high_bits(q));
        join_nibbles(&q.map(|v| v & 0x0F), &mut block[8..24]);
    }
}
