//! Q8_0 activation quantization with AVX2, bit-identical to the scalar
//! `act::quantize_q8` (same f16 `d`, same `127 / amax`, same rounding half
//! to even), 32 values at a time.

use std::arch::x86_64::*;

use crate::kernels::act::fp16_scale;

/// [`crate::kernels::act::quantize_q8`] for CPUs with AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn quantize_q8(x: &[f32], qs: &mut [i8], d: &mut [f32], sums: &mut [i16]) {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF));
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (((x, q), d), s) in x
        .chunks_exact(32)
        .zip(qs.chunks_exact_mut(32))
        .zip(d.iter_mut())
        .zip(sums.iter_mut())
    {
        let mut v = [_mm256_setzero_ps(); 4];
        for (i, v) in v.iter_mut().enumerate() {
            // SAFETY: 8 readable f32 at `x[8 i..]`; `loadu` needs no alignment.
            *v = unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * i)) };
        }
        let m01 = _mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask));
        let m23 = _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask));
        let m = _mm256_max_ps(m01, m23);
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
        *d = fp16_scale(amax / 127.0);
        let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
        let mut ints = [_mm256_setzero_si256(); 4];
        for (i, v) in v.iter().enumerate() {
            let p = _mm256_mul_ps(*v, id);
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(p);
            ints[i] = _mm256_cvttps_epi32(r);
        }
        let w = _mm256_packs_epi32(ints[0], ints[1]);
        let z = _mm256_packs_epi32(ints[2], ints[3]);
        let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w, z), order);
        // SAFETY: `q` has 32 writable bytes; `storeu` needs no alignment.
        unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast(), bytes) };
        let pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes);
        let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        let s128 = _mm_add_epi32(
            _mm256_castsi256_si128(quads),
            _mm256_extracti128_si256::<1>(quads),
        );
        let s64 = _mm_add_epi32(s128, _mm_shuffle_epi32::<0b01_00_11_10>(s128));
        let s32 = _mm_add_epi32(s64, _mm_shuffle_epi32::<0b10_11_00_01>(s64));
        *s = _mm_cvtsi128_si32(s32) as i16;
    }
}

/// [`crate::kernels::act::quantize_q8k`] for CPUs with AVX2: the same
/// `max` (first value of largest magnitude), `iscale`, round-to-even and
/// clamp, 256 values at a time.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn quantize_q8k(
    x: &[f32],
    qs: &mut [i8],
    d: &mut [f32],
    sums: &mut [i16],
    bsums: &mut [i16],
) {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF));
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for ((((x, q), d), s), bs) in x
        .chunks_exact(256)
        .zip(qs.chunks_exact_mut(256))
        .zip(d.iter_mut())
        .zip(sums.chunks_exact_mut(8))
        .zip(bsums.chunks_exact_mut(16))
    {
        let mut m = _mm256_setzero_ps();
        for c in x.chunks_exact(8) {
            // SAFETY: 8 readable f32; `loadu` needs no alignment.
            m = _mm256_max_ps(
                m,
                _mm256_and_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, abs_mask),
            );
        }
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
        if amax == 0.0 {
            *d = 0.0;
            q.fill(0);
        } else {
            let max = *x.iter().find(|v| v.abs() == amax).unwrap_or(&amax);
            let iscale = -127.0 / max;
            let (is, cap) = (_mm256_set1_ps(iscale), _mm256_set1_epi32(127));
            for (x, q) in x.chunks_exact(32).zip(q.chunks_exact_mut(32)) {
                let mut ints = [_mm256_setzero_si256(); 4];
                for (i, v) in ints.iter_mut().enumerate() {
                    // SAFETY: 8 readable f32 at `x[8 i..]`.
                    let p = _mm256_mul_ps(is, unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * i)) });
                    let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(p);
                    *v = _mm256_min_epi32(_mm256_cvttps_epi32(r), cap);
                }
                let w = _mm256_packs_epi32(ints[0], ints[1]);
                let z = _mm256_packs_epi32(ints[2], ints[3]);
                let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w, z), order);
                // SAFETY: `q` has 32 writable bytes; `storeu` needs no alignment.
                unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast(), bytes) };
            }
            *d = 1.0 / iscale;
        }
        for (b, q16) in bs.iter_mut().zip(q.chunks_exact(16)) {
            *b = q16.iter().map(|&q| i16::from(q)).sum();
        }
        for (s, b) in s.iter_mut().zip(bs.chunks_exact(2)) {
            *s = b[0] + b[1];
        }
    }
}
