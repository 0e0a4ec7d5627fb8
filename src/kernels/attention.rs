//! Causal grouped-query attention on f32 slices, reading keys and values in
//! place from a KV cache (no repeat of the shared heads, no transposes).
//!
//! Tasks are (sequence, head, block of queries), spread over the kernel team.

use std::sync::Mutex;

use super::isa::Isa;
use super::team;

/// Query rows per task in prefill.
const QUERIES_PER_TASK: usize = 16;

/// Shapes of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Sequences in the batch.
    pub batch: usize,
    /// New query positions per sequence.
    pub queries: usize,
    /// Position of the first query (keys `0..start + queries` exist).
    pub start: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Positions the cache holds room for, per (sequence, kv head).
    pub capacity: usize,
    /// Multiplier on the scores (usually `1 / sqrt(head_dim)`).
    pub scale: f32,
    /// Sliding window: query at position `p` sees keys `p + 1 - window ..= p`;
    /// `None` sees every earlier key.
    pub window: Option<usize>,
}

/// `out (batch, queries, heads, head_dim) = softmax(scale q k^T + mask) v`
/// for `q (batch, queries, heads, head_dim)` and caches `k`, `v`
/// `(batch, kv_heads, capacity, head_dim)` that already hold this call's keys.
/// Query `i` sees keys `0..=start + i`, or only the last `window` of them.
pub fn attend(q: &[f32], k: &[f32], v: &[f32], s: AttentionShape, out: &mut [f32]) {
    let hd = s.head_dim;
    let rows = s.batch * s.queries * s.heads * hd;
    assert_eq!(q.len(), rows, "q has the wrong length");
    assert_eq!(out.len(), rows, "out has the wrong length");
    let cache = s.batch * s.kv_heads * s.capacity * hd;
    assert!(k.len() >= cache && v.len() >= cache, "cache is too small");
    assert!(s.start + s.queries <= s.capacity, "cache is too short");
    let blocks = s.queries.div_ceil(QUERIES_PER_TASK);
    let tasks = s.batch * s.heads * blocks;
    let isa = Isa::detect();
    // One slot per (seq, query, head) row of `out`; each belongs to one task,
    // so its lock is never contended (as in `kernels::run`).
    let out_rows: Vec<Mutex<&mut [f32]>> = out.chunks_exact_mut(hd).map(Mutex::new).collect();
    team::parallel_for(tasks, |task| {
        let (seq, rest) = (task / (s.heads * blocks), task % (s.heads * blocks));
        let (head, block) = (rest / blocks, rest % blocks);
        let kv = head / (s.heads / s.kv_heads);
        let base = (seq * s.kv_heads + kv) * s.capacity * hd;
        let keys = &k[base..base + s.capacity * hd];
        let values = &v[base..base + s.capacity * hd];
        let mut scores = Vec::with_capacity(s.start + s.queries);
        let first = block * QUERIES_PER_TASK;
        for i in first..(first + QUERIES_PER_TASK).min(s.queries) {
            let row = (seq * s.queries + i) * s.heads + head;
            let mut o = out_rows[row].lock().unwrap_or_else(|p| p.into_inner());
            let end = s.start + i + 1;
            let first = s.window.map_or(0, |w| end.saturating_sub(w));
            attend_row(
                isa,
                &q[row * hd..(row + 1) * hd],
                &keys[first * hd..],
                &values[first * hd..],
                end - first,
                s.scale,
                &mut scores,
                &mut o,
            );
        }
    });
}

