//! The half-precision steps of llama.cpp's CPU graph, reproduced to the bit
//! where they decide its results: the GELU lookup table
//! (`GGML_GELU_FP16`) and flash attention over an f16 KV cache (llama.cpp's
//! default on the CPU: `flash_attn = auto` turns it on, keys and values are
//! stored as f16, the query is converted to f16, and the weighted sum of
//! values accumulates in f16).
//!
//! A quantized model amplifies differences far below f32 rounding (an 8-bit
//! activation quant flips for a change of one ulp), so agreeing with
//! llama.cpp's tokens takes the same rounding steps, not just the same math.

use std::sync::{Mutex, OnceLock};

use half::f16;

use super::attention::AttentionShape;
use super::f16_row::{round_f16, Portable, RowOps};
use super::isa::Isa;
use super::team;

/// ggml's `ggml_gelu_f32`: `0.5 x (1 + tanh(sqrt(2 / pi) x (1 + 0.044715 x^2)))`.
fn gelu_f32(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044_715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)).tanh())
}

/// Tanh-approximated GELU as ggml's CPU backend computes it: 0 below -10,
/// `x` above 10, otherwise `x` rounded to f16 and looked up in a table of
/// `f16(gelu(v))` for every f16 `v`.
pub fn gelu_tanh_f16(x: &mut [f32]) {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|i| f16::from_f32(gelu_f32(f16::from_bits(i).to_f32())).to_f32())
            .collect()
    });
    for v in x {
        *v = if *v <= -10.0 {
            0.0
        } else if *v >= 10.0 {
            *v
        } else {
            table[usize::from(f16::from_f32(*v).to_bits())]
        };
    }
}

/// Query rows from which ggml's CPU flash attention uses its tiled kernel
/// (`GGML_FA_TILE_Q`).
pub const FA_TILE_Q: usize = 64;

/// [`super::attend`] as llama.cpp's CPU flash attention computes it over an
/// f16 cache: `k` and `v` must already hold f16 values (see [`round_f16`]);
/// each query row is scaled by `s.scale` and rounded to f16 (llama.cpp's
/// Gemma graph scales the query before attention; for the power-of-two
/// scales of these models the two orders agree), scores are f16 dot
/// products summed as ggml's AVX-512 `ggml_vec_dot_f16` sums them, and the
/// online softmax keeps its value accumulator in f16.
///
/// With [`FA_TILE_Q`] queries or more (prefill), ggml switches to its tiled
/// kernel, which keeps f32 queries and f32 accumulators over the f16 cache;
/// so does this function, through [`super::attend`].
pub fn attend_f16(q: &[f32], k: &[f32], v: &[f32], s: AttentionShape, out: &mut [f32]) {
    if s.queries >= FA_TILE_Q {
        return super::attend(q, k, v, s, out);
    }
    let hd = s.head_dim;
    let rows = s.batch * s.queries * s.heads;
    assert_eq!(q.len(), rows * hd, "q has the wrong length");
    assert_eq!(out.len(), rows * hd, "out has the wrong length");
    let cache = s.batch * s.kv_heads * s.capacity * hd;
    assert!(k.len() >= cache && v.len() >= cache, "cache is too small");
    assert!(s.start + s.queries <= s.capacity, "cache is too short");
    let isa = Isa::detect();
    let out_rows: Vec<Mutex<&mut [f32]>> = out.chunks_exact_mut(hd).map(Mutex::new).collect();
    team::parallel_for(rows, |row| {
        let (seq_i, head) = (row / s.heads, row % s.heads);
        let (seq, i) = (seq_i / s.queries, seq_i % s.queries);
        let kv = head / (s.heads / s.kv_heads);
        let base = (seq * s.kv_heads + kv) * s.capacity * hd;
        let end = s.start + i + 1;
        let first = s.window.map_or(0, |w| end.saturating_sub(w));
        let keys = &k[base + first * hd..base + end * hd];
        let values = &v[base + first * hd..base + end * hd];
        let mut o = out_rows[row].lock().unwrap_or_else(|p| p.into_inner());
        let q = &q[row * hd..(row + 1) * hd];
        attend_row_f16(isa, q, keys, values, s.scale, &mut o);
    });
}

/// One query row on the best instruction set (identical results).
fn attend_row_f16(isa: Isa, q: &[f32], keys: &[f32], values: &[f32], scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        return attend_row_with(&super::x86::f16::F16c, q, keys, values, scale, out);
    }
    let _ = isa;
    attend_row_with(&Portable, q, keys, values, scale, out)
}

