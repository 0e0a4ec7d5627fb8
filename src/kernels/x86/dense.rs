//! Dense F32 / F16 tiles: outer products over column pairs of interleaved
//! groups (layout in `formats::dense`). For each pair, one 16-value load per
//! group gives 8 rows' two weights, one 64-bit broadcast per activation row
//! gives its two values, and `G x A` accumulators gather `G * 8` rows by `A`
//! activation rows, even and odd columns in alternate lanes until the end
//! (a register-tiled GEMM; decode uses several pair phases to hide the FMA
//! latency). AVX-512 holds a pair in one 512-bit register, AVX2 in two
//! 256-bit halves.

use std::arch::x86_64::*;
use std::array;
use std::ops::Range;

use half::f16;

use super::{store_lanes, Avx2, Avx512, Dense, Simd};
use crate::kernels::formats::dense::{group_len, DenseElem};
use crate::kernels::formats::GROUP;

/// A dense element type the SIMD tiles can load.
pub(crate) trait DenseSimd: DenseElem {
    /// The 8 values at `w` as f32 lanes.
    ///
    /// # Safety
    /// 8 values must be readable at `w`; the CPU must support AVX2 and F16C.
    unsafe fn load8(w: *const Self) -> __m256;

    /// The 16 values at `w` as f32 lanes.
    ///
    /// # Safety
    /// 16 values must be readable at `w`; the CPU must support AVX-512F.
    unsafe fn load16(w: *const Self) -> __m512;
}

impl DenseSimd for f32 {
    #[inline(always)]
    unsafe fn load8(w: *const f32) -> __m256 {
        // SAFETY: the caller's promise; `loadu` needs no alignment.
        unsafe { _mm256_loadu_ps(w) }
    }

    #[inline(always)]
    unsafe fn load16(w: *const f32) -> __m512 {
        // SAFETY: as above.
        unsafe { _mm512_loadu_ps(w) }
    }
}

impl DenseSimd for f16 {
    #[inline(always)]
    unsafe fn load8(w: *const f16) -> __m256 {
        // SAFETY: the caller's promise (16 bytes); `loadu` needs no alignment.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(w.cast())) }
    }

    #[inline(always)]
    unsafe fn load16(w: *const f16) -> __m512 {
        // SAFETY: as above (32 bytes).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(w.cast())) }
    }
}

/// The registers a dense tile works in, per instruction set: [`PairRegs::V`]
/// holds one column pair of one group (8 rows x 2 columns, 16 lanes).
pub(crate) trait PairRegs: Simd {
    /// One pair of 8 rows.
    type V: Copy;
    /// Groups per tile in prefill (1, 2 or 4). AVX-512: 2 x 12 accumulators
    /// of 32; AVX2: 1 x 6 (12 of its 16 registers).
    const GROUPS: usize;
    /// Activation rows per tile in prefill (at most 12).
    const ACTS: usize;

    /// All lanes zero.
    fn zero(self) -> Self::V;
    /// The pair at `w` (16 values).
    ///
    /// # Safety
    /// 16 values must be readable at `w`.
    unsafe fn load<E: DenseSimd>(self, w: *const E) -> Self::V;
    /// `x[0], x[1]` in alternate lanes.
    ///
    /// # Safety
    /// 2 values must be readable at `x`.
    unsafe fn pair(self, x: *const f32) -> Self::V;
    /// `w x + acc`.
    fn fma(self, w: Self::V, x: Self::V, acc: Self::V) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// The 8 rows' sums (each lane pair added).
    fn rows(self, acc: Self::V) -> __m256;
}

impl PairRegs for Avx2 {
    type V = [__m256; 2];
    const GROUPS: usize = 1;
    const ACTS: usize = 6;

    #[inline(always)]
    fn zero(self) -> Self::V {
        // SAFETY: an `Avx2` value only exists inside an AVX2 entry point.
        unsafe { [_mm256_setzero_ps(); 2] }
    }

    #[inline(always)]
    unsafe fn load<E: DenseSimd>(self, w: *const E) -> Self::V {
        // SAFETY: as in `zero`, and the caller's promise.
        unsafe { [E::load8(w), E::load8(w.add(8))] }
    }

