//! Q4_K: ggml super-block `d, dmin: f16, scales: [u8; 12], qs: [u8; 128]`;
//! byte `32 c + l` of `qs` holds value `l` of sub-block `2c` (low nibble)
//! and of sub-block `2c + 1` (high nibble). Scales: see [`super::kscale`].

use super::kscale::ScaleMinK;
use crate::kernels::WeightFormat;

/// The Q4_K format.
pub(crate) struct Q4K;

impl ScaleMinK for Q4K {
    const FORMAT: WeightFormat = WeightFormat::Q4_K;
    const BITS: u32 = 4;

    fn quants(block: &[u8]) -> [u8; 256] {
        let qs = &block[16..144];
        std::array::from_fn(|v| (qs[32 * (v / 64) + v % 32] >> (4 * ((v / 32) % 2))) & 0x0F)
    }

    fn set_quants(q: &[u8; 256], block: &mut [u8]) {
        for (i, b) in block[16..144].iter_mut().enumerate() {
            let v = 64 * (i / 32) + i % 32;
            *b = q[v] | (q[v + 32] << 4);
        }
    }
}