/// One query row: ggml's `flash_attn_ext_f16_one_chunk` for an F16 cache.
fn attend_row_with(
    ops: &impl RowOps,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    scale: f32,
    out: &mut [f32],
) {
    let hd = q.len();
    let q16: Vec<f32> = q.iter().map(|&x| round_f16(x * scale)).collect();
    // f16 values held as f32.
    out.fill(0.0);
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    for (key, value) in keys.chunks_exact(hd).zip(values.chunks_exact(hd)) {
        let s = ops.dot(&q16, key);
        let (mut ms, mut vs) = (1.0f32, 1.0f32);
        if s > max {
            ms = (max - s).exp();
            max = s;
            ops.scale(out, ms);
        } else {
            vs = (s - max).exp();
        }
        ops.mad(out, value, vs);
        sum = sum * ms + vs;
    }
    let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
    out.iter_mut().for_each(|a| *a *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::f16_row::dot_f16;

    fn gelu_f64(x: f64) -> f64 {
        let s = (2.0 / std::f64::consts::PI).sqrt();
        0.5 * x * (1.0 + (s * x * (1.0 + 0.044_715 * x * x)).tanh())
    }

    #[test]
    fn gelu_table_is_gelu_at_f16_precision() {
        let mut x: Vec<f32> = (-1200..=1200).map(|i| i as f32 / 100.0).collect();
        let want: Vec<f64> = x.iter().map(|&v| gelu_f64(f64::from(v))).collect();
        let inputs = x.clone();
        gelu_tanh_f16(&mut x);
        for ((&v, &got), &w) in inputs.iter().zip(&x).zip(&want) {
            if v <= -10.0 {
                assert_eq!(got, 0.0);
            } else if v >= 10.0 {
                assert_eq!(got, v);
            } else {
                // Input and output each rounded to f16 (2^-11 relative),
                // gelu' <= 1.13.
                let tol = 2e-3 * (w.abs() + f64::from(v).abs()) + 1e-7;
                assert!(
                    (f64::from(got) - w).abs() <= tol,
                    "gelu({v}) = {got}, want {w}"
                );
                assert_eq!(got, round_f16(got), "an f16 value");
            }
        }
    }

    #[test]
    fn f16_dot_sums_like_ggml_and_is_exact_on_small_integers() {
        // Products of f16 integers below 2^11 are exact, so every order agrees.
        let x: Vec<f32> = (0..300).map(|i| (i % 13) as f32 - 6.0).collect();
        let y: Vec<f32> = (0..300).map(|i| (i % 7) as f32 - 3.0).collect();
        let want: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert_eq!(dot_f16(&x, &y), want);
        // Order matters for rounding: an f64 or sequential sum gives
        // 2^24 + 2, while ggml's tree adds each 1 to 2^24 on its own
        // (lanes of accumulators 0 and 1 first, then lane 0 + lane 8), and
        // each time 2^24 + 1 rounds to even.
        let mut x = vec![0.0f32; 64];
        let y = vec![1.0f32; 64];
        x[0] = 16_777_216.0;
        x[8] = 1.0;
        x[16] = 1.0;
        assert_eq!(dot_f16(&x, &y), 16_777_216.0);
    }

    #[test]
    fn every_isa_gives_the_same_f16_attention_row() {
        let mut seed = 3u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            round_f16(((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0)
        };
        for hd in [256, 72, 13] {
            let q: Vec<f32> = (0..hd).map(|_| rnd()).collect();
            let k: Vec<f32> = (0..hd * 30).map(|_| rnd()).collect();
            let v: Vec<f32> = (0..hd * 30).map(|_| rnd()).collect();
            let mut want = vec![0.0f32; hd];
            attend_row_with(&Portable, &q, &k, &v, 0.25, &mut want);
            for isa in Isa::available() {
                let mut got = vec![0.0f32; hd];
                attend_row_f16(isa, &q, &k, &v, 0.25, &mut got);
                assert_eq!(got, want, "{isa:?}, head_dim {hd}");
            }
        }
    }

    #[test]
    fn f16_attention_matches_f64_attention_at_f16_precision() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        };
        let s = AttentionShape {
            batch: 1,
            queries: 5,
            start: 70,
            heads: 4,
            kv_heads: 1,
            head_dim: 72,
            capacity: 80,
            scale: 0.125,
            window: Some(40),
        };
        let hd = s.head_dim;
        let q: Vec<f32> = (0..s.queries * s.heads * hd).map(|_| rnd()).collect();
        let k: Vec<f32> = (0..s.capacity * hd).map(|_| round_f16(rnd())).collect();
        let v: Vec<f32> = (0..s.capacity * hd).map(|_| round_f16(rnd())).collect();
        let mut out = vec![0.0f32; q.len()];
        attend_f16(&q, &k, &v, s, &mut out);
        for (row, o) in out.chunks_exact(hd).enumerate() {
            let (i, h) = (row / s.heads, row % s.heads);
            let qr = &q[(i * s.heads + h) * hd..][..hd];
            let end = s.start + i + 1;
            let keys = end - 40..end;
            let sc: Vec<f64> = keys
                .clone()
                .map(|j| {
                    let kr = &k[j * hd..(j + 1) * hd];
                    let d: f64 = qr
                        .iter()
                        .zip(kr)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    d * 0.125
                })
                .collect();
            let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for (c, &got) in o.iter().enumerate() {
                let want: f64 = keys
                    .clone()
                    .zip(&e)
                    .map(|(j, p)| p * f64::from(v[j * hd + c]))
                    .sum::<f64>()
                    / z;
                assert!(
                    (f64::from(got) - want).abs() < 2e-2,
                    "row {row} col {c}: {got} vs {want}"
                );
            }
        }
    }
}
