//! Quantized kernels vs an f64 reference, on every available ISA.
//!
//! Tolerances (u = 2^-24, the f32 unit roundoff):
//! * Against the reference with the *same* quantized activations: integer
//!   block sums are exact; each block (or super-block) adds a few f32
//!   roundings (scale products, the int-to-float conversion, the FMA), the
//!   reference's f32 dequantization adds one or two per weight, and the
//!   blocks are accumulated in f32, so `|err| <= (nb + 32) u * mag` with
//!   `nb = cols / 32` and `mag = sum |w terms| |x|`, where a weight's terms
//!   are its scale part and its min part taken apart (they may cancel).
//! * Against the unquantized f32 activations: rounding leaves
//!   `|x - d q| <= |d| / 2` per value, so the extra error is at most
//!   `sum |w| |d| / 2` (with 1% slack).

use super::{activations, Rng, U};
use crate::kernels::act::{ActKind, QuantActs};
use crate::kernels::formats::block32::Blocks;
use crate::kernels::formats::kscale::ScaleMin;
use crate::kernels::formats::{q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, QuantFormat};
use crate::kernels::isa::Isa;
use crate::kernels::{PackedMatrix, WeightFormat};

/// The quantized formats.
pub(super) const QUANT: [WeightFormat; 8] = [
    WeightFormat::Q4_0,
    WeightFormat::Q4_1,
    WeightFormat::Q5_0,
    WeightFormat::Q5_1,
    WeightFormat::Q8_0,
    WeightFormat::Q4_K,
    WeightFormat::Q5_K,
    WeightFormat::Q6_K,
];

/// ggml's dequantization of one block of `format`.
fn dequantize_block(format: WeightFormat, block: &[u8], out: &mut [f32]) {
    match format {
        WeightFormat::Q4_0 => Blocks::<q4_0::Q4_0>::dequantize(block, out),
        WeightFormat::Q4_1 => Blocks::<q4_1::Q4_1>::dequantize(block, out),
        WeightFormat::Q5_0 => Blocks::<q5_0::Q5_0>::dequantize(block, out),
        WeightFormat::Q5_1 => Blocks::<q5_1::Q5_1>::dequantize(block, out),
        WeightFormat::Q8_0 => Blocks::<q8_0::Q8_0>::dequantize(block, out),
        WeightFormat::Q4_K => ScaleMin::<q4_k::Q4K>::dequantize(block, out),
        WeightFormat::Q5_K => ScaleMin::<q5_k::Q5K>::dequantize(block, out),
        WeightFormat::Q6_K => q6_k::Q6K::dequantize(block, out),
        _ => unreachable!(),
    }
}

/// Where a block keeps its f16 fields: `(scale, min)` byte offsets.
fn f16_fields(format: WeightFormat) -> (usize, Option<usize>) {
    match format {
        WeightFormat::Q4_1 | WeightFormat::Q5_1 | WeightFormat::Q4_K | WeightFormat::Q5_K => {
            (0, Some(2))
        }
        WeightFormat::Q6_K => (208, None),
        _ => (0, None),
    }
}

/// Row `r` of ggml data `w`, dequantized.
pub(super) fn dequantize(format: WeightFormat, w: &[u8], cols: usize, r: usize) -> Vec<f32> {
    let (bb, bv) = (format.block_bytes(), format.block_values());
    let row = &w[r * cols / bv * bb..(r + 1) * cols / bv * bb];
    let mut out = vec![0.0; cols];
    for (blk, out) in row.chunks(bb).zip(out.chunks_mut(bv)) {
        dequantize_block(format, blk, out);
    }
    out
}

/// Per value of row `r`: `(w, |scale part| + |min part|)`.
fn weights_and_magnitudes(
    format: WeightFormat,
    w: &[u8],
    cols: usize,
    r: usize,
) -> Vec<(f64, f64)> {
    let full = dequantize(format, w, cols, r);
    let (d_at, min_at) = f16_fields(format);
    let Some(min_at) = min_at else {
        return full
            .iter()
            .map(|&v| (f64::from(v), f64::from(v.abs())))
            .collect();
    };
    let part = |zero: usize| {
        let mut w = w.to_vec();
        for blk in w.chunks_mut(format.block_bytes()) {
            blk[zero..zero + 2].fill(0);
        }
        dequantize(format, &w, cols, r)
    };
    let (scale_part, min_part) = (part(min_at), part(d_at));
    full.iter()
        .zip(scale_part.iter().zip(&min_part))
        .map(|(&v, (&s, &m))| (f64::from(v), f64::from(s.abs()) + f64::from(m.abs())))
        .collect()
}

/// Random ggml blocks with sane f16 fields. Every 7th block is all zero;
/// the block after it has extreme scales (k-quants: all 6-bit scales and
/// mins 63; Q6_K: scales -128 and 127).
pub(super) fn ggml_weights(
    rng: &mut Rng,
    format: WeightFormat,
    rows: usize,
    cols: usize,
) -> Vec<u8> {
    let bb = format.block_bytes();
    let (d_at, min_at) = f16_fields(format);
    let mut w = rng.bytes(rows * cols / format.block_values() * bb);
    for (i, blk) in w.chunks_mut(bb).enumerate() {
        blk[d_at..d_at + 2].copy_from_slice(&rng.f16_bytes(0.02));
        if let Some(m) = min_at {
            blk[m..m + 2].copy_from_slice(&rng.f16_bytes(0.05));
        }
        match (i % 7, format) {
            (3, _) => blk.fill(0),
            (4, WeightFormat::Q4_K | WeightFormat::Q5_K) => blk[4..16].fill(0xFF),
            (4, WeightFormat::Q6_K) => {
                for (j, s) in blk[192..208].iter_mut().enumerate() {
                    *s = if j % 2 == 0 { 0x80 } else { 0x7F };
                }
            }
            _ => {}
        }
    }
    w
}

