//! Kernels vs f64 references on random data, for every available ISA.
//!
//! Tolerances (u = 2^-24, the f32 unit roundoff):
//! * Dense: the kernels accumulate `cols/8` products per lane, then an 8-lane
//!   horizontal sum and a scalar tail, so the classic bound gives
//!   `|err| <= (cols/8 + 16) u * sum|w x|`.
//! * Quantized vs the reference with the *same* quantized activations: the
//!   integer block sums are exact; each block adds a few f32 roundings and
//!   `nb` block terms are accumulated, so `|err| <= (nb + 16) u * mag`, where
//!   `mag` is the sum of absolute values of all terms (<= 4e-6 relative).
//! * Quantized vs the unquantized f32 activations: round-to-nearest leaves
//!   `|x - d q| <= d/2` per value, so the extra error is at most
//!   `sum_j |w_j| d_block(j) / 2` (we allow 1% slack on that bound).

use half::f16;

use super::quant::{f16_at, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};
use super::*;

const ROWS: [usize; 5] = [1, 3, 67, 576, 1536];
const COLS: [usize; 4] = [32, 96, 576, 1536];
const MS: [usize; 4] = [1, 2, 5, 17];
const U: f64 = f32::EPSILON as f64 / 2.0;

/// SplitMix64 PRNG.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn f16_bytes(&mut self, scale: f32) -> [u8; 2] {
        f16::from_f32(self.f32() * scale).to_le_bytes()
    }
}

fn isas() -> Vec<Isa> {
    let mut v = vec![Isa::Scalar];
    if Isa::detect() != Isa::Scalar {
        v.push(Isa::detect());
    }
    v
}

/// Activations with per-block magnitudes varying over 3 decades and an
/// all-zero block (d = 0) at block 1 of each row when there is one.
fn activations(rng: &mut Rng, m: usize, cols: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..m * cols).map(|_| rng.f32()).collect();
    for (b, blk) in x.chunks_mut(QK.min(cols.max(1))).enumerate() {
        let s = [1.0, 0.0, 0.01, 3.0][b % 4];
        blk.iter_mut().for_each(|v| *v *= s);
    }
    x
}

fn q4_1_weights(rng: &mut Rng, rows: usize, cols: usize) -> Vec<u8> {
    let mut w = Vec::with_capacity(rows * cols / QK * Q4_1_BLOCK_BYTES);
    for _ in 0..rows * cols / QK {
        w.extend(rng.f16_bytes(0.05));
        w.extend(rng.f16_bytes(0.5));
        w.extend((0..16).map(|_| rng.next_u64() as u8));
    }
    w
}

fn q8_0_weights(rng: &mut Rng, rows: usize, cols: usize) -> Vec<u8> {
    let mut w = Vec::with_capacity(rows * cols / QK * Q8_0_BLOCK_BYTES);
    for _ in 0..rows * cols / QK {
        w.extend(rng.f16_bytes(0.01));
        w.extend((0..32).map(|_| rng.next_u64() as u8));
    }
    w
}

/// Per value: `(w, |w| terms for the magnitude)`.
fn dequant_q4_1(w: &[u8]) -> Vec<(f64, f64)> {
    let mut v = Vec::new();
    for b in w.chunks(Q4_1_BLOCK_BYTES) {
        let (d, m) = (f64::from(f16_at(b)), f64::from(f16_at(&b[2..])));
        let q = b[4..]
            .iter()
            .map(|q| q & 15)
            .chain(b[4..].iter().map(|q| q >> 4));
        v.extend(q.map(|q| (d * f64::from(q) + m, (d * f64::from(q)).abs() + m.abs())));
    }
    v
}

fn dequant_q8_0(w: &[u8]) -> Vec<(f64, f64)> {
    let mut v = Vec::new();
    for b in w.chunks(Q8_0_BLOCK_BYTES) {
        let d = f64::from(f16_at(b));
        v.extend(
            b[2..]
                .iter()
                .map(|&q| (d * f64::from(q as i8), (d * f64::from(q as i8)).abs())),
        );
    }
    v
}

