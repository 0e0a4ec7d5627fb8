//! Loads shared by the quantized tiles: interleaved units (see
//! `formats::interleave`), 8 f16 scales, broadcast activation bytes.
//!
//! Every function is `#[inline(always)]` and only called from the kernel
//! bodies, which run inside `#[target_feature]` entry points.

use std::arch::x86_64::*;
use std::ops::Range;

use super::Simd;
use crate::kernels::act::QuantActs;

/// 32 bytes at `b[..32]`.
#[inline(always)]
pub(super) fn load32(b: &[u8]) -> __m256i {
    assert!(b.len() >= 32);
    // SAFETY: 32 readable bytes; `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// 16 bytes at `b[..16]`.
#[inline(always)]
pub(super) fn load16(b: &[u8]) -> __m128i {
    assert!(b.len() >= 16);
    // SAFETY: 16 readable bytes; `loadu` needs no alignment.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// The 8 little-endian f16 at `b[..16]` as f32 lanes.
#[inline(always)]
pub(super) fn load_f16x8(b: &[u8]) -> __m256 {
    // SAFETY: F16C is part of every entry point's features.
    unsafe { _mm256_cvtph_ps(load16(b)) }
}

/// `sum over k in ks of W_k * (x[4k..4k + 4] in every lane)`: the dot of
/// each of 8 rows with the unit's activations `x` (`wide`: any byte `W_k`,
/// else below 128). `ks` and `wide` are constants after inlining.
#[inline(always)]
pub(super) fn dot_unit<S: Simd>(
    s: S,
    w: &[__m256i; 8],
    x: &[i8; 32],
    ks: Range<usize>,
    wide: bool,
) -> __m256i {
    // SAFETY: AVX is part of every entry point's features.
    let mut acc = unsafe { _mm256_setzero_si256() };
    for k in ks {
        assert!(k < 8);
        // SAFETY: `4k + 4 <= 32` bytes of `x`; `read_unaligned` needs no
        // alignment, and AVX is part of every entry point's features.
        let xk = unsafe { _mm256_set1_epi32(x.as_ptr().add(4 * k).cast::<i32>().read_unaligned()) };
        acc = if wide {
            s.dot4_wide(acc, w[k], xk)
        } else {
            s.dot4(acc, w[k], xk)
        };
    }
    acc
}

/// Row `a`'s quants of `acts` in 32-value units.
#[inline(always)]
pub(super) fn act_units(acts: &QuantActs, a: usize) -> &[[i8; 32]] {
    acts.qs[a * acts.cols..(a + 1) * acts.cols]
        .as_chunks::<32>()
        .0
}

/// The two i16 at `v[at..at + 2]` as one 32-bit value in every lane.
#[inline(always)]
pub(super) fn bcast_pair(v: &[i16], at: usize) -> __m256i {
    let pair = (v[at] as u16 as u32) | ((v[at + 1] as u16 as u32) << 16);
    // SAFETY: AVX is part of every entry point's features.
    unsafe { _mm256_set1_epi32(pair as i32) }
}

/// `v` shifted left (`n > 0`) or right by `|n|` bits in each 16-bit lane.
#[inline(always)]
fn shift16(v: __m256i, n: i32) -> __m256i {
    // SAFETY: AVX2 is part of every entry point's features.
    unsafe {
        match n {
            4 => _mm256_slli_epi16::<4>(v),
            3 => _mm256_slli_epi16::<3>(v),
            2 => _mm256_slli_epi16::<2>(v),
            1 => _mm256_slli_epi16::<1>(v),
            0 => v,
            -1 => _mm256_srli_epi16::<1>(v),
            -2 => _mm256_srli_epi16::<2>(v),
            _ => _mm256_srli_epi16::<3>(v),
        }
    }
}

/// The 8 registers `W_k` of a unit of `bits`-bit values (a constant
/// after inlining): lane group `r` of
/// `W_k` holds columns `4k..4k + 4` of row `r`, as unsigned bytes.
#[inline(always)]
pub(super) fn decode(u: &[u8], bits: u32) -> [__m256i; 8] {
    // SAFETY: AVX2 is part of every entry point's features.
    unsafe {
        let mut w = [_mm256_setzero_si256(); 8];
        if bits == 8 {
            // (A loop, not a closure: closures lose the target features.)
            for (k, w) in w.iter_mut().enumerate() {
                *w = load32(&u[32 * k..]);
            }
            return w;
        }
        let high = match bits {
            5 => 32,
            6 => 64,
            _ => 0,
        };
        let low_mask = _mm256_set1_epi8(0x0F);
        for k in 0..4 {
            let p = load32(&u[high + 32 * k..]);
            w[k] = _mm256_and_si256(p, low_mask);
            w[k + 4] = _mm256_and_si256(_mm256_srli_epi16::<4>(p), low_mask);
        }
        if bits == 5 {
            // Bit k of each byte of the plane -> bit 4 of W_k.
            let h = load32(u);
            let bit4 = _mm256_set1_epi8(0x10);
            for (k, w) in w.iter_mut().enumerate() {
                let b = _mm256_and_si256(shift16(h, 4 - k as i32), bit4);
                *w = _mm256_or_si256(*w, b);
            }
        } else if bits == 6 {
            // Bits 2(k % 4).. of plane k / 4 -> bits 4..6 of W_k.
            let planes = [load32(u), load32(&u[32..])];
            let bits45 = _mm256_set1_epi8(0x30);
            for (k, w) in w.iter_mut().enumerate() {
                let b = shift16(planes[k / 4], 4 - 2 * (k % 4) as i32);
                *w = _mm256_or_si256(*w, _mm256_and_si256(b, bits45));
            }
        }
        w
    }
}
