//! Q8_0: ggml block `d: f16, qs: [i8; 32]`; value `j` is `d * qs[j]`.
//! Quants are held as `qs + 128` (unsigned, offset 128) so that every
//! format feeds the same unsigned-by-signed byte products.

use super::block32::Block32;
use crate::kernels::WeightFormat;

/// The Q8_0 format.
pub(crate) struct Q8_0;

impl Block32 for Q8_0 {
    const FORMAT: WeightFormat = WeightFormat::Q8_0;
    const BITS: u32 = 8;
    const OFFSET: i32 = 128;
    const HAS_MIN: bool = false;

    fn quants(block: &[u8]) -> [u8; 32] {
        std::array::from_fn(|j| block[2 + j] ^ 0x80)
    }

    fn set_quants(q: &[u8; 32], block: &mut [u8]) {
        for (b, q) in block[2..34].iter_mut().zip(q) {
            *b = q ^ 0x80;
        }
    }
}