    #[inline(always)]
    unsafe fn pair(self, x: *const f32) -> Self::V {
        // SAFETY: as in `load`; read unaligned.
        unsafe {
            let v = _mm256_castsi256_ps(_mm256_set1_epi64x(x.cast::<i64>().read_unaligned()));
            [v, v]
        }
    }

    #[inline(always)]
    fn fma(self, w: Self::V, x: Self::V, acc: Self::V) -> Self::V {
        // SAFETY: as in `zero`.
        unsafe {
            [
                _mm256_fmadd_ps(w[0], x[0], acc[0]),
                _mm256_fmadd_ps(w[1], x[1], acc[1]),
            ]
        }
    }

    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: as in `zero`.
        unsafe { [_mm256_add_ps(a[0], b[0]), _mm256_add_ps(a[1], b[1])] }
    }

    #[inline(always)]
    fn rows(self, acc: Self::V) -> __m256 {
        // SAFETY: as in `zero`. `hadd` gives rows 0 1 4 5 | 2 3 6 7.
        unsafe {
            let h = _mm256_hadd_ps(acc[0], acc[1]);
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(h)))
        }
    }
}

impl PairRegs for Avx512 {
    type V = __m512;
    const GROUPS: usize = 2;
    const ACTS: usize = 12;

    #[inline(always)]
    fn zero(self) -> Self::V {
        // SAFETY: an `Avx512` value only exists inside an AVX-512 entry point.
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn load<E: DenseSimd>(self, w: *const E) -> Self::V {
        // SAFETY: as in `zero`, and the caller's promise.
        unsafe { E::load16(w) }
    }

    #[inline(always)]
    unsafe fn pair(self, x: *const f32) -> Self::V {
        // SAFETY: as in `load`; read unaligned.
        unsafe { _mm512_castsi512_ps(_mm512_set1_epi64(x.cast::<i64>().read_unaligned())) }
    }

    #[inline(always)]
    fn fma(self, w: Self::V, x: Self::V, acc: Self::V) -> Self::V {
        // SAFETY: as in `zero`.
        unsafe { _mm512_fmadd_ps(w, x, acc) }
    }

    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: as in `zero`.
        unsafe { _mm512_add_ps(a, b) }
    }

    #[inline(always)]
    fn rows(self, acc: Self::V) -> __m256 {
        // SAFETY: as in `zero`. Even lanes to the low half, odd lanes to the
        // high half, add the halves. (A neighbour swap with `vpermilps`
        // instead makes LLVM keep the accumulators in zmm0-15 and spill.)
        unsafe {
            let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
            let split = _mm512_permutexvar_ps(idx, acc);
            let high = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(split));
            _mm256_add_ps(_mm512_castps512_ps256(split), _mm256_castpd_ps(high))
        }
    }
}

/// [`super::GroupKernel::chunk`] for dense weights.
#[inline(always)]
pub(super) fn chunk<E: DenseSimd, S: PairRegs>(
    s: S,
    k: &Dense<'_, E, S>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
) {
    let m = outs.len();
    if m == 1 {
        for (i, g) in groups.enumerate() {
            store_lanes(gemv(s, k, g), &mut outs[0][GROUP * i..]);
        }
        return;
    }
    let mut a0 = 0;
    while a0 < m {
        let n = (m - a0).min(S::ACTS);
        match n {
            1 => tiles::<E, S, 1>(s, k, groups.clone(), outs, a0),
            2 => tiles::<E, S, 2>(s, k, groups.clone(), outs, a0),
            3 => tiles::<E, S, 3>(s, k, groups.clone(), outs, a0),
            4 => tiles::<E, S, 4>(s, k, groups.clone(), outs, a0),
            5 => tiles::<E, S, 5>(s, k, groups.clone(), outs, a0),
            6 => tiles::<E, S, 6>(s, k, groups.clone(), outs, a0),
            7 => tiles::<E, S, 7>(s, k, groups.clone(), outs, a0),
            8 => tiles::<E, S, 8>(s, k, groups.clone(), outs, a0),
            9 => tiles::<E, S, 9>(s, k, groups.clone(), outs, a0),
            10 => tiles::<E, S, 10>(s, k, groups.clone(), outs, a0),
            11 => tiles::<E, S, 11>(s, k, groups.clone(), outs, a0),
            _ => tiles::<E, S, 12>(s, k, groups.clone(), outs, a0),
        }
        a0 += n;
    }
}

