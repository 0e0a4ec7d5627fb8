//! AVX-512 prefill tiles over two row groups at once: lane `r` of a
//! 512-bit register is row `r` of group `g` (`r < 8`) or row `r - 8` of
//! group `g + 1`, so one broadcast of 4 activation bytes feeds 16 rows'
//! `vpdpbusd` (the 256-bit tiles feed 8). The group layout is the one every
//! other path reads (`formats::interleave`): a register's halves are loaded
//! from the two groups' blocks. Integer sums and the f32 steps per block are
//! the 256-bit tiles' (`kquants`, `blocks`), lane for lane, so both widths
//! give bit-identical results.
//!
//! Each unit's 8 byte dot products run as two independent chains (columns
//! 0-15 and 16-31) so that 4 activation rows keep 8 `vpdpbusd` in flight.

use std::arch::x86_64::*;
use std::array;
use std::ops::Range;

use super::unit::{act_units, load16, load32};
use super::{store_lanes, Avx512, Quant, SimdFormat};
use crate::kernels::act::{QuantActs, QK, QK_K};
use crate::kernels::formats::block32::{unit_at, Block32, Blocks};
use crate::kernels::formats::interleave::unit_bytes;
use crate::kernels::formats::kscale::{ScaleMin, ScaleMinK, MIN_AT, SC_AT, UNITS_AT};
use crate::kernels::formats::q6_k::{self, Q6K};
use crate::kernels::formats::{QuantFormat, GROUP};

/// A quantized format's 16-row tile (AVX-512 F/BW/VL + VNNI).
pub(crate) trait WideFormat: QuantFormat {
    /// Lane `r` of element `a`: dot of row `r` of groups `g0` (lanes 0-7)
    /// and `g1` (lanes 8-15), all their group blocks, with activation row
    /// `a0 + a`.
    fn tile2<const A: usize>(g0: &[u8], g1: &[u8], acts: &QuantActs, a0: usize) -> [__m512; A];
}

/// `lo[..32]` in the low half, `hi[..32]` in the high half.
#[inline(always)]
fn pair32(lo: &[u8], hi: &[u8]) -> __m512i {
    // SAFETY: AVX-512F is part of the entry point's features.
    unsafe { _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load32(lo)), load32(hi)) }
}

/// `lo[..16]` in the low half, `hi[..16]` in the high half.
#[inline(always)]
fn pair16(lo: &[u8], hi: &[u8]) -> __m256i {
    // SAFETY: AVX2 is part of the entry point's features.
    unsafe { _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(load16(lo)), load16(hi)) }
}

/// The 8 f16 at `lo[..16]`, then the 8 at `hi[..16]`, as f32 lanes.
#[inline(always)]
fn f16x16(lo: &[u8], hi: &[u8]) -> __m512 {
    // SAFETY: AVX-512F is part of the entry point's features.
    unsafe { _mm512_cvtph_ps(pair16(lo, hi)) }
}

/// The 16 bytes at `lo` and at `hi` as 32 zero-extended i16.
#[inline(always)]
fn u8x32_to_i16(lo: &[u8], hi: &[u8]) -> __m512i {
    // SAFETY: AVX-512BW is part of the entry point's features.
    unsafe { _mm512_cvtepu8_epi16(pair16(lo, hi)) }
}

/// `v` shifted left (`n > 0`) or right by `|n|` bits in each 16-bit lane.
#[inline(always)]
fn shift16(v: __m512i, n: i32) -> __m512i {
    // SAFETY: AVX-512BW is part of the entry point's features.
    unsafe {
        match n {
            4 => _mm512_slli_epi16::<4>(v),
            3 => _mm512_slli_epi16::<3>(v),
            2 => _mm512_slli_epi16::<2>(v),
            1 => _mm512_slli_epi16::<1>(v),
            0 => v,
            -1 => _mm512_srli_epi16::<1>(v),
            -2 => _mm512_srli_epi16::<2>(v),
            _ => _mm512_srli_epi16::<3>(v),
        }
    }
}