/// One query row against `n_keys` keys, with the instruction set chosen.
#[allow(clippy::too_many_arguments)]
fn attend_row(
    isa: Isa,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_keys: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` and `Isa::Avx512` are only detected on CPUs with
        // AVX2 and FMA.
        Isa::Avx2 | Isa::Avx512 => unsafe {
            attend_row_avx2(q, keys, values, n_keys, scale, scores, out)
        },
        Isa::Scalar => attend_row_generic(q, keys, values, n_keys, scale, scores, out),
    }
}

/// [`attend_row_generic`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_row_avx2(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_keys: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    attend_row_generic(q, keys, values, n_keys, scale, scores, out)
}

/// Scores, softmax (max-subtracted, as candle's), weighted sum of values.
#[inline(always)]
fn attend_row_generic(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_keys: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let hd = q.len();
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    for key in keys.chunks_exact(hd).take(n_keys) {
        let s = dot(q, key) * scale;
        max = max.max(s);
        scores.push(s);
    }
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    out.fill(0.0);
    for (p, value) in scores.iter().zip(values.chunks_exact(hd)) {
        axpy(out, *p, value);
    }
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

/// Dot product with 8 independent lanes (so it vectorizes without
/// reassociation), then their sum.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ac, at) = a.as_chunks::<8>();
    let (bc, bt) = b.as_chunks::<8>();
    let mut acc = [0f32; 8];
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    let tail: f32 = at.iter().zip(bt).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `y += a * x`.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y = a.mul_add(*x, *y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward attention with repeated kv heads, in f64.
    fn reference(q: &[f32], k: &[f32], v: &[f32], s: AttentionShape) -> Vec<f32> {
        let hd = s.head_dim;
        let mut out = vec![0f32; q.len()];
        for seq in 0..s.batch {
            for i in 0..s.queries {
                for h in 0..s.heads {
                    let kv = h / (s.heads / s.kv_heads);
                    let row = ((seq * s.queries + i) * s.heads + h) * hd;
                    let qr = &q[row..row + hd];
                    let at = |j: usize| ((seq * s.kv_heads + kv) * s.capacity + j) * hd;
                    let n = s.start + i + 1;
                    // Keys outside the window get probability 0.
                    let seen = |j: usize| s.window.is_none_or(|w| n - j <= w);
                    let sc: Vec<f64> = (0..n)
                        .map(|j| {
                            let kr = &k[at(j)..at(j) + hd];
                            qr.iter()
                                .zip(kr)
                                .map(|(a, b)| f64::from(a * b))
                                .sum::<f64>()
                                * f64::from(s.scale)
                        })
                        .collect();
                    let m = (0..n)
                        .filter(|&j| seen(j))
                        .map(|j| sc[j])
                        .fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = (0..n)
                        .map(|j| if seen(j) { (sc[j] - m).exp() } else { 0.0 })
                        .collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..hd {
                        let acc: f64 = (0..n).map(|j| e[j] * f64::from(v[at(j) + d])).sum();
                        out[row + d] = (acc / z) as f32;
                    }
                }
            }
        }
        out
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    #[test]
    fn matches_reference_for_decode_prefill_and_odd_shapes() {
        for (batch, queries, start, heads, kv_heads, head_dim, window) in [
            (1, 1, 0, 9, 3, 64, None),
            (1, 1, 37, 9, 3, 64, None),
            (2, 21, 5, 4, 2, 12, None),
            (1, 40, 0, 6, 1, 33, None),
            (3, 3, 2, 2, 2, 8, None),
            (1, 1, 37, 4, 1, 16, Some(8)),
            (2, 30, 5, 4, 2, 12, Some(7)),
            (1, 9, 0, 2, 1, 8, Some(1)),
        ] {
            let capacity = start + queries + 3;
            let s = AttentionShape {
                batch,
                queries,
                start,
                heads,
                kv_heads,
                head_dim,
                capacity,
                scale: 0.7 / (head_dim as f32).sqrt(),
                window,
            };
            let q = random(batch * queries * heads * head_dim, 1);
            let k = random(batch * kv_heads * capacity * head_dim, 2);
            let v = random(batch * kv_heads * capacity * head_dim, 3);
            let mut out = vec![0f32; q.len()];
            attend(&q, &k, &v, s, &mut out);
            let want = reference(&q, &k, &v, s);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{s:?}: {a} vs {b}");
            }
            let mut scalar = vec![0f32; q.len()];
            let hd = head_dim;
            let mut scores = Vec::new();
            for (row, o) in scalar.chunks_exact_mut(hd).enumerate() {
                let (seq_i, h) = (row / heads, row % heads);
                let (seq, i) = (seq_i / queries, seq_i % queries);
                let base = (seq * kv_heads + h / (heads / kv_heads)) * capacity * hd;
                let end = start + i + 1;
                let first = window.map_or(0, |w: usize| end.saturating_sub(w));
                attend_row(
                    Isa::Scalar,
                    &q[row * hd..(row + 1) * hd],
                    &k[base + first * hd..],
                    &v[base + first * hd..],
                    end - first,
                    s.scale,
                    &mut scores,
                    o,
                );
            }
            for (a, b) in scalar.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "scalar {s:?}: {a} vs {b}"
                );
            }
        }
    }
}
