//! The f16 flash-attention row steps with AVX2, FMA and F16C, bit-identical
//! to the portable ones in `ggml_f16` (lane-wise fused multiply-adds, the
//! same accumulator lanes, round-to-nearest-even f16 conversions).

use std::arch::x86_64::*;

use crate::kernels::f16_row::{reduce_dot, RowOps};

/// [`RowOps`] with AVX2 + FMA + F16C; only built after
/// [`crate::kernels::isa::Isa::detect`] found them.
pub(crate) struct F16c;

impl RowOps for F16c {
    fn dot(&self, x: &[f32], y: &[f32]) -> f32 {
        // SAFETY: `F16c` is only used on CPUs with AVX2, FMA and F16C.
        unsafe { dot(x, y) }
    }
    fn scale(&self, a: &mut [f32], m: f32) {
        // SAFETY: as above.
        unsafe { scale(a, m) }
    }
    fn mad(&self, a: &mut [f32], v: &[f32], s: f32) {
        // SAFETY: as above.
        unsafe { mad(a, v, s) }
    }
}

/// `x` rounded to f16 and back, 8 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
fn round8(x: __m256) -> __m256 {
    _mm256_cvtph_ps(_mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(x))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot(x: &[f32], y: &[f32]) -> f32 {
    let whole = x.len().min(y.len()) / 64 * 64;
    let mut acc = [_mm256_setzero_ps(); 8];
    for i in (0..whole).step_by(64) {
        for (r, a) in acc.iter_mut().enumerate() {
            // SAFETY: `i + 8 r + 8 <= whole`; `loadu` needs no alignment.
            let (xv, yv) = unsafe {
                (
                    _mm256_loadu_ps(x.as_ptr().add(i + 8 * r)),
                    _mm256_loadu_ps(y.as_ptr().add(i + 8 * r)),
                )
            };
            *a = _mm256_fmadd_ps(xv, yv, *a);
        }
    }
    let mut lanes = [[0.0f32; 16]; 4];
    for (j, l) in lanes.iter_mut().enumerate() {
        // SAFETY: 8 writable f32 at each half of `l`.
        unsafe {
            _mm256_storeu_ps(l.as_mut_ptr(), acc[2 * j]);
            _mm256_storeu_ps(l.as_mut_ptr().add(8), acc[2 * j + 1]);
        }
    }
    reduce_dot(&lanes, &x[whole..], &y[whole..])
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale(a: &mut [f32], m: f32) {
    let mv = _mm256_set1_ps(m);
    let (chunks, tail) = a.as_chunks_mut::<8>();
    for c in chunks {
        // SAFETY: 8 readable and writable f32.
        unsafe {
            _mm256_storeu_ps(
                c.as_mut_ptr(),
                round8(_mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), mv)),
            )
        };
    }
    for a in tail {
        *a = half::f16::from_f32(*a * m).to_f32();
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mad(a: &mut [f32], v: &[f32], s: f32) {
    let sv = _mm256_set1_ps(s);
    let (chunks, tail) = a.as_chunks_mut::<8>();
    let (vchunks, vtail) = v[..chunks.len() * 8 + tail.len()].as_chunks::<8>();
    for (c, vc) in chunks.iter_mut().zip(vchunks) {
        // SAFETY: 8 readable and writable f32 in `c`, 8 readable in `vc`.
        unsafe {
            let r = _mm256_fmadd_ps(
                _mm256_loadu_ps(vc.as_ptr()),
                sv,
                _mm256_loadu_ps(c.as_ptr()),
            );
            _mm256_storeu_ps(c.as_mut_ptr(), round8(r));
        }
    }
    for (a, &v) in tail.iter_mut().zip(vtail) {
        *a = half::f16::from_f32(v.mul_add(s, *a)).to_f32();
    }
}
