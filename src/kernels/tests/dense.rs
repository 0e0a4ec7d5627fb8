//! Dense F32 / F16 kernels vs an f64 reference, on every available ISA.
//!
//! Tolerance: each output is a sum of `cols` products accumulated in f32
//! (in up to 4 interleaved partial sums, then combined), so the classic
//! bound gives `|err| <= (cols + 4) u * sum |w x|`.

use half::f16;

use super::{activations, Rng, U};
use crate::kernels::isa::Isa;
use crate::kernels::PackedMatrix;

fn check(got: &[f32], w: &[f64], x: &[f32], (rows, cols, m): (usize, usize, usize), what: &str) {
    for a in 0..m {
        for r in 0..rows {
            let (wr, xr) = (&w[r * cols..(r + 1) * cols], &x[a * cols..(a + 1) * cols]);
            let exact: f64 = wr.iter().zip(xr).map(|(&w, &x)| w * f64::from(x)).sum();
            let mag: f64 = wr
                .iter()
                .zip(xr)
                .map(|(&w, &x)| (w * f64::from(x)).abs())
                .sum();
            let tol = (cols as f64 + 4.0) * U * mag;
            let g = f64::from(got[a * rows + r]);
            assert!(
                (g - exact).abs() <= tol,
                "{what} {rows}x{cols} m={m} [{a},{r}]: {g} vs {exact}"
            );
        }
    }
}

fn cases() -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    for rows in [1, 3, 8, 13, 67, 300] {
        for cols in [1, 7, 33, 64, 577] {
            for m in [1, 2, 5, 7, 13, 17] {
                v.push((rows, cols, m));
            }
        }
    }
    v
}

#[test]
fn f32_matches_reference() {
    let mut rng = Rng::new(20);
    for (rows, cols, m) in cases() {
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.f32()).collect();
        let x = activations(&mut rng, m, cols);
        let p = PackedMatrix::from_f32(rows, cols, w.clone()).unwrap();
        let wd: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        for isa in Isa::available() {
            let mut out = vec![f32::NAN; m * rows];
            p.matmul_on(isa, &x, m, &mut out).unwrap();
            check(&out, &wd, &x, (rows, cols, m), &format!("F32 {isa:?}"));
        }
    }
}

#[test]
fn f16_matches_reference() {
    let mut rng = Rng::new(21);
    for (rows, cols, m) in cases() {
        let w: Vec<f16> = (0..rows * cols).map(|_| f16::from_f32(rng.f32())).collect();
        let x = activations(&mut rng, m, cols);
        let p = PackedMatrix::from_f16(rows, cols, w.clone()).unwrap();
        let wd: Vec<f64> = w.iter().map(|&v| f64::from(v.to_f32())).collect();
        for isa in Isa::available() {
            let mut out = vec![f32::NAN; m * rows];
            p.matmul_on(isa, &x, m, &mut out).unwrap();
            check(&out, &wd, &x, (rows, cols, m), &format!("F16 {isa:?}"));
        }
    }
}
