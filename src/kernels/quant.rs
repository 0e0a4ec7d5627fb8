//! ggml block formats (Q4_1, Q8_0 weights; Q8_1, Q8_0 activations),
//! activation quantization, scalar micro-kernels and the quantized matmuls.

use std::array;

use half::f16;
use rayon::prelude::*;

use super::{check_len, run, Isa, KernelError, Tiles};

/// Values per quantization block.
pub const QK: usize = 32;
/// Bytes per ggml Q4_1 block: `d: f16, m: f16, qs: [u8; 16]`.
pub const Q4_1_BLOCK_BYTES: usize = 20;
/// Bytes per ggml Q8_0 block: `d: f16, qs: [i8; 32]`.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// Q8_1-quantized activations (one or more rows, blocks concatenated).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Q8_1Row {
    /// Per block `[d, s]`: scale `d = amax / 127` and `s = d * sum(qs)`.
    pub ds: Vec<[f32; 2]>,
    /// Per block quantized values; value `j` is `d * qs[j]`.
    pub qs: Vec<[i8; QK]>,
}

/// Q8_0-quantized activations (one or more rows, blocks concatenated).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Q8_0Row {
    /// Per block scale `d = amax / 127`.
    pub d: Vec<f32>,
    /// Per block quantized values; value `j` is `d * qs[j]`.
    pub qs: Vec<[i8; QK]>,
}

/// Quantizes one block like ggml's reference: `d = amax / 127`,
/// `q = round(x / d)` (half away from zero). Returns `(d, sum(q))`.
fn quantize_block(x: &[f32; QK], q: &mut [i8; QK]) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0;
    for (q, v) in q.iter_mut().zip(x) {
        *q = round_away(v * id) as i8;
        sum += i32::from(*q);
    }
    (d, sum)
}

/// `v.round()` (half away from zero) for `|v| <= 127.5`, without the libm
/// call that `f32::round` compiles to on baseline x86-64.
pub(crate) fn round_away(v: f32) -> i32 {
    let t = v as i32;
    // Exact: `v - t` only drops the integer part.
    let frac = v - t as f32;
    t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)
}

/// Splits `x` into blocks, checking `x.len()` is a multiple of [`QK`].
fn blocks(x: &[f32]) -> Result<&[[f32; QK]], KernelError> {
    match x.as_chunks::<QK>() {
        (b, []) => Ok(b),
        _ => Err(KernelError::ColsNotBlockMultiple { cols: x.len() }),
    }
}

/// Quantizes activations to Q8_1 (`x.len()` must be a multiple of 32).
pub fn quantize_row_q8_1(x: &[f32]) -> Result<Q8_1Row, KernelError> {
    let xb = blocks(x)?;
    let mut r = Q8_1Row {
        ds: vec![[0.0; 2]; xb.len()],
        qs: vec![[0; QK]; xb.len()],
    };
    fill_q8_1(xb, &mut r.ds, &mut r.qs);
    Ok(r)
}

/// Quantizes activations to Q8_0 (`x.len()` must be a multiple of 32).
pub fn quantize_row_q8_0(x: &[f32]) -> Result<Q8_0Row, KernelError> {
    let xb = blocks(x)?;
    let mut r = Q8_0Row {
        d: vec![0.0; xb.len()],
        qs: vec![[0; QK]; xb.len()],
    };
    fill_q8_0(xb, &mut r.d, &mut r.qs);
    Ok(r)
}

fn fill_q8_1(x: &[[f32; QK]], ds: &mut [[f32; 2]], qs: &mut [[i8; QK]]) {
    for ((x, ds), q) in x.iter().zip(ds).zip(qs) {
        let (d, sum) = quantize_block(x, q);
        *ds = [d, d * sum as f32];
    }
}

fn fill_q8_0(x: &[[f32; QK]], ds: &mut [f32], qs: &mut [[i8; QK]]) {
    for ((x, d), q) in x.iter().zip(ds).zip(qs) {
        *d = quantize_block(x, q).0;
    }
}

/// Quantizes `m` rows of `nb` blocks to Q8_1, in parallel over rows.
fn quantize_rows_q8_1(x: &[[f32; QK]], nb: usize) -> Q8_1Row {
    let mut r = Q8_1Row {
        ds: vec![[0.0; 2]; x.len()],
        qs: vec![[0; QK]; x.len()],
    };
    x.par_chunks(nb)
        .zip(r.ds.par_chunks_mut(nb))
        .zip(r.qs.par_chunks_mut(nb))
        .for_each(|((x, ds), qs)| fill_q8_1(x, ds, qs));
    r
}

/// Quantizes `m` rows of `nb` blocks to Q8_0, in parallel over rows.
fn quantize_rows_q8_0(x: &[[f32; QK]], nb: usize) -> Q8_0Row {
    let mut r = Q8_0Row {
        d: vec![0.0; x.len()],
        qs: vec![[0; QK]; x.len()],
    };
    x.par_chunks(nb)
        .zip(r.d.par_chunks_mut(nb))
        .zip(r.qs.par_chunks_mut(nb))
        .for_each(|((x, d), qs)| fill_q8_0(x, d, qs));
    r
}

