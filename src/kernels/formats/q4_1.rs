//! Q4_1: ggml block `d: f16, m: f16, qs: [u8; 16]`; value `j` is
//! `d * ((qs[j % 16] >> (4 * (j / 16))) & 15) + m`.

use super::block32::Block32;
use super::{join_nibbles, split_nibbles};
use crate::kernels::WeightFormat;

/// The Q4_1 format.
pub(crate) struct Q4_1;

impl Block32 for Q4_1 {
    const FORMAT: WeightFormat = WeightFormat::Q4_1;
    const BITS: u32 = 4;
    const OFFSET: i32 = 0;
    const HAS_MIN: bool = true;

    fn quants(block: &[u8]) -> [u8; 32] {
        let mut q = [0; 32];
        split_nibbles(&block[4..20], &mut q);
        q
    }

    fn set_quants(q: &[u8; 32], block: &mut [u8]) {
        join_nibbles(q, &mut block[4..20]);
    }
}
