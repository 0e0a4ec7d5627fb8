//! x86-64 kernels: AVX2 (+FMA, F16C) and AVX-512 (F/BW/VL + VNNI).
//!
//! Both instruction sets run the same generic kernel bodies; they differ
//! in [`Simd`]'s byte dot product (`vpmaddubsw` + `vpmaddwd` vs VNNI's
//! `vpdpbusd`) and in tile sizes (AVX-512 has 32 vector registers, even for
//! 256-bit operations). The quantized tiles are 256-bit (8 rows) under
//! AVX2 and 512-bit under AVX-512 (16 rows, two groups per register,
//! `wide`): one broadcast of activation bytes then feeds twice the rows,
//! which measured faster even on Zen 4, whose 512-bit operations run as
//! two 256-bit halves (fewer loads and broadcasts per multiply-add); the
//! dense F32 / F16 tiles, FMA-bound in prefill, use 512-bit registers
//! under AVX-512 too. The bodies are
//! `#[inline(always)]` and are instantiated inside the `#[target_feature]`
//! entry points of [`Simd`], so every intrinsic compiles to one instruction.
//! (Closures do not inherit target features: intrinsics inside
//! `array::from_fn(|..| ..)` would become calls, so the bodies use loops.)
//!
//! This module depends on the formats' layouts (`super::formats`), never
//! the reverse.

pub(crate) mod act;
mod blocks;
mod dense;
pub(crate) mod f16;
mod kquants;
mod unit;
mod wide;

use std::arch::x86_64::*;
use std::ops::Range;

use super::act::QuantActs;
use super::driver::GroupKernel;
use super::formats::dense::DenseElem;
use super::formats::{QuantFormat, GROUP};

pub(crate) use dense::DenseSimd;

/// An instruction set's primitives; a value exists only on a CPU that has it.
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    /// Activation rows per quantized tile in prefill (at most 4).
    const QUANT_ACTS: usize;

    /// `acc + sum of the 4 byte products` in each 32-bit lane, for unsigned
    /// `w` below 128 and signed `x`.
    fn dot4(self, acc: __m256i, w: __m256i, x: __m256i) -> __m256i;

    /// [`Simd::dot4`] for any unsigned `w`.
    fn dot4_wide(self, acc: __m256i, w: __m256i, x: __m256i) -> __m256i;

    /// Runs [`GroupKernel::chunk`] for a quantized format.
    ///
    /// # Safety
    /// The CPU must support this instruction set.
    unsafe fn quant_chunk<F: SimdFormat>(
        k: &Quant<'_, F, Self>,
        groups: Range<usize>,
        outs: &mut [&mut [f32]],
    );

    /// Runs [`GroupKernel::chunk`] for a dense format.
    ///
    /// # Safety
    /// The CPU must support this instruction set.
    unsafe fn dense_chunk<E: DenseSimd>(
        k: &Dense<'_, E, Self>,
        groups: Range<usize>,
        outs: &mut [&mut [f32]],
    );
}

/// A quantized format's SIMD tiles: 8 rows on any instruction set, and
/// 16 rows under AVX-512 ([`wide::WideFormat`]).
pub(crate) trait SimdFormat: QuantFormat + wide::WideFormat {
    /// Lane `r` of element `a`: dot of row `r` of `group` (all its group
    /// blocks) with activation row `a0 + a`.
    fn tile<S: Simd, const A: usize>(
        s: S,
        group: &[u8],
        acts: &QuantActs,
        a0: usize,
    ) -> [__m256; A];
}

/// AVX2 + FMA + F16C.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

/// AVX2 + AVX-512 F/BW/VL + VNNI.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(());

impl Simd for Avx2 {
    const QUANT_ACTS: usize = 2;

    #[inline(always)]
    fn dot4(self, acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: an `Avx2` value only exists inside an AVX2 entry point.
        unsafe {
            let pairs = _mm256_maddubs_epi16(w, x);
            _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
        }
    }

