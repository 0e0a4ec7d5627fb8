//! Q5_0: ggml block `d: f16, qh: u32, qs: [u8; 16]`; value `j` is
//! `d * (q_j - 16)` with the low 4 bits of `q_j` as in Q4_0 and bit 4 in
//! bit `j` of `qh`.

use super::block32::Block32;
use super::{add_high_bits, high_bits, join_nibbles, split_nibbles};
use crate::kernels::WeightFormat;

/// The Q5_0 format.
pub(crate) struct Q5_0;

impl Block32 for Q5_0 {
    const FORMAT: WeightFormat = WeightFormat::Q5_0;
    const BITS: u32 = 5;
    const OFFSET: i32 = 16;
    const HAS_MIN: bool = false;

    fn quants(block: &[u8]) -> [u8; 32] {
        let mut q = [0; 32];
        split_nibbles(&block[6..22], &mut q);
        add_high_bits(&block[2..6], &mut q);
        q
    }

    fn set_quants(q: &[u8; 32], block: &mut [u8]) {
        block[2..6].copy_from_slice(&high_bits(q));
        join_nibbles(&q.map(|v| v & 0x0F), &mut block[6..22]);
    }
}
