//! Q5_K: ggml super-block `d, dmin: f16, scales: [u8; 12], qh: [u8; 32],
//! qs: [u8; 128]`; the low 4 bits as in Q4_K, bit 4 of value `l` of
//! sub-block `j` in bit `j` of `qh[l]`. Scales: see [`super::kscale`].

use super::kscale::ScaleMinK;
use crate::kernels::WeightFormat;

/// The Q5_K format.
pub(crate) struct Q5K;

impl ScaleMinK for Q5K {
    const FORMAT: WeightFormat = WeightFormat::Q5_K;
    const BITS: u32 = 5;

    fn quants(block: &[u8]) -> [u8; 256] {
        let (qh, qs) = (&block[16..48], &block[48..176]);
        std::array::from_fn(|v| {
            let (j, l) = (v / 32, v % 32);
            let low = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0F;
            low | (((qh[l] >> j) & 1) << 4)
        })
    }

    fn set_quants(q: &[u8; 256], block: &mut [u8]) {
        let (qh, qs) = block[16..176].split_at_mut(32);
        for (l, h) in qh.iter_mut().enumerate() {
            *h = (0..8).fold(0, |h, j| h | ((q[32 * j + l] >> 4) << j));
        }
        for (i, b) in qs.iter_mut().enumerate() {
            let v = 64 * (i / 32) + i % 32;
            *b = (q[v] & 0x0F) | ((q[v + 32] & 0x0F) << 4);
        }
    }
}
