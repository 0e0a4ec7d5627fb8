//! AVX2 + FMA + F16C micro-kernels (x86-64 only).
//!
//! The quantized dots follow ggml's `ggml_vec_dot_q4_1_q8_1` /
//! `ggml_vec_dot_q8_0_q8_0`: unpack weights to 32 bytes, multiply-add byte
//! pairs with `maddubs`, widen to i32 with `madd`, convert and FMA with the
//! block scales. Every function here is `#[target_feature]`; they are only
//! reached through [`Avx2`], which can only be built on a CPU that has them.

use std::arch::x86_64::*;
use std::array;

use half::f16;

use super::dense::{Dense, DenseWeight, DENSE_GEMM_ACTS, DENSE_GEMM_ROWS};
use super::quant::{Q4_1Kernel, Q8_0Kernel, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};
use super::{Isa, Tiles};

/// A micro-kernel run with AVX2; only constructible on a CPU that supports it.
pub(crate) struct Avx2<K>(K);

impl<K> Avx2<K> {
    /// Wraps `k`. Panics if the CPU lacks AVX2/FMA/F16C (callers only get
    /// `Isa::Avx2` from [`Isa::detect`], so this holds).
    pub(crate) fn new(k: K) -> Self {
        assert_eq!(Isa::detect(), Isa::Avx2, "CPU lacks AVX2/FMA/F16C");
        Avx2(k)
    }
}

/// Loads 8 f32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load_f32x8(v: &[f32; 8]) -> __m256 {
    // SAFETY: `v` is 8 readable f32 and `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

/// Loads 8 f16 widened to f32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load_f16x8(v: &[f16; 8]) -> __m256 {
    // SAFETY: `v` is 16 readable bytes and `loadu` has no alignment requirement.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(v.as_ptr().cast()) })
}

/// Loads 32 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
fn load_32<T>(v: &[T; 32]) -> __m256i {
    const { assert!(size_of::<T>() == 1) };
    // SAFETY: `v` is 32 readable bytes and `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Loads 16 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
fn load_16(v: &[u8; 16]) -> __m128i {
    // SAFETY: `v` is 16 readable bytes and `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(v.as_ptr().cast()) }
}

/// `[v[0], v[1], 0, 0]`.
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f32x2(v: &[f32; 2]) -> __m128 {
    _mm_castpd_ps(_mm_set_sd(f64::from_bits(
        u64::from(v[0].to_bits()) | (u64::from(v[1].to_bits()) << 32),
    )))
}

/// The f16 pair at `b[0..4]` as `[b0, b1, 0, 0]` f32.
#[target_feature(enable = "avx2,fma,f16c")]
fn f16x2(b: &[u8]) -> __m128 {
    let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32))
}

/// Sum of the 8 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// 16 packed nibbles -> 32 bytes: low nibbles first, then high nibbles.
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack_nibbles(q: &[u8; 16]) -> __m256i {
    let lo = load_16(q);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(lo), lo);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Integer dot of unsigned `x` and signed `y` bytes as 8 f32 partial sums.
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_u8_i8(x: __m256i, y: __m256i) -> __m256 {
    let pairs = _mm256_maddubs_epi16(x, y);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// Hints the CPU to fetch the cache line at `p` (any address; never faults).
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch<T>(p: *const T) {
    _mm_prefetch::<_MM_HINT_T0>(p.cast());
}

/// Rows `r..r + R` of `v`, each `n` long.
fn rows<T, const R: usize>(v: &[T], r: usize, n: usize) -> [&[T]; R] {
    array::from_fn(|i| &v[(r + i) * n..(r + i + 1) * n])
}

/// Q4_1 x Q8_1 tile; per block `sum += d_w d_x sumi + m_w s_x`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1_tile<const R: usize, const A: usize>(k: &Q4_1Kernel, r: usize, a: usize) -> [[f32; A]; R] {
    let w: [&[[u8; Q4_1_BLOCK_BYTES]]; R] = rows(k.w, r, k.nb);
    let ds: [&[[f32; 2]]; A] = rows(&k.x.ds, a, k.nb);
    let qs: [&[[i8; QK]]; A] = rows(&k.x.qs, a, k.nb);
    let mut acc = [[_mm256_setzero_ps(); A]; R];
    // Lane 1 accumulates m_w * s_x (lane 0 holds junk d_w * d_x).
    let mut acc_m = [[_mm_setzero_ps(); A]; R];
    for b in 0..k.nb {
        let mut y = [_mm256_setzero_si256(); A];
        let mut yds = [_mm_setzero_ps(); A];
        for j in 0..A {
            y[j] = load_32(&qs[j][b]);
            yds[j] = load_f32x2(&ds[j][b]);
        }
        for i in 0..R {
            // Decode streams weights: fetch this block of the next tile early.
            prefetch(w[i].as_ptr().wrapping_add(R * k.nb + b));
            let blk = &w[i][b];
            let dm = f16x2(blk);
            let qx = unpack_nibbles(blk[4..].try_into().expect("16 nibble bytes"));
            for j in 0..A {
                let prod = _mm_mul_ps(dm, yds[j]);
                let scale = _mm256_broadcastss_ps(prod);
                acc[i][j] = _mm256_fmadd_ps(scale, dot_u8_i8(qx, y[j]), acc[i][j]);
                acc_m[i][j] = _mm_add_ps(acc_m[i][j], prod);
            }
        }
    }
    let mut out = [[0.0; A]; R];
    for i in 0..R {
        for j in 0..A {
            let m = _mm_cvtss_f32(_mm_movehdup_ps(acc_m[i][j]));
            out[i][j] = hsum(acc[i][j]) + m;
        }
    }
    out
}

