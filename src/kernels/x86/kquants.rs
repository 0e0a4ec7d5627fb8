//! Tiles of the k-quants against Q8_K activations. Integer sums stay exact
//! over a whole 256-value super-block (sub-block sums times their 6- or
//! 8-bit scales with `vpmulld`, mins and Q6_K's offset with `vpmaddwd`
//! against the activations' block sums); then one f32 multiply-add per
//! super-block and activation row, as in ggml.

use std::arch::x86_64::*;
use std::array;

use super::unit::{act_units, bcast_pair, decode, dot_unit, load16, load_f16x8};
use super::{Simd, SimdFormat};
use crate::kernels::act::{QuantActs, QK, QK_K};
use crate::kernels::formats::interleave::unit_bytes;
use crate::kernels::formats::kscale::{ScaleMin, ScaleMinK, MIN_AT, SC_AT, UNITS_AT};
use crate::kernels::formats::q6_k::{self, Q6K};
use crate::kernels::formats::QuantFormat;

/// Activation rows `a0..a0 + A`: quants, super-block scales, and the sums
/// per `per` values.
/// Per activation row: 32-value units, super-block scales, block sums.
type ActRows<'a, const A: usize> = ([&'a [[i8; 32]]; A], [&'a [f32]; A], [&'a [i16]; A]);

#[inline(always)]
fn act_rows<'a, const A: usize>(
    acts: &'a QuantActs,
    a0: usize,
    sums: &'a [i16],
    per: usize,
) -> ActRows<'a, A> {
    let cols = acts.cols;
    (
        array::from_fn(|a| act_units(acts, a0 + a)),
        array::from_fn(|a| &acts.d[(a0 + a) * cols / QK_K..][..cols / QK_K]),
        array::from_fn(|a| &sums[(a0 + a) * cols / per..][..cols / per]),
    )
}

impl<F: ScaleMinK> SimdFormat for ScaleMin<F> {
    #[inline(always)]
    fn tile<S: Simd, const A: usize>(
        s: S,
        group: &[u8],
        acts: &QuantActs,
        a0: usize,
    ) -> [__m256; A] {
        let (xq, xd, xs) = act_rows::<A>(acts, a0, &acts.sums, QK);
        let ub = unit_bytes(F::BITS);
        // SAFETY: AVX2/FMA are part of every entry point's features.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); A];
            for (sb, blk) in group.chunks_exact(Self::GROUP_BYTES).enumerate() {
                let mut isum = [_mm256_setzero_si256(); A];
                for p in 0..4 {
                    // Lane r: scales of sub-blocks 2p (low half) and 2p + 1.
                    let sc = _mm256_cvtepu8_epi16(load16(&blk[SC_AT + 16 * p..]));
                    let scales = [
                        _mm256_and_si256(sc, _mm256_set1_epi32(0xFFFF)),
                        _mm256_srli_epi32::<16>(sc),
                    ];
                    for (h, scale) in scales.into_iter().enumerate() {
                        let j = 2 * p + h;
                        let w = decode(&blk[UNITS_AT + j * ub..], F::BITS);
                        for a in 0..A {
                            let d = dot_unit(s, &w, &xq[a][sb * 8 + j], 0..8, false);
                            isum[a] = _mm256_add_epi32(isum[a], _mm256_mullo_epi32(d, scale));
                        }
                    }
                }
                let (dw, dmin) = (load_f16x8(blk), load_f16x8(&blk[16..]));
                for a in 0..A {
                    let mut mins = _mm256_setzero_si256();
                    for p in 0..4 {
                        let m = _mm256_cvtepu8_epi16(load16(&blk[MIN_AT + 16 * p..]));
                        let x = bcast_pair(xs[a], sb * 8 + 2 * p);
                        mins = _mm256_add_epi32(mins, _mm256_madd_epi16(m, x));
                    }
                    let dx = _mm256_set1_ps(xd[a][sb]);
                    acc[a] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[a]), _mm256_mul_ps(dw, dx), acc[a]);
                    acc[a] =
                        _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(dmin, dx), acc[a]);
                }
            }
            acc
        }
    }
}

impl SimdFormat for Q6K {
    #[inline(always)]
    fn tile<S: Simd, const A: usize>(
        s: S,
        group: &[u8],
        acts: &QuantActs,
        a0: usize,
    ) -> [__m256; A] {
        let (xq, xd, xs) = act_rows::<A>(acts, a0, &acts.bsums, 16);
        let ub = unit_bytes(6);
        // SAFETY: AVX2/FMA are part of every entry point's features.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); A];
            for (sb, blk) in group.chunks_exact(Self::GROUP_BYTES).enumerate() {
                let mut isum = [_mm256_setzero_si256(); A];
                // sum(scale * x) over the sub-blocks, for the offset 32.
                let mut corr = [_mm256_setzero_si256(); A];
                for j in 0..8 {
                    // Lane r: scales of 16-value sub-blocks 2j (low) and 2j + 1.
                    let sc = _mm256_cvtepi8_epi16(load16(&blk[q6_k::SC_AT + 16 * j..]));
                    let lo = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(sc));
                    let hi = _mm256_srai_epi32::<16>(sc);
                    let w = decode(&blk[q6_k::UNITS_AT + j * ub..], 6);
                    for a in 0..A {
                        let x = &xq[a][sb * 8 + j];
                        let (dlo, dhi) = (
                            dot_unit(s, &w, x, 0..4, false),
                            dot_unit(s, &w, x, 4..8, false),
                        );
                        let scaled = _mm256_add_epi32(
                            _mm256_mullo_epi32(dlo, lo),
                            _mm256_mullo_epi32(dhi, hi),
                        );
                        isum[a] = _mm256_add_epi32(isum[a], scaled);
                        let x = bcast_pair(xs[a], sb * 16 + 2 * j);
                        corr[a] = _mm256_add_epi32(corr[a], _mm256_madd_epi16(sc, x));
                    }
                }
                let dw = load_f16x8(blk);
                for a in 0..A {
                    let sumi = _mm256_sub_epi32(isum[a], _mm256_slli_epi32::<5>(corr[a]));
                    let scale = _mm256_mul_ps(dw, _mm256_set1_ps(xd[a][sb]));
                    acc[a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), scale, acc[a]);
                }
            }
            acc
        }
    }
}
