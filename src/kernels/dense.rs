//! Dense f32 / f16 weights: scalar micro-kernel and the matmul driver.

use std::array;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::__m256;

use half::f16;

use super::{check_len, run, Isa, KernelError, Tiles};

/// A dense weight element type that widens to f32.
pub(crate) trait DenseWeight: Copy + Sync {
    /// The value as f32.
    fn to_f32(self) -> f32;

    /// Loads 8 values widened to f32.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(v: &[Self; 8]) -> __m256;
}

impl DenseWeight for f32 {
    fn to_f32(self) -> f32 {
        self
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(v: &[f32; 8]) -> __m256 {
        super::simd::load_f32x8(v)
    }
}

impl DenseWeight for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(v: &[f16; 8]) -> __m256 {
        super::simd::load_f16x8(v)
    }
}

/// Dense `rows x cols` weights times f32 activations (`m x cols`).
pub(crate) struct Dense<'a, W> {
    pub(crate) w: &'a [W],
    pub(crate) x: &'a [f32],
    pub(crate) cols: usize,
}

impl<W> Dense<'_, W> {
    /// Weight row `r`.
    pub(crate) fn w_row(&self, r: usize) -> &[W] {
        &self.w[r * self.cols..(r + 1) * self.cols]
    }

    /// Activation row `a`.
    pub(crate) fn x_row(&self, a: usize) -> &[f32] {
        &self.x[a * self.cols..(a + 1) * self.cols]
    }
}

/// Lanes of independent accumulators in the scalar dot (lets LLVM vectorize).
const LANES: usize = 8;

/// Portable dot product with [`LANES`] partial sums.
fn dot<W: DenseWeight>(w: &[W], x: &[f32]) -> f32 {
    let (wc, wt) = w.as_chunks::<LANES>();
    let (xc, xt) = x.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (w, x) in wc.iter().zip(xc) {
        for l in 0..LANES {
            acc[l] += w[l].to_f32() * x[l];
        }
    }
    let tail: f32 = wt.iter().zip(xt).map(|(w, x)| w.to_f32() * x).sum();
    acc.iter().sum::<f32>() + tail
}

impl<W: DenseWeight> Tiles for Dense<'_, W> {
    fn tile<const R: usize, const A: usize>(&self, r: usize, a: usize) -> [[f32; A]; R] {
        array::from_fn(|i| array::from_fn(|j| dot(self.w_row(r + i), self.x_row(a + j))))
    }

    fn gemm_chunk(&self, r0: usize, outs: &mut [&mut [f32]]) {
        super::tiled_chunk::<Self, DENSE_GEMM_ROWS, DENSE_GEMM_ACTS>(self, r0, outs);
    }
}

/// Dense matmul on `isa` (see [`super::matmul_f32`]).
pub(crate) fn matmul<W: DenseWeight>(
    isa: Isa,
    w: &[W],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    check_len("w", w.len(), rows * cols)?;
    check_len("x", x.len(), m * cols)?;
    check_len("out", out.len(), m * rows)?;
    let k = Dense { w, x, cols };
    let row_bytes = cols * size_of::<W>();
    match isa {
        Isa::Scalar => run(&k, rows, m, row_bytes, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => run(&super::simd::Avx2::new(k), rows, m, row_bytes, out),
    }
    Ok(())
}

/// Weight rows per tile when m > 1 (each weight vector feeds 4 FMAs and each
/// activation vector 2, keeping loads under the FMA rate).
pub(crate) const DENSE_GEMM_ROWS: usize = 2;
/// Activation rows per tile when m > 1.
pub(crate) const DENSE_GEMM_ACTS: usize = 4;