/// `unit::decode` of two groups' units (`u0`: lanes 0-7, `u1`: 8-15).
#[inline(always)]
fn decode2(u0: &[u8], u1: &[u8], bits: u32) -> [__m512i; 8] {
    // SAFETY: AVX-512F/BW are part of the entry point's features.
    unsafe {
        let mut w = [_mm512_setzero_si512(); 8];
        if bits == 8 {
            for (k, w) in w.iter_mut().enumerate() {
                *w = pair32(&u0[32 * k..], &u1[32 * k..]);
            }
            return w;
        }
        let high = match bits {
            5 => 32,
            6 => 64,
            _ => 0,
        };
        let low_mask = _mm512_set1_epi8(0x0F);
        for k in 0..4 {
            let p = pair32(&u0[high + 32 * k..], &u1[high + 32 * k..]);
            w[k] = _mm512_and_si512(p, low_mask);
            w[k + 4] = _mm512_and_si512(_mm512_srli_epi16::<4>(p), low_mask);
        }
        if bits == 5 {
            let h = pair32(u0, u1);
            let bit4 = _mm512_set1_epi8(0x10);
            for (k, w) in w.iter_mut().enumerate() {
                *w = _mm512_or_si512(*w, _mm512_and_si512(shift16(h, 4 - k as i32), bit4));
            }
        } else if bits == 6 {
            let planes = [pair32(u0, u1), pair32(&u0[32..], &u1[32..])];
            let bits45 = _mm512_set1_epi8(0x30);
            for (k, w) in w.iter_mut().enumerate() {
                let b = shift16(planes[k / 4], 4 - 2 * (k % 4) as i32);
                *w = _mm512_or_si512(*w, _mm512_and_si512(b, bits45));
            }
        }
        w
    }
}

/// `sum over k in ks of W_k * (x[4k..4k + 4] in every lane)` (any byte `W_k`).
#[inline(always)]
fn dot2(w: &[__m512i; 8], x: &[i8; 32], ks: Range<usize>) -> __m512i {
    // SAFETY: AVX-512F is part of the entry point's features.
    let mut acc = unsafe { _mm512_setzero_si512() };
    for k in ks {
        assert!(k < 8);
        // SAFETY: `4k + 4 <= 32` bytes of `x`, read unaligned; AVX-512
        // VNNI is part of the entry point's features.
        unsafe {
            let xk = _mm512_set1_epi32(x.as_ptr().add(4 * k).cast::<i32>().read_unaligned());
            acc = _mm512_dpbusd_epi32(acc, w[k], xk);
        }
    }
    acc
}

/// A whole unit's dot, as two chains added.
#[inline(always)]
fn dot_unit2(w: &[__m512i; 8], x: &[i8; 32]) -> __m512i {
    // SAFETY: AVX-512F is part of the entry point's features.
    unsafe { _mm512_add_epi32(dot2(w, x, 0..4), dot2(w, x, 4..8)) }
}

/// The two i16 at `v[at..at + 2]` as one 32-bit value in every lane.
#[inline(always)]
fn bcast_pair2(v: &[i16], at: usize) -> __m512i {
    let pair = (v[at] as u16 as u32) | ((v[at + 1] as u16 as u32) << 16);
    // SAFETY: AVX-512F is part of the entry point's features.
    unsafe { _mm512_set1_epi32(pair as i32) }
}

/// Activation rows `a0..a0 + A`: units, scales and the sums of every `per`
/// values (as `kquants::act_rows`).
type ActRows<'a, const A: usize> = ([&'a [[i8; 32]]; A], [&'a [f32]; A], [&'a [i16]; A]);

#[inline(always)]
fn act_rows<'a, const A: usize>(
    acts: &'a QuantActs,
    a0: usize,
    block: usize,
    sums: &'a [i16],
    per: usize,
) -> ActRows<'a, A> {
    let cols = acts.cols;
    (
        array::from_fn(|a| act_units(acts, a0 + a)),
        array::from_fn(|a| &acts.d[(a0 + a) * cols / block..][..cols / block]),
        array::from_fn(|a| &sums[(a0 + a) * cols / per..][..cols / per]),
    )
}