/// Reads a little-endian f16 at `b[0..2]` as f32.
pub(crate) fn f16_at(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Validates the shapes of a quantized matmul with `block_bytes` blocks.
fn check_quant(
    w: &[u8],
    block_bytes: usize,
    (rows, cols, m): (usize, usize, usize),
    x: &[f32],
    out: &[f32],
) -> Result<(), KernelError> {
    if !cols.is_multiple_of(QK) {
        return Err(KernelError::ColsNotBlockMultiple { cols });
    }
    check_len("w", w.len(), rows * cols / QK * block_bytes)?;
    check_len("x", x.len(), m * cols)?;
    check_len("out", out.len(), m * rows)
}

/// Q4_1 weights times Q8_1 activations; `nb` blocks per row.
pub(crate) struct Q4_1Kernel<'a> {
    pub(crate) w: &'a [[u8; Q4_1_BLOCK_BYTES]],
    pub(crate) x: Q8_1Row,
    pub(crate) nb: usize,
}

/// Q8_0 weights times Q8_0 activations; `nb` blocks per row.
pub(crate) struct Q8_0Kernel<'a> {
    pub(crate) w: &'a [[u8; Q8_0_BLOCK_BYTES]],
    pub(crate) x: Q8_0Row,
    pub(crate) nb: usize,
}

/// Weight row `r` / activation row `a` block ranges.
fn rows_of<T>(v: &[T], r: usize, nb: usize) -> &[T] {
    &v[r * nb..(r + 1) * nb]
}

impl Q4_1Kernel<'_> {
    fn dot(&self, r: usize, a: usize) -> f32 {
        let w = rows_of(self.w, r, self.nb);
        let ds = rows_of(&self.x.ds, a, self.nb);
        let qs = rows_of(&self.x.qs, a, self.nb);
        let mut acc = 0.0;
        for ((b, [dy, sy]), y) in w.iter().zip(ds).zip(qs) {
            let (lo, hi) = y.split_at(QK / 2);
            let mut sumi = 0i32;
            for ((q, l), h) in b[4..].iter().zip(lo).zip(hi) {
                sumi += i32::from(q & 0x0F) * i32::from(*l) + i32::from(q >> 4) * i32::from(*h);
            }
            acc += f16_at(b) * dy * sumi as f32 + f16_at(&b[2..]) * sy;
        }
        acc
    }
}

impl Q8_0Kernel<'_> {
    fn dot(&self, r: usize, a: usize) -> f32 {
        let w = rows_of(self.w, r, self.nb);
        let d = rows_of(&self.x.d, a, self.nb);
        let qs = rows_of(&self.x.qs, a, self.nb);
        let mut acc = 0.0;
        for ((b, dy), y) in w.iter().zip(d).zip(qs) {
            let sumi: i32 = b[2..]
                .iter()
                .zip(y)
                .map(|(&q, &v)| i32::from(q as i8) * i32::from(v))
                .sum();
            acc += f16_at(b) * dy * sumi as f32;
        }
        acc
    }
}

impl Tiles for Q4_1Kernel<'_> {
    fn tile<const R: usize, const A: usize>(&self, r: usize, a: usize) -> [[f32; A]; R] {
        array::from_fn(|i| array::from_fn(|j| self.dot(r + i, a + j)))
    }
}

impl Tiles for Q8_0Kernel<'_> {
    fn tile<const R: usize, const A: usize>(&self, r: usize, a: usize) -> [[f32; A]; R] {
        array::from_fn(|i| array::from_fn(|j| self.dot(r + i, a + j)))
    }
}

/// Q4_1 x Q8_1 matmul on `isa` (see [`super::matmul_q4_1`]).
pub(crate) fn matmul_q4_1(
    isa: Isa,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    check_quant(w, Q4_1_BLOCK_BYTES, (rows, cols, m), x, out)?;
    let (w, xb) = (w.as_chunks().0, blocks(x)?);
    let nb = cols / QK;
    let k = Q4_1Kernel {
        w,
        x: quantize_rows_q8_1(xb, nb.max(1)),
        nb,
    };
    let row_bytes = nb * Q4_1_BLOCK_BYTES;
    match isa {
        Isa::Scalar => run(&k, rows, m, row_bytes, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => run(&super::simd::Avx2::new(k), rows, m, row_bytes, out),
    }
    Ok(())
}

/// Q8_0 x Q8_0 matmul on `isa` (see [`super::matmul_q8_0`]).
pub(crate) fn matmul_q8_0(
    isa: Isa,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    check_quant(w, Q8_0_BLOCK_BYTES, (rows, cols, m), x, out)?;
    let (w, xb) = (w.as_chunks().0, blocks(x)?);
    let nb = cols / QK;
    let k = Q8_0Kernel {
        w,
        x: quantize_rows_q8_0(xb, nb.max(1)),
        nb,
    };
    let row_bytes = nb * Q8_0_BLOCK_BYTES;
    match isa {
        Isa::Scalar => run(&k, rows, m, row_bytes, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => run(&super::simd::Avx2::new(k), rows, m, row_bytes, out),
    }
    Ok(())
}
