//! Dense F32 / F16 tiles: outer products over interleaved groups. For each
//! column, one load per group gives 8 rows' weights, one broadcast per
//! activation row gives its value, and `G x A` registers accumulate
//! `G * 8` rows by `A` activation rows (a register-tiled GEMM; decode uses
//! several column phases to hide the FMA latency).

use std::arch::x86_64::*;
use std::array;
use std::ops::Range;

use half::f16;

use super::{store_lanes, Dense, Simd};
use crate::kernels::formats::dense::DenseElem;
use crate::kernels::formats::GROUP;

/// A dense element type the SIMD tiles can load.
pub(crate) trait DenseSimd: DenseElem {
    /// The 8 values at `w[..8]` as f32 lanes.
    fn load8(w: &[Self]) -> __m256;
}

impl DenseSimd for f32 {
    #[inline(always)]
    fn load8(w: &[f32]) -> __m256 {
        assert!(w.len() >= 8);
        // SAFETY: 8 readable f32; `loadu` needs no alignment.
        unsafe { _mm256_loadu_ps(w.as_ptr()) }
    }
}

impl DenseSimd for f16 {
    #[inline(always)]
    fn load8(w: &[f16]) -> __m256 {
        assert!(w.len() >= 8);
        // SAFETY: 16 readable bytes; F16C is part of every entry point.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().cast())) }
    }
}

/// [`super::GroupKernel::chunk`] for dense weights.
#[inline(always)]
pub(super) fn chunk<E: DenseSimd, S: Simd>(
    _: S,
    k: &Dense<'_, E, S>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
) {
    let m = outs.len();
    if m == 1 {
        for (i, g) in groups.enumerate() {
            store_lanes(gemv(k, g), &mut outs[0][GROUP * i..]);
        }
        return;
    }
    let mut a0 = 0;
    while a0 < m {
        let n = (m - a0).min(S::DENSE_ACTS);
        match n {
            1 => tiles::<E, S, 1>(k, groups.clone(), outs, a0),
            2 => tiles::<E, S, 2>(k, groups.clone(), outs, a0),
            3 => tiles::<E, S, 3>(k, groups.clone(), outs, a0),
            4 => tiles::<E, S, 4>(k, groups.clone(), outs, a0),
            5 => tiles::<E, S, 5>(k, groups.clone(), outs, a0),
            _ => tiles::<E, S, 6>(k, groups.clone(), outs, a0),
        }
        a0 += n;
    }
}

/// Groups `S::DENSE_GROUPS` at a time (then one at a time) for activation
/// rows `a0..a0 + A`.
#[inline(always)]
fn tiles<E: DenseSimd, S: Simd, const A: usize>(
    k: &Dense<'_, E, S>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
    a0: usize,
) {
    let mut g = groups.start;
    while g < groups.end {
        let i = g - groups.start;
        if S::DENSE_GROUPS >= 4 && groups.end - g >= 4 {
            store(tile::<E, S, 4, A>(k, g, a0), outs, a0, i);
            g += 4;
        } else if S::DENSE_GROUPS >= 2 && groups.end - g >= 2 {
            store(tile::<E, S, 2, A>(k, g, a0), outs, a0, i);
            g += 2;
        } else {
            store(tile::<E, S, 1, A>(k, g, a0), outs, a0, i);
            g += 1;
        }
    }
}

/// Writes tile `t` (groups from local index `i`, activation rows from `a0`).
#[inline(always)]
fn store<const G: usize, const A: usize>(
    t: [[__m256; A]; G],
    outs: &mut [&mut [f32]],
    a0: usize,
    i: usize,
) {
    for (gi, row) in t.iter().enumerate() {
        for (a, v) in row.iter().enumerate() {
            store_lanes(*v, &mut outs[a0 + a][GROUP * (i + gi)..]);
        }
    }
}

/// Groups `g..g + G` times activation rows `a0..a0 + A`.
#[inline(always)]
fn tile<E: DenseSimd, S: Simd, const G: usize, const A: usize>(
    k: &Dense<'_, E, S>,
    g: usize,
    a0: usize,
) -> [[__m256; A]; G] {
    let cols = k.cols;
    let w: [&[E]; G] = array::from_fn(|i| &k.w[(g + i) * cols * GROUP..][..cols * GROUP]);
    let x: [&[f32]; A] = array::from_fn(|a| &k.x[(a0 + a) * cols..][..cols]);
    // SAFETY: AVX/FMA are part of every entry point's features.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); A]; G];
        for c in 0..cols {
            let mut wv = [_mm256_setzero_ps(); G];
            for (i, wv) in wv.iter_mut().enumerate() {
                *wv = E::load8(&w[i][c * GROUP..]);
            }
            for a in 0..A {
                let xv = _mm256_set1_ps(x[a][c]);
                for i in 0..G {
                    acc[i][a] = _mm256_fmadd_ps(wv[i], xv, acc[i][a]);
                }
            }
        }
        acc
    }
}

/// One group times one activation row, with 4 independent accumulators.
#[inline(always)]
fn gemv<E: DenseSimd, S: Simd>(k: &Dense<'_, E, S>, g: usize) -> __m256 {
    const PHASES: usize = 4;
    let cols = k.cols;
    let w = &k.w[g * cols * GROUP..][..cols * GROUP];
    let x = &k.x[..cols];
    // SAFETY: AVX/FMA are part of every entry point's features.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); PHASES];
        let full = cols / PHASES * PHASES;
        for c in (0..full).step_by(PHASES) {
            for (p, acc) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(x[c + p]);
                *acc = _mm256_fmadd_ps(E::load8(&w[(c + p) * GROUP..]), xv, *acc);
            }
        }
        for c in full..cols {
            acc[0] = _mm256_fmadd_ps(E::load8(&w[c * GROUP..]), _mm256_set1_ps(x[c]), acc[0]);
        }
        let a = _mm256_add_ps(acc[0], acc[1]);
        let b = _mm256_add_ps(acc[2], acc[3]);
        _mm256_add_ps(a, b)
    }
}
