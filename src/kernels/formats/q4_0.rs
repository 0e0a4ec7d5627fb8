//! Q4_0: ggml block `d: f16, qs: [u8; 16]`; value `j` is
//! `d * ((qs[j % 16] >> (4 * (j / 16))) & 15) - 8)`.

use super::block32::Block32;
use super::{join_nibbles, split_nibbles};
use crate::kernels::WeightFormat;

/// The Q4_0 format.
pub(crate) struct Q4_0;

impl Block32 for Q4_0 {
    const FORMAT: WeightFormat = WeightFormat::Q4_0;
    const BITS: u32 = 4;
    const OFFSET: i32 = 8;
    const HAS_MIN: bool = false;

    fn quants(block: &[u8]) -> [u8; 32] {
        let mut q = [0; 32];
        split_nibbles(&block[2..18], &mut q);
        q
    }

    fn set_quants(q: &[u8; 32], block: &mut [u8]) {
        join_nibbles(q, &mut block[2..18]);
    }
}
