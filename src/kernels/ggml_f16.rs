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

/// `v` rounded to the nearest f16 (ties to even), as f32.
pub fn round_f16(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// [`super::attend`] as llama.cpp's CPU flash attention computes it over an
/// f16 cache: `k` and `v` must already hold f16 values (see [`round_f16`]);
/// each query row is scaled by `s.scale` and rounded to f16 (llama.cpp's
/// Gemma graph scales the query before attention; for the power-of-two
/// scales of these models the two orders agree), scores are f16 dot
/// products summed as ggml's AVX-512 `ggml_vec_dot_f16` sums them, and the
/// online softmax keeps its value accumulator in f16.
pub fn attend_f16(q: &[f32], k: &[f32], v: &[f32], s: AttentionShape, out: &mut [f32]) {
    let hd = s.head_dim;
    let rows = s.batch * s.queries * s.heads;
    assert_eq!(q.len(), rows * hd, "q has the wrong length");
    assert_eq!(out.len(), rows * hd, "out has the wrong length");
    let cache = s.batch * s.kv_heads * s.capacity * hd;
    assert!(k.len() >= cache && v.len() >= cache, "cache is too small");
    assert!(s.start + s.queries <= s.capacity, "cache is too short");
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
        attend_row_f16(&q[row * hd..(row + 1) * hd], keys, values, s.scale, &mut o);
    });
}

/// One query row: ggml's `flash_attn_ext_f16_one_chunk` for an F16 cache.
fn attend_row_f16(q: &[f32], keys: &[f32], values: &[f32], scale: f32, out: &mut [f32]) {
    let hd = q.len();
    let q16: Vec<f32> = q.iter().map(|&x| round_f16(x * scale)).collect();
    // f16 values held as f32.
    out.fill(0.0);
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    for (key, value) in keys.chunks_exact(hd).zip(values.chunks_exact(hd)) {
        let s = dot_f16(&q16, key);
        let (mut ms, mut vs) = (1.0f32, 1.0f32);
        if s > max {
            ms = (max - s).exp();
            max = s;
            out.iter_mut().for_each(|a| *a = round_f16(*a * ms));
        } else {
            vs = (s - max).exp();
        }
        for (a, &v) in out.iter_mut().zip(value) {
            *a = round_f16(v.mul_add(vs, *a));
        }
        sum = sum * ms + vs;
    }
    let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
    out.iter_mut().for_each(|a| *a *= inv);
}

/// ggml's AVX-512 `ggml_vec_dot_f16` on f16 values: four 16-lane fused
/// multiply-add accumulators over steps of 64, folded `0 + 2, 1 + 3`, then
/// `0 + 1`, then `_mm512_reduce_add_ps`'s tree; a tail of fewer than 64
/// values is added one product at a time in f64.
fn dot_f16(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [[0.0f32; 16]; 4];
    let whole = x.len() / 64 * 64;
    for (xs, ys) in x[..whole].chunks_exact(64).zip(y[..whole].chunks_exact(64)) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, a) in a.iter_mut().enumerate() {
                *a = xs[16 * j + l].mul_add(ys[16 * j + l], *a);
            }
        }
    }
    let lanes: [f32; 16] =
        std::array::from_fn(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]));
    let t3: [f32; 8] = std::array::from_fn(|l| lanes[l + 8] + lanes[l]);
    let t6: [f32; 4] = std::array::from_fn(|l| t3[l + 4] + t3[l]);
    let mut sum = f64::from((t6[0] + t6[2]) + (t6[1] + t6[3]));
    for (a, b) in x[whole..].iter().zip(&y[whole..]) {
        sum += f64::from(a * b);
    }
    sum as f32
}