/// Groups `S::GROUPS` at a time (then fewer) for activation rows
/// `a0..a0 + A`.
#[inline(always)]
fn tiles<E: DenseSimd, S: PairRegs, const A: usize>(
    s: S,
    k: &Dense<'_, E, S>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
    a0: usize,
) {
    let mut g = groups.start;
    while g < groups.end {
        let i = g - groups.start;
        if S::GROUPS >= 4 && groups.end - g >= 4 {
            store(tile::<E, S, 4, A>(s, k, g, a0), outs, a0, i);
            g += 4;
        } else if S::GROUPS >= 2 && groups.end - g >= 2 {
            store(tile::<E, S, 2, A>(s, k, g, a0), outs, a0, i);
            g += 2;
        } else {
            store(tile::<E, S, 1, A>(s, k, g, a0), outs, a0, i);
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
fn tile<E: DenseSimd, S: PairRegs, const G: usize, const A: usize>(
    s: S,
    k: &Dense<'_, E, S>,
    g: usize,
    a0: usize,
) -> [[__m256; A]; G] {
    let (cols, len) = (k.cols, group_len(k.cols));
    debug_assert_eq!(cols % 2, 0, "activation rows are padded to whole pairs");
    let w: [&[E]; G] = array::from_fn(|i| &k.w[(g + i) * len..][..len]);
    let x: [&[f32]; A] = array::from_fn(|a| &k.x[(a0 + a) * cols..][..cols]);
    let wp: [*const E; G] = array::from_fn(|i| w[i].as_ptr());
    let xp: [*const f32; A] = array::from_fn(|a| x[a].as_ptr());
    let mut acc = [[s.zero(); A]; G];
    // SAFETY (loads): pair `p < cols / 2` lies inside each group (of
    // `len / 16 = cols / 2` pairs) and `2p + 1 < cols`.
    for p in 0..cols / 2 {
        let mut wv = [s.zero(); G];
        for i in 0..G {
            wv[i] = unsafe { s.load(wp[i].add(2 * GROUP * p)) };
        }
        for a in 0..A {
            let xv = unsafe { s.pair(xp[a].add(2 * p)) };
            for i in 0..G {
                acc[i][a] = s.fma(wv[i], xv, acc[i][a]);
            }
        }
    }
    let mut out = [[s.rows(s.zero()); A]; G];
    for i in 0..G {
        for a in 0..A {
            out[i][a] = s.rows(acc[i][a]);
        }
    }
    out
}

/// One group times one activation row, with 4 independent accumulators.
#[inline(always)]
fn gemv<E: DenseSimd, S: PairRegs>(s: S, k: &Dense<'_, E, S>, g: usize) -> __m256 {
    const PHASES: usize = 4;
    let (cols, len) = (k.cols, group_len(k.cols));
    debug_assert_eq!(cols % 2, 0, "activation rows are padded to whole pairs");
    let w = k.w[g * len..][..len].as_ptr();
    let x = k.x[..cols].as_ptr();
    let pairs = cols / 2;
    let mut acc = [s.zero(); PHASES];
    // SAFETY (all loads): pair `q < cols / 2 = len / 16` lies inside the
    // group, and `2q + 1 < cols`.
    for p in (0..pairs / PHASES * PHASES).step_by(PHASES) {
        for (j, acc) in acc.iter_mut().enumerate() {
            let q = p + j;
            unsafe { *acc = s.fma(s.load(w.add(2 * GROUP * q)), s.pair(x.add(2 * q)), *acc) };
        }
    }
    for q in pairs / PHASES * PHASES..pairs {
        unsafe { acc[0] = s.fma(s.load(w.add(2 * GROUP * q)), s.pair(x.add(2 * q)), acc[0]) };
    }
    s.rows(s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3])))
}
