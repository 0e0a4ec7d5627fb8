//! Tiles of the 32-value formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against
//! Q8_0 / Q8_1 activations. Per block and activation row:
//! `acc += (d_w d_x) (sum(q x) - OFFSET sum(x)) [+ m_w d_x sum(x)]`, the
//! integer part exact in 32-bit lanes (one lane per weight row).

use std::arch::x86_64::*;
use std::array;

use super::unit::{act_units, decode, dot_unit, load_f16x8};
use super::{Simd, SimdFormat};
use crate::kernels::act::{QuantActs, QK};
use crate::kernels::formats::block32::{unit_at, Block32, Blocks};
use crate::kernels::formats::QuantFormat;

impl<F: Block32> SimdFormat for Blocks<F> {
    #[inline(always)]
    fn tile<S: Simd, const A: usize>(
        s: S,
        group: &[u8],
        acts: &QuantActs,
        a0: usize,
    ) -> [__m256; A] {
        let cols = acts.cols;
        let nb = cols / QK;
        let xq: [&[[i8; 32]]; A] = array::from_fn(|a| act_units(acts, a0 + a));
        let xd: [&[f32]; A] = array::from_fn(|a| &acts.d[(a0 + a) * nb..][..nb]);
        let xs: [&[i16]; A] = array::from_fn(|a| &acts.sums[(a0 + a) * nb..][..nb]);
        // SAFETY: AVX2/FMA are part of every entry point's features.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); A];
            for (b, blk) in group.chunks_exact(Self::GROUP_BYTES).enumerate() {
                let w = decode(&blk[unit_at::<F>()..], F::BITS);
                let mut isum = [_mm256_setzero_si256(); A];
                for a in 0..A {
                    isum[a] = dot_unit(s, &w, &xq[a][b], 0..8, F::BITS == 8);
                }
                let dw = load_f16x8(blk);
                for a in 0..A {
                    let sum = i32::from(xs[a][b]);
                    let mut isum = isum[a];
                    if F::OFFSET != 0 {
                        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(F::OFFSET * sum));
                    }
                    let dx = xd[a][b];
                    let scale = _mm256_mul_ps(dw, _mm256_set1_ps(dx));
                    acc[a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc[a]);
                    if F::HAS_MIN {
                        let mw = load_f16x8(&blk[16..]);
                        acc[a] = _mm256_fmadd_ps(mw, _mm256_set1_ps(dx * sum as f32), acc[a]);
                    }
                }
            }
            acc
        }
    }
}