/// Quantizes like the kernels, then returns `(dequantized x, d/2 per value)`.
fn requant(x: &[f32], q8_1: bool) -> (Vec<f64>, Vec<f64>) {
    let (d, qs) = if q8_1 {
        let r = quantize_row_q8_1(x).unwrap();
        (r.ds.iter().map(|ds| ds[0]).collect::<Vec<_>>(), r.qs)
    } else {
        let r = quantize_row_q8_0(x).unwrap();
        (r.d, r.qs)
    };
    let xq = qs
        .iter()
        .zip(&d)
        .flat_map(|(q, &d)| q.iter().map(move |&q| f64::from(d) * f64::from(q)));
    let half = d.iter().flat_map(|&d| [f64::from(d) / 2.0; QK]);
    (xq.collect(), half.collect())
}

/// Checks `got` (m x rows) against the f64 reference built from `w` (per
/// value `(w, magnitude)`), `xq` (activations the kernel saw) and `x`.
fn check_quant(got: &[f32], w: &[(f64, f64)], x: &[f32], q8_1: bool, shape: (usize, usize, usize)) {
    let (rows, cols, _) = shape;
    let (xq, half) = requant(x, q8_1);
    let nb = (cols / QK) as f64;
    for (idx, &g) in got.iter().enumerate() {
        let (a, r) = (idx / rows, idx % rows);
        let (wr, xr) = (&w[r * cols..(r + 1) * cols], a * cols..(a + 1) * cols);
        let (mut exact, mut mag, mut full, mut qerr) = (0.0, 0.0, 0.0, 0.0);
        for ((&(wv, wm), &xq), (&xf, &h)) in wr
            .iter()
            .zip(&xq[xr.clone()])
            .zip(x[xr.clone()].iter().zip(&half[xr.clone()]))
        {
            exact += wv * xq;
            mag += wm * xq.abs();
            full += wv * f64::from(xf);
            qerr += wv.abs() * h;
        }
        let g = f64::from(g);
        let tol = (nb + 16.0) * U * mag + 1e-30;
        assert!(
            (g - exact).abs() <= tol,
            "{shape:?} [{a},{r}]: {g} vs {exact} (tol {tol})"
        );
        let tol = qerr * 1.01 + tol;
        assert!(
            (g - full).abs() <= tol,
            "{shape:?} [{a},{r}]: {g} vs f32-x {full} (tol {tol})"
        );
    }
}

#[test]
fn quantize_matches_ggml_reference() {
    let mut x = [0.0f32; QK];
    x[..4].copy_from_slice(&[127.0, 2.5, -2.5, 0.4]);
    let r = quantize_row_q8_1(&x).unwrap();
    assert_eq!(r.ds, vec![[1.0, 127.0]]);
    assert_eq!(&r.qs[0][..4], &[127, 3, -3, 0]);
    let r = quantize_row_q8_0(&[0.0; 64]).unwrap();
    assert_eq!((r.d, r.qs), (vec![0.0; 2], vec![[0; QK]; 2]));
}

#[test]
fn rounding_is_half_away_from_zero() {
    let below_half = 0.5f32.next_down();
    let mut vals = vec![below_half, -below_half, 126.5, -127.5, 1e-30];
    vals.extend((-1020..=1020).map(|i| i as f32 / 8.0));
    for v in vals {
        assert_eq!(quant::round_away(v), v.round() as i32, "{v}");
    }
}

#[test]
fn shape_errors() {
    let mut out = [0.0; 2];
    let err = matmul_q4_1(&[0; 40], 2, 33, &[0.0; 33], 1, &mut out).unwrap_err();
    assert_eq!(err, KernelError::ColsNotBlockMultiple { cols: 33 });
    let err = matmul_q8_0(&[0; 67], 2, 32, &[0.0; 32], 1, &mut out).unwrap_err();
    assert_eq!(
        err,
        KernelError::BadLength {
            what: "w",
            expected: 68,
            got: 67
        }
    );
    let err = matmul_f32(&[0.0; 6], 2, 3, &[0.0; 3], 1, &mut [0.0; 3]).unwrap_err();
    assert!(err.to_string().contains("`out`"));
    assert!(quantize_row_q8_1(&[0.0; 31]).is_err());
}