impl<F: ScaleMinK> WideFormat for ScaleMin<F> {
    #[inline(always)]
    fn tile2<const A: usize>(g0: &[u8], g1: &[u8], acts: &QuantActs, a0: usize) -> [__m512; A] {
        let (xq, xd, xs) = act_rows::<A>(acts, a0, QK_K, &acts.sums, QK);
        let ub = unit_bytes(F::BITS);
        // SAFETY: AVX-512F/BW/VNNI are part of the entry point's features.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); A];
            let blocks = g0
                .chunks_exact(Self::GROUP_BYTES)
                .zip(g1.chunks_exact(Self::GROUP_BYTES));
            for (sb, (b0, b1)) in blocks.enumerate() {
                let mut isum = [_mm512_setzero_si512(); A];
                for p in 0..4 {
                    let sc = u8x32_to_i16(&b0[SC_AT + 16 * p..], &b1[SC_AT + 16 * p..]);
                    let scales = [
                        _mm512_and_si512(sc, _mm512_set1_epi32(0xFFFF)),
                        _mm512_srli_epi32::<16>(sc),
                    ];
                    for (h, scale) in scales.into_iter().enumerate() {
                        let j = 2 * p + h;
                        let at = UNITS_AT + j * ub;
                        let w = decode2(&b0[at..], &b1[at..], F::BITS);
                        for a in 0..A {
                            let d = dot_unit2(&w, &xq[a][sb * 8 + j]);
                            isum[a] = _mm512_add_epi32(isum[a], _mm512_mullo_epi32(d, scale));
                        }
                    }
                }
                let (dw, dmin) = (f16x16(b0, b1), f16x16(&b0[16..], &b1[16..]));
                // (A loop, not a closure: closures lose the target features.)
                let mut m = [_mm512_setzero_si512(); 4];
                for (p, m) in m.iter_mut().enumerate() {
                    *m = u8x32_to_i16(&b0[MIN_AT + 16 * p..], &b1[MIN_AT + 16 * p..]);
                }
                for a in 0..A {
                    let mut mins = _mm512_setzero_si512();
                    for (p, m) in m.iter().enumerate() {
                        let x = bcast_pair2(xs[a], sb * 8 + 2 * p);
                        mins = _mm512_add_epi32(mins, _mm512_madd_epi16(*m, x));
                    }
                    let dx = _mm512_set1_ps(xd[a][sb]);
                    acc[a] =
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[a]), _mm512_mul_ps(dw, dx), acc[a]);
                    acc[a] =
                        _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mins), _mm512_mul_ps(dmin, dx), acc[a]);
                }
            }
            acc
        }
    }
}

impl WideFormat for Q6K {
    #[inline(always)]
    fn tile2<const A: usize>(g0: &[u8], g1: &[u8], acts: &QuantActs, a0: usize) -> [__m512; A] {
        let (xq, xd, xs) = act_rows::<A>(acts, a0, QK_K, &acts.bsums, 16);
        let ub = unit_bytes(6);
        // SAFETY: AVX-512F/BW/VNNI are part of the entry point's features.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); A];
            let blocks = g0
                .chunks_exact(Self::GROUP_BYTES)
                .zip(g1.chunks_exact(Self::GROUP_BYTES));
            for (sb, (b0, b1)) in blocks.enumerate() {
                let mut isum = [_mm512_setzero_si512(); A];
                let mut corr = [_mm512_setzero_si512(); A];
                for j in 0..8 {
                    let at = q6_k::SC_AT + 16 * j;
                    let sc = _mm512_cvtepi8_epi16(pair16(&b0[at..], &b1[at..]));
                    let lo = _mm512_srai_epi32::<16>(_mm512_slli_epi32::<16>(sc));
                    let hi = _mm512_srai_epi32::<16>(sc);
                    let at = q6_k::UNITS_AT + j * ub;
                    let w = decode2(&b0[at..], &b1[at..], 6);
                    for a in 0..A {
                        let x = &xq[a][sb * 8 + j];
                        let scaled = _mm512_add_epi32(
                            _mm512_mullo_epi32(dot2(&w, x, 0..4), lo),
                            _mm512_mullo_epi32(dot2(&w, x, 4..8), hi),
                        );
                        isum[a] = _mm512_add_epi32(isum[a], scaled);
                        let x = bcast_pair2(xs[a], sb * 16 + 2 * j);
                        corr[a] = _mm512_add_epi32(corr[a], _mm512_madd_epi16(sc, x));
                    }
                }
                let dw = f16x16(b0, b1);
                for a in 0..A {
                    let sumi = _mm512_sub_epi32(isum[a], _mm512_slli_epi32::<5>(corr[a]));
                    let scale = _mm512_mul_ps(dw, _mm512_set1_ps(xd[a][sb]));
                    acc[a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), scale, acc[a]);
                }
            }
            acc
        }
    }
}