/// Q8_0 x Q8_0 tile; per block `sum += d_w d_x sumi`. The signed x signed
/// byte product uses `maddubs(|w|, sign(x, w))`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_tile<const R: usize, const A: usize>(k: &Q8_0Kernel, r: usize, a: usize) -> [[f32; A]; R] {
    let w: [&[[u8; Q8_0_BLOCK_BYTES]]; R] = rows(k.w, r, k.nb);
    let d: [&[f32]; A] = rows(&k.x.d, a, k.nb);
    let qs: [&[[i8; QK]]; A] = rows(&k.x.qs, a, k.nb);
    let mut acc = [[_mm256_setzero_ps(); A]; R];
    for b in 0..k.nb {
        let mut y = [_mm256_setzero_si256(); A];
        let mut dy = [_mm_setzero_ps(); A];
        for j in 0..A {
            y[j] = load_32(&qs[j][b]);
            dy[j] = _mm_set_ss(d[j][b]);
        }
        for i in 0..R {
            // Decode streams weights: fetch this block of the next tile early.
            prefetch(w[i].as_ptr().wrapping_add(R * k.nb + b));
            let blk = &w[i][b];
            let dw = f16x2(&[blk[0], blk[1], 0, 0]);
            let qx = load_32::<u8>(blk[2..].try_into().expect("32 quant bytes"));
            let ax = _mm256_sign_epi8(qx, qx);
            for j in 0..A {
                let scale = _mm256_broadcastss_ps(_mm_mul_ss(dw, dy[j]));
                let sy = _mm256_sign_epi8(y[j], qx);
                acc[i][j] = _mm256_fmadd_ps(scale, dot_u8_i8(ax, sy), acc[i][j]);
            }
        }
    }
    acc.map(|row| row.map(|v| hsum(v)))
}

/// Dense tile: 8-wide FMAs, one accumulator per (row, activation) pair,
/// scalar tail for `cols % 8`.
#[target_feature(enable = "avx2,fma,f16c")]
fn dense_tile<W: DenseWeight, const R: usize, const A: usize>(
    k: &Dense<W>,
    r: usize,
    a: usize,
) -> [[f32; A]; R] {
    let w: [&[W]; R] = rows(k.w, r, k.cols);
    let x: [&[f32]; A] = rows(k.x, a, k.cols);
    let wc = w.map(|s| s.as_chunks::<8>().0);
    let xc = x.map(|s| s.as_chunks::<8>().0);
    let mut acc = [[_mm256_setzero_ps(); A]; R];
    for c in 0..k.cols / 8 {
        let mut xv = [_mm256_setzero_ps(); A];
        for j in 0..A {
            xv[j] = load_f32x8(&xc[j][c]);
        }
        for i in 0..R {
            // SAFETY: this function only runs on CPUs with AVX2/FMA/F16C.
            let wv = unsafe { W::load8(&wc[i][c]) };
            for j in 0..A {
                acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
            }
        }
    }
    let tail = k.cols / 8 * 8;
    let mut out = [[0.0; A]; R];
    for i in 0..R {
        for j in 0..A {
            let t: f32 = w[i][tail..]
                .iter()
                .zip(&x[j][tail..])
                .map(|(w, x)| w.to_f32() * x)
                .sum();
            out[i][j] = hsum(acc[i][j]) + t;
        }
    }
    out
}

impl Tiles for Avx2<Q4_1Kernel<'_>> {
    fn tile<const R: usize, const A: usize>(&self, r: usize, a: usize) -> [[f32; A]; R] {
        // SAFETY: `Avx2` is only constructed when the CPU has AVX2/FMA/F16C.
        unsafe { q4_1_tile::<R, A>(&self.0, r, a) }
    }
}

impl Tiles for Avx2<Q8_0Kernel<'_>> {
    fn tile<const R: usize, const A: usize>(&self, r: usize, a: usize) -> [[f32; A]; R] {
        // SAFETY: `Avx2` is only constructed when the CPU has AVX2/FMA/F16C.
        unsafe { q8_0_tile::<R, A>(&self.0, r, a) }
    }
}

impl<W: DenseWeight> Tiles for Avx2<Dense<'_, W>> {
    fn tile<const R: usize, const A: usize>(&self, r: usize, a: usize) -> [[f32; A]; R] {
        // SAFETY: `Avx2` is only constructed when the CPU has AVX2/FMA/F16C.
        unsafe { dense_tile::<W, R, A>(&self.0, r, a) }
    }

    fn gemm_chunk(&self, r0: usize, outs: &mut [&mut [f32]]) {
        super::tiled_chunk::<Self, DENSE_GEMM_ROWS, DENSE_GEMM_ACTS>(self, r0, outs);
    }
}
