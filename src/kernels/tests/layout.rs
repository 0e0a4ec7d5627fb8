//! Repacking round trips, row lookups, activation quantization and errors.

use super::quant::{ggml_weights, QUANT};
use super::Rng;
use crate::kernels::act::{nearest_int, ActKind, QuantActs};
use crate::kernels::{KernelError, PackedMatrix, WeightFormat};

#[test]
fn repacking_keeps_every_ggml_byte() {
    let mut rng = Rng::new(10);
    for format in QUANT {
        for rows in [1, 3, 8, 13] {
            let cols = 2 * format.block_values();
            let w = ggml_weights(&mut rng, format, rows, cols);
            let p = PackedMatrix::from_ggml(format, rows, cols, &w).unwrap();
            let row_bytes = format.row_bytes(cols).unwrap();
            for r in 0..rows {
                assert_eq!(
                    p.ggml_row(r),
                    &w[r * row_bytes..(r + 1) * row_bytes],
                    "{format} row {r}"
                );
            }
        }
    }
}

#[test]
fn dequantize_rows_matches_the_formats_dequantization() {
    let mut rng = Rng::new(11);
    for format in QUANT {
        let (rows, cols) = (11, 3 * format.block_values());
        let w = ggml_weights(&mut rng, format, rows, cols);
        let p = PackedMatrix::from_ggml(format, rows, cols, &w).unwrap();
        let ids = [10u32, 0, 3, 3];
        let mut out = vec![f32::NAN; ids.len() * cols];
        p.dequantize_rows(&ids, &mut out).unwrap();
        for (&id, got) in ids.iter().zip(out.chunks(cols)) {
            let want = super::quant::dequantize(format, &w, cols, id as usize);
            assert_eq!(got, &want[..], "{format} row {id}");
        }
    }
    let p = PackedMatrix::from_f32(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let mut out = [0.0; 4];
    p.dequantize_rows(&[2, 0], &mut out).unwrap();
    assert_eq!(out, [5.0, 6.0, 1.0, 2.0]);
    let err = p.dequantize_rows(&[3], &mut out[..2]).unwrap_err();
    assert_eq!(err, KernelError::RowOutOfRange { row: 3, rows: 3 });
}

#[test]
fn f16_and_f32_ggml_bytes_are_little_endian_values() {
    let w = [1.5f32, -2.0, 0.25, 8.0];
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    let p = PackedMatrix::from_ggml(WeightFormat::F32, 2, 2, &bytes).unwrap();
    let mut out = [0.0; 4];
    p.dequantize_rows(&[0, 1], &mut out).unwrap();
    assert_eq!(out, w);
    let bytes: Vec<u8> = w
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let p = PackedMatrix::from_ggml(WeightFormat::F16, 2, 2, &bytes).unwrap();
    p.dequantize_rows(&[0, 1], &mut out).unwrap();
    assert_eq!(out, w);
}

#[test]
fn q8_0_activations_follow_ggml_x86() {
    // ggml's x86 quantize_row_q8_0: q = round(x * 127 / amax), half to even.
    let mut x = [0.0f32; 32];
    x[..5].copy_from_slice(&[127.0, 2.5, -2.5, 3.5, 0.4]);
    let a = QuantActs::quantize(ActKind::Q8, &x, 32);
    assert_eq!(
        (a.d[0], &a.qs[..5], a.sums[0]),
        (1.0, &[127, 2, -2, 4, 0][..], 131)
    );
    // The scale is stored as an f16: 1 / 127 is not one.
    x[0] = 1.0;
    let a = QuantActs::quantize(ActKind::Q8, &x[..32], 32);
    assert_eq!(a.d[0], half::f16::from_f32(3.5 / 127.0).to_f32());
    assert_ne!(a.d[0], 3.5 / 127.0);
    let below_half = 0.5f32.next_down();
    let mut vals = vec![below_half, -below_half, 126.5, -127.5, 1e-30];
    vals.extend((-1020..=1020).map(|i| i as f32 / 8.0));
    for v in vals {
        assert_eq!(nearest_int(v), v.round_ties_even() as i32, "{v}");
    }
}

#[test]
fn every_isa_quantizes_activations_identically() {
    let mut rng = Rng::new(12);
    // Random values, exact ties (amax 127 makes 1/d = 1) and a zero block.
    let mut x: Vec<f32> = (0..32 * 64).map(|_| rng.f32() * 5.0).collect();
    for (i, v) in x[..64].iter_mut().enumerate() {
        *v = if i % 32 == 0 {
            127.0
        } else {
            (i as f32 - 40.0) / 2.0
        };
    }
    x[64..96].fill(0.0);
    let want = QuantActs::quantize(ActKind::Q8, &x, 256);
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::isa::Isa::detect() != crate::kernels::isa::Isa::Scalar {
        let simd = |x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [i16]| {
            // SAFETY: the CPU has AVX2 (detected above).
            unsafe { crate::kernels::x86::act::quantize_q8(x, qs, d, s) }
        };
        let simd_k = |x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [i16], b: &mut [i16]| {
            // SAFETY: the CPU has AVX2 (detected above).
            unsafe { crate::kernels::x86::act::quantize_q8k(x, qs, d, s, b) }
        };
        let fns = (
            simd as crate::kernels::act::Q8Fn,
            simd_k as crate::kernels::act::Q8KFn,
        );
        assert_eq!(QuantActs::quantize_with(ActKind::Q8, &x, 256, fns), want);
        // Q8_K: ties at 127 / max, a max of either sign first, a zero block.
        let mut xk = x.clone();
        xk[300] = -xk.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        xk[1024..1280].fill(0.0);
        let want_k = QuantActs::quantize(ActKind::Q8K, &xk, 512);
        assert_eq!(
            QuantActs::quantize_with(ActKind::Q8K, &xk, 512, fns),
            want_k
        );
    }
    assert_eq!(&want.qs[1..4], &[-20, -19, -18]); // -19.5 and -18.5 round to even
}

#[test]
fn q8_k_activations_follow_ggml_reference() {
    // max = -2 (largest magnitude, negative): iscale = 63.5, d = 1 / 63.5.
    let mut x = [0.0f32; 512];
    x[..3].copy_from_slice(&[1.0, -2.0, 0.5]);
    x[300] = 4.0;
    let a = QuantActs::quantize(ActKind::Q8K, &x, 512);
    assert_eq!(&a.qs[..3], &[64, -127, 32]); // 63.5 rounds to even
    assert_eq!(a.d[0], 1.0 / 63.5);
    assert_eq!((a.bsums[0], a.sums[0], a.bsums[1]), (-31, -31, 0));
    // A positive max maps to -127 (d negative), as in ggml.
    assert_eq!((a.qs[300], a.d[1]), (-127, 1.0 / (-127.0 / 4.0)));
    let z = QuantActs::quantize(ActKind::Q8K, &[0.0; 256], 256);
    assert_eq!((z.d[0], z.qs.iter().all(|&q| q == 0)), (0.0, true));
}

#[test]
fn shape_and_format_errors() {
    let err = PackedMatrix::from_ggml(WeightFormat::Q4_K, 2, 320, &[]).unwrap_err();
    assert_eq!(
        err,
        KernelError::ColsNotBlockMultiple {
            format: WeightFormat::Q4_K,
            cols: 320
        }
    );
    assert!(err.to_string().contains("Q4_K"), "{err}");
    let err = PackedMatrix::from_ggml(WeightFormat::Q8_0, 2, 32, &[0; 67]).unwrap_err();
    assert_eq!(
        err,
        KernelError::BadLength {
            what: "bytes",
            expected: 68,
            got: 67
        }
    );
    assert_eq!(
        WeightFormat::from_ggml_type(10),
        Err(KernelError::UnsupportedType(10))
    );
    assert!(PackedMatrix::from_ggml(WeightFormat::Q8_0, usize::MAX, 32, &[]).is_err());
    let p = PackedMatrix::from_ggml(WeightFormat::Q8_0, 2, 32, &[0; 68]).unwrap();
    let err = p.matmul(&[0.0; 32], 1, &mut [0.0; 3]).unwrap_err();
    assert!(err.to_string().contains("`out`"), "{err}");
    assert!(p.matmul(&[0.0; 31], 1, &mut [0.0; 2]).is_err());
    PackedMatrix::from_f16(3, 0, vec![])
        .unwrap()
        .matmul(&[], 1, &mut [0.0; 3])
        .unwrap();
    PackedMatrix::from_f32(0, 4, vec![])
        .unwrap()
        .matmul(&[0.0; 8], 2, &mut [])
        .unwrap();
}

#[test]
fn format_metadata_matches_ggml() {
    for f in WeightFormat::ALL {
        assert_eq!(WeightFormat::from_ggml_type(f.ggml_type()), Ok(f));
        assert_eq!(f.to_string(), f.name());
    }
    let sizes: Vec<_> = WeightFormat::ALL
        .iter()
        .map(|f| (f.name(), f.block_values(), f.block_bytes()))
        .collect();
    assert_eq!(sizes[7], ("Q4_K", 256, 144));
    assert_eq!(sizes[9], ("Q6_K", 256, 210));
    assert_eq!(WeightFormat::Q5_0.row_bytes(576), Ok(18 * 22));
}