    #[inline(always)]
    fn dot4_wide(self, acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: as in `dot4`. `w x = (w - 128) x + 128 x`, each product
        // pair fits `vpmaddubsw`'s i16 without saturating.
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let s = _mm256_xor_si256(w, _mm256_set1_epi8(-128));
            let centred = _mm256_maddubs_epi16(_mm256_abs_epi8(s), _mm256_sign_epi8(x, s));
            let bias = _mm256_maddubs_epi16(_mm256_set1_epi8(-128), x);
            let acc = _mm256_add_epi32(acc, _mm256_madd_epi16(centred, ones));
            _mm256_add_epi32(acc, _mm256_madd_epi16(bias, ones))
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn quant_chunk<F: SimdFormat>(
        k: &Quant<'_, F, Self>,
        groups: Range<usize>,
        outs: &mut [&mut [f32]],
    ) {
        quant_chunk(Avx2(()), k, groups, outs)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dense_chunk<E: DenseSimd>(
        k: &Dense<'_, E, Self>,
        groups: Range<usize>,
        outs: &mut [&mut [f32]],
    ) {
        dense::chunk(Avx2(()), k, groups, outs)
    }
}

impl Simd for Avx512 {
    const QUANT_ACTS: usize = 4;

    #[inline(always)]
    fn dot4(self, acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: an `Avx512` value only exists inside an AVX-512 entry point.
        unsafe { _mm256_dpbusd_epi32(acc, w, x) }
    }

    #[inline(always)]
    fn dot4_wide(self, acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: as in `dot4`.
        unsafe { _mm256_dpbusd_epi32(acc, w, x) }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn quant_chunk<F: SimdFormat>(
        k: &Quant<'_, F, Self>,
        groups: Range<usize>,
        outs: &mut [&mut [f32]],
    ) {
        // Decode keeps the 8-row tiles: they measured faster for one row
        // (the 16-row tiles win from two activation rows on).
        if outs.len() == 1 {
            quant_chunk(Avx512(()), k, groups, outs)
        } else {
            wide::chunk(Avx512(()), k, groups, outs)
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn dense_chunk<E: DenseSimd>(
        k: &Dense<'_, E, Self>,
        groups: Range<usize>,
        outs: &mut [&mut [f32]],
    ) {
        dense::chunk(Avx512(()), k, groups, outs)
    }
}

/// A quantized matrix times quantized activations on instruction set `S`.
pub(crate) struct Quant<'a, F, S> {
    pub(crate) w: &'a [u8],
    pub(crate) acts: &'a QuantActs,
    isa: std::marker::PhantomData<(F, S)>,
}

impl<'a, F: SimdFormat, S: Simd> Quant<'a, F, S> {
    /// The kernel.
    ///
    /// # Safety
    /// The CPU must support `S`.
    pub(crate) unsafe fn new(w: &'a [u8], acts: &'a QuantActs) -> Self {
        Quant {
            w,
            acts,
            isa: std::marker::PhantomData,
        }
    }
}

impl<F: SimdFormat, S: Simd> GroupKernel for Quant<'_, F, S> {
    fn chunk(&self, groups: Range<usize>, outs: &mut [&mut [f32]]) {
        // SAFETY: `Quant::new`'s caller promised the CPU supports `S`.
        unsafe { S::quant_chunk(self, groups, outs) }
    }
}

/// A dense matrix times f32 activations on instruction set `S`.
pub(crate) struct Dense<'a, E, S> {
    pub(crate) w: &'a [E],
    /// Stored columns (even): the activation rows' stride.
    pub(crate) cols: usize,
    /// Activation rows, each padded with a zero to `cols`.
    pub(crate) x: &'a [f32],
    isa: std::marker::PhantomData<S>,
}

impl<'a, E: DenseSimd, S: Simd> Dense<'a, E, S> {
    /// The kernel.
    ///
    /// # Safety
    /// The CPU must support `S`.
    pub(crate) unsafe fn new(w: &'a [E], cols: usize, x: &'a [f32]) -> Self {
        Dense {
            w,
            cols,
            x,
            isa: std::marker::PhantomData,
        }
    }
}

impl<E: DenseSimd + DenseElem, S: Simd> GroupKernel for Dense<'_, E, S> {
    fn chunk(&self, groups: Range<usize>, outs: &mut [&mut [f32]]) {
        // SAFETY: `Dense::new`'s caller promised the CPU supports `S`.
        unsafe { S::dense_chunk(self, groups, outs) }
    }
}

/// Activation rows in tiles of `S::QUANT_ACTS`, each over every group.
#[inline(always)]
fn quant_chunk<F: SimdFormat, S: Simd>(
    s: S,
    k: &Quant<'_, F, S>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
) {
    let m = outs.len();
    let mut a0 = 0;
    while a0 < m {
        let n = (m - a0).min(S::QUANT_ACTS);
        match n {
            1 => quant_tiles::<F, S, 1>(s, k, groups.clone(), outs, a0),
            2 => quant_tiles::<F, S, 2>(s, k, groups.clone(), outs, a0),
            3 => quant_tiles::<F, S, 3>(s, k, groups.clone(), outs, a0),
            _ => quant_tiles::<F, S, 4>(s, k, groups.clone(), outs, a0),
        }
        a0 += n;
    }
}

#[inline(always)]
fn quant_tiles<F: SimdFormat, S: Simd, const A: usize>(
    s: S,
    k: &Quant<'_, F, S>,
    groups: Range<usize>,
    outs: &mut [&mut [f32]],
    a0: usize,
) {
    let gb = k.acts.cols / F::VALUES * F::GROUP_BYTES;
    for (i, g) in groups.enumerate() {
        let t = F::tile::<S, A>(s, &k.w[g * gb..(g + 1) * gb], k.acts, a0);
        for (a, v) in t.into_iter().enumerate() {
            store_lanes(v, &mut outs[a0 + a][GROUP * i..]);
        }
    }
}

/// Stores the 8 lanes of `v` to `out`, or as many as `out` holds.
#[inline(always)]
fn store_lanes(v: __m256, out: &mut [f32]) {
    if out.len() >= GROUP {
        // SAFETY: `out` has room for 8 f32; `storeu` needs no alignment.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) }
    } else {
        let mut tmp = [0.0f32; GROUP];
        // SAFETY: as above, into `tmp`.
        unsafe { _mm256_storeu_ps(tmp.as_mut_ptr(), v) }
        let n = out.len();
        out.copy_from_slice(&tmp[..n]);
    }
}