#[test]
fn q4_1_matches_reference() {
    let mut rng = Rng(1);
    for (rows, cols, m) in shapes(&COLS) {
        let w = q4_1_weights(&mut rng, rows, cols);
        let x = activations(&mut rng, m, cols);
        let wd = dequant_q4_1(&w);
        for isa in isas() {
            let mut out = vec![f32::NAN; m * rows];
            quant::matmul_q4_1(isa, &w, rows, cols, &x, m, &mut out).unwrap();
            check_quant(&out, &wd, &x, true, (rows, cols, m));
        }
    }
}

#[test]
fn q8_0_matches_reference() {
    let mut rng = Rng(2);
    for (rows, cols, m) in shapes(&COLS) {
        let w = q8_0_weights(&mut rng, rows, cols);
        let x = activations(&mut rng, m, cols);
        let wd = dequant_q8_0(&w);
        for isa in isas() {
            let mut out = vec![f32::NAN; m * rows];
            quant::matmul_q8_0(isa, &w, rows, cols, &x, m, &mut out).unwrap();
            check_quant(&out, &wd, &x, false, (rows, cols, m));
        }
    }
}

/// All (rows, cols, m) combinations; the largest ones only for m <= 5 to
/// keep debug-mode test time reasonable.
fn shapes(cols: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    for &r in &ROWS {
        for &c in cols {
            for &m in &MS {
                if r * c * m <= 1536 * 1536 * 5 {
                    v.push((r, c, m));
                }
            }
        }
    }
    v
}

fn check_dense<W: Copy + Into<f64>>(got: &[f32], w: &[W], x: &[f32], shape: (usize, usize, usize)) {
    let (rows, cols, _) = shape;
    for (idx, &g) in got.iter().enumerate() {
        let (a, r) = (idx / rows, idx % rows);
        let (wr, xr) = (&w[r * cols..(r + 1) * cols], &x[a * cols..(a + 1) * cols]);
        let exact: f64 = wr
            .iter()
            .zip(xr)
            .map(|(&w, &x)| w.into() * f64::from(x))
            .sum();
        let mag: f64 = wr
            .iter()
            .zip(xr)
            .map(|(&w, &x)| (w.into() * f64::from(x)).abs())
            .sum();
        let tol = (cols as f64 / 8.0 + 16.0) * U * mag;
        let g = f64::from(g);
        assert!(
            (g - exact).abs() <= tol,
            "{shape:?} [{a},{r}]: {g} vs {exact} (tol {tol})"
        );
    }
}

/// Dense column counts: the quantized ones plus sizes with a scalar tail.
const DENSE_COLS: [usize; 8] = [1, 7, 33, 577, 32, 96, 576, 1536];

#[test]
fn f32_matches_reference() {
    let mut rng = Rng(3);
    for (rows, cols, m) in shapes(&DENSE_COLS) {
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.f32()).collect();
        let x = activations(&mut rng, m, cols);
        for isa in isas() {
            let mut out = vec![f32::NAN; m * rows];
            dense::matmul(isa, &w, rows, cols, &x, m, &mut out).unwrap();
            check_dense(&out, &w, &x, (rows, cols, m));
        }
    }
}

#[test]
fn f16_matches_reference() {
    let mut rng = Rng(4);
    for (rows, cols, m) in shapes(&DENSE_COLS) {
        let w: Vec<f16> = (0..rows * cols).map(|_| f16::from_f32(rng.f32())).collect();
        let x = activations(&mut rng, m, cols);
        for isa in isas() {
            let mut out = vec![f32::NAN; m * rows];
            dense::matmul(isa, &w, rows, cols, &x, m, &mut out).unwrap();
            check_dense(&out, &w, &x, (rows, cols, m));
        }
    }
}

#[test]
fn public_api_uses_detected_isa_and_handles_empty() {
    let mut out = [0.0; 4];
    matmul_f32(
        &[1.0; 6],
        2,
        3,
        &[1.0, 2.0, 3.0, 0.0, 0.0, 1.0],
        2,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, [6.0, 6.0, 1.0, 1.0]);
    matmul_q8_0(&[], 0, 32, &[0.0; 32], 1, &mut []).unwrap();
    matmul_f16(&[], 3, 0, &[], 1, &mut [0.0; 3]).unwrap();
}