/// The activation quantization `format` uses.
fn act_kind(format: WeightFormat) -> ActKind {
    if format.block_values() == 256 {
        ActKind::Q8K
    } else {
        ActKind::Q8
    }
}

/// Activation quantization error bound, in steps of the stored scale.
const QERR_STEPS: f64 = 0.5 + 127.0 / 2048.0 * 1.01;

/// Checks `got` (m x rows) against f64 references built from `w` and `x`.
fn check(
    format: WeightFormat,
    got: &[f32],
    w: &[u8],
    x: &[f32],
    (rows, cols, m): (usize, usize, usize),
    isa: Isa,
) {
    let kind = act_kind(format);
    let acts = QuantActs::quantize(kind, x, cols);
    let xq: Vec<f64> = acts
        .qs
        .iter()
        .enumerate()
        .map(|(i, &q)| f64::from(acts.d[i / kind.block()]) * f64::from(q))
        .collect();
    let nb = (cols / 32) as f64;
    for r in 0..rows {
        let wm = weights_and_magnitudes(format, w, cols, r);
        for a in 0..m {
            let (mut exact, mut mag, mut full, mut qerr) = (0.0, 0.0, 0.0, 0.0);
            for (c, &(wv, wmag)) in wm.iter().enumerate() {
                let i = a * cols + c;
                exact += wv * xq[i];
                mag += wmag * xq[i].abs();
                full += wv * f64::from(x[i]);
                // Half a step, plus (Q8's f16 scale) 127 quants times the
                // scale's f16 rounding error (at most 2^-11 relative).
                qerr += wv.abs() * f64::from(acts.d[i / kind.block()]).abs() * QERR_STEPS;
            }
            let g = f64::from(got[a * rows + r]);
            let tol = (nb + 32.0) * U * mag + 1e-30;
            let at = format!("{format} {isa:?} {rows}x{cols} m={m} [{a},{r}]");
            assert!((g - exact).abs() <= tol, "{at}: {g} vs {exact} (tol {tol})");
            let tol = qerr * 1.01 + tol;
            assert!(
                (g - full).abs() <= tol,
                "{at}: {g} vs f32-x {full} (tol {tol})"
            );
        }
    }
}

/// Runs every (rows, cols, m) case of `format` on every ISA.
fn check_format(format: WeightFormat, seed: u64) {
    let mut rng = Rng::new(seed);
    let bv = format.block_values();
    let mut cases = Vec::new();
    for rows in [1, 3, 8, 13, 67] {
        for blocks in [1, 3, 18 * 32 / bv.max(32)] {
            for m in [1, 2, 5, 17] {
                cases.push((rows, blocks * bv, m));
            }
        }
    }
    // Several tasks and a partial last group.
    cases.extend([(300, 2 * bv.max(256), 1), (300, 2 * bv.max(256), 9)]);
    for (rows, cols, m) in cases {
        let w = ggml_weights(&mut rng, format, rows, cols);
        let x = activations(&mut rng, m, cols);
        let p = PackedMatrix::from_ggml(format, rows, cols, &w).unwrap();
        for isa in Isa::available() {
            let mut out = vec![f32::NAN; m * rows];
            p.matmul_on(isa, &x, m, &mut out).unwrap();
            check(format, &out, &w, &x, (rows, cols, m), isa);
        }
    }
}

#[test]
fn q4_0_matches_reference() {
    check_format(WeightFormat::Q4_0, 1);
}

#[test]
fn q4_1_matches_reference() {
    check_format(WeightFormat::Q4_1, 2);
}

#[test]
fn q5_0_matches_reference() {
    check_format(WeightFormat::Q5_0, 3);
}

#[test]
fn q5_1_matches_reference() {
    check_format(WeightFormat::Q5_1, 4);
}

#[test]
fn q8_0_matches_reference() {
    check_format(WeightFormat::Q8_0, 5);
}

#[test]
fn q4_k_matches_reference() {
    check_format(WeightFormat::Q4_K, 6);
}

#[test]
fn q5_k_matches_reference() {
    check_format(WeightFormat::Q5_K, 7);
}

#[test]
fn q6_k_matches_reference() {
    check_format(WeightFormat::Q6_K, 8);
}

/// AVX-512's 16-row tiles (two groups per register) and the 8-row tiles
/// AVX2 runs give the same bits: integer sums are exact and the f32 steps
/// are the same, lane for lane.
#[test]
fn every_simd_width_gives_the_same_bits() {
    let isas: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|&i| i != Isa::Scalar)
        .collect();
    let mut rng = Rng::new(9);
    for format in QUANT {
        // 9 groups: four pairs and an odd one; m = 7: a 4-row and a 3-row tile.
        let (rows, cols, m) = (67, 2 * format.block_values().max(256), 7);
        let w = ggml_weights(&mut rng, format, rows, cols);
        let x = activations(&mut rng, m, cols);
        let p = PackedMatrix::from_ggml(format, rows, cols, &w).unwrap();
        let outs: Vec<Vec<u32>> = isas
            .iter()
            .map(|&isa| {
                let mut out = vec![f32::NAN; m * rows];
                p.matmul_on(isa, &x, m, &mut out).unwrap();
                out.iter().map(|v| v.to_bits()).collect()
            })
            .collect();
        for (isa, out) in isas.iter().zip(&outs).skip(1) {
            assert!(
                out == &outs[0],
                "{format}: {isa:?} differs from {:?}",
                isas[0]
            );
        }
    }
}