impl<F: Block32> WideFormat for Blocks<F> {
    #[inline(always)]
    fn tile2<const A: usize>(g0: &[u8], g1: &[u8], acts: &QuantActs, a0: usize) -> [__m512; A] {
        let (xq, xd, xs) = act_rows::<A>(acts, a0, QK, &acts.sums, QK);
        let ua = unit_at::<F>();
        // SAFETY: AVX-512F/BW/VNNI are part of the entry point's features.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); A];
            let blocks = g0
                .chunks_exact(Self::GROUP_BYTES)
                .zip(g1.chunks_exact(Self::GROUP_BYTES));
            for (b, (b0, b1)) in blocks.enumerate() {
                let w = decode2(&b0[ua..], &b1[ua..], F::BITS);
                let mut isum = [_mm512_setzero_si512(); A];
                for a in 0..A {
                    isum[a] = dot_unit2(&w, &xq[a][b]);
                }
                let dw = f16x16(b0, b1);
                for a in 0..A {
                    let sum = i32::from(xs[a][b]);
                    let mut isum = isum[a];
                    if F::OFFSET != 0 {
                        isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(F::OFFSET * sum));
                    }
                    let dx = xd[a][b];
                    let scale = _mm512_mul_ps(dw, _mm512_set1_ps(dx));
                    acc[a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[a]);
                    if F::HAS_MIN {
                        let mw = f16x16(&b0[16..], &b1[16..]);
                        acc[a] = _mm512_fmadd_ps(mw, _mm512_set1_ps(dx * sum as f32), acc[a]);
                    }
                }
            }
            acc
        }
    }
}

/// [`super::GroupKernel::chunk`] under AVX-512: activation rows in tiles
/// of 4, each over the groups two at a time (an odd last group takes the
/// 8-row tile).
#[inline(always)]
pub(super) fn chunk<F: SimdFormat>(
    s: Avx512,
    k: &Quant<'_, F, Avx512>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
) {
    let m = outs.len();
    let mut a0 = 0;
    while a0 < m {
        let n = (m - a0).min(4);
        match n {
            1 => tiles::<F, 1>(s, k, groups.clone(), outs, a0),
            2 => tiles::<F, 2>(s, k, groups.clone(), outs, a0),
            3 => tiles::<F, 3>(s, k, groups.clone(), outs, a0),
            _ => tiles::<F, 4>(s, k, groups.clone(), outs, a0),
        }
        a0 += n;
    }
}

#[inline(always)]
fn tiles<F: SimdFormat, const A: usize>(
    s: Avx512,
    k: &Quant<'_, F, Avx512>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
    a0: usize,
) {
    let gb = k.acts.cols / F::VALUES * F::GROUP_BYTES;
    let mut g = groups.start;
    while g < groups.end {
        let i = g - groups.start;
        if groups.end - g >= 2 {
            let t = F::tile2::<A>(&k.w[g * gb..][..gb], &k.w[(g + 1) * gb..][..gb], k.acts, a0);
            for (a, v) in t.into_iter().enumerate() {
                // SAFETY: AVX-512F is part of the entry point's features.
                let (lo, hi) = unsafe {
                    (
                        _mm512_castps512_ps256(v),
                        _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
                    )
                };
                let out = &mut outs[a0 + a][GROUP * i..];
                store_lanes(lo, out);
                if out.len() > GROUP {
                    store_lanes(hi, &mut out[GROUP..]);
                }
            }
            g += 2;
        } else {
            let t = F::tile::<Avx512, A>(s, &k.w[g * gb..][..gb], k.acts, a0);
            for (a, v) in t.into_iter().enumerate() {
                store_lanes(v, &mut outs[a0 + a][GROUP * i..]);
            }
            g += 1;
        }
    }
}
