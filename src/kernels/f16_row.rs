//! The element-wise steps of llama.cpp's f16 flash attention for one query
//! row (ggml's f16 dot product and its f16 rounding), as a trait the
//! instruction-set files implement, with the portable version.

/// `v` rounded to the nearest f16 (ties to even), as f32.
pub fn round_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// The element-wise steps of one row, on some instruction set.
pub(crate) trait RowOps {
    /// [`dot_f16`].
    fn dot(&self, x: &[f32], y: &[f32]) -> f32;
    /// `a = f16(a * m)`.
    fn scale(&self, a: &mut [f32], m: f32);
    /// `a = f16(fma(v, s, a))`.
    fn mad(&self, a: &mut [f32], v: &[f32], s: f32);
}

/// Portable [`RowOps`].
pub(crate) struct Portable;

impl RowOps for Portable {
    fn dot(&self, x: &[f32], y: &[f32]) -> f32 {
        dot_f16(x, y)
    }
    fn scale(&self, a: &mut [f32], m: f32) {
        a.iter_mut().for_each(|a| *a = round_f16(*a * m));
    }
    fn mad(&self, a: &mut [f32], v: &[f32], s: f32) {
        for (a, &v) in a.iter_mut().zip(v) {
            *a = round_f16(v.mul_add(s, *a));
        }
    }
}

/// ggml's AVX-512 `ggml_vec_dot_f16` on f16 values: four 16-lane fused
/// multiply-add accumulators over steps of 64, folded `0 + 2, 1 + 3`, then
/// `0 + 1`, then `_mm512_reduce_add_ps`'s tree; a tail of fewer than 64
/// values is added one product at a time in f64.
pub(crate) fn dot_f16(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [[0.0f32; 16]; 4];
    let whole = x.len() / 64 * 64;
    for (xs, ys) in x[..whole].chunks_exact(64).zip(y[..whole].chunks_exact(64)) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, a) in a.iter_mut().enumerate() {
                *a = xs[16 * j + l].mul_add(ys[16 * j + l], *a);
            }
        }
    }
    reduce_dot(&acc, &x[whole..], &y[whole..])
}

/// The end of [`dot_f16`]: ggml's fold of the accumulators, then the tail.
pub(crate) fn reduce_dot(acc: &[[f32; 16]; 4], x: &[f32], y: &[f32]) -> f32 {
    let lanes: [f32; 16] =
        std::array::from_fn(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]));
    let t3: [f32; 8] = std::array::from_fn(|l| lanes[l + 8] + lanes[l]);
    let t6: [f32; 4] = std::array::from_fn(|l| t3[l + 4] + t3[l]);
    let mut sum = f64::from((t6[0] + t6[2]) + (t6[1] + t6[3]));
    for (a, b) in x.iter().zip(y) {
        sum += f64::from(a * b);
    }
    sum as f32
}
