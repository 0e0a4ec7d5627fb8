//! Causal grouped-query attention on f32 slices, reading keys and values in
//! place from a KV cache (no repeat of the shared heads, no transposes of the
//! cache), flash-attention style: each task takes a block of query positions
//! for the query heads that share one key/value head, walks the keys in tiles
//! that stay in cache, and keeps a running maximum and sum per query row
//! (online softmax), so no row of scores is ever stored whole. Tiles wholly
//! outside a row's causal range or sliding window are skipped.
//!
//! Tasks are (sequence, group of heads, block of queries), spread over the
//! kernel team.

use std::sync::Mutex;

use super::isa::Isa;
use super::team;

/// Query positions per task in prefill.
const QUERIES_PER_TASK: usize = 16;

/// Keys per tile: scores of one query row against a tile fill a few vector
/// registers, and a tile of keys and values (64 x head_dim each) stays in L1/L2.
const KEY_TILE: usize = 64;

/// Blocks with fewer query rows than this score keys with direct dot products
/// rather than transposing each key tile first (decode).
const TRANSPOSE_MIN_ROWS: usize = 4;

/// Output width kept in registers while summing values.
const VALUE_CHUNK: usize = 64;

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
    let group = s.heads / s.kv_heads;
    let blocks = s.queries.div_ceil(QUERIES_PER_TASK);
    // A task takes a whole group of heads, so that they share each key tile,
    // unless that leaves too few tasks to keep the team busy (decode).
    let heads_per_task = if s.batch * s.kv_heads * blocks >= 2 * team::threads() {
        group
    } else {
        1
    };
    attend_with(Isa::detect(), heads_per_task, q, k, v, s, out);
}

/// [`attend`] on instruction set `isa`, `heads_per_task` (dividing the group
/// size) query heads per task.
fn attend_with(
    isa: Isa,
    heads_per_task: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: AttentionShape,
    out: &mut [f32],
) {
    let hd = s.head_dim;
    let rows = s.batch * s.queries * s.heads * hd;
    assert_eq!(q.len(), rows, "q has the wrong length");
    assert_eq!(out.len(), rows, "out has the wrong length");
    let cache = s.batch * s.kv_heads * s.capacity * hd;
    assert!(k.len() >= cache && v.len() >= cache, "cache is too small");
    assert!(s.start + s.queries <= s.capacity, "cache is too short");
    let group = s.heads / s.kv_heads;
    assert_eq!(
        group % heads_per_task,
        0,
        "heads per task must divide the group"
    );
    let chunks = s.heads / heads_per_task;
    let blocks = s.queries.div_ceil(QUERIES_PER_TASK);
    let width = heads_per_task * hd;
    // One slot per (seq, query, head chunk) of `out`; each belongs to one
    // task, so its lock is never contended (as in `kernels::run`).
    let out_rows: Vec<Mutex<&mut [f32]>> = out.chunks_exact_mut(width).map(Mutex::new).collect();
    team::parallel_for(s.batch * chunks * blocks, |task| {
        let (seq, rest) = (task / (chunks * blocks), task % (chunks * blocks));
        let (chunk, block) = (rest / blocks, rest % blocks);
        let kv = chunk * heads_per_task / group;
        let base = (seq * s.kv_heads + kv) * s.capacity * hd;
        let first = block * QUERIES_PER_TASK;
        let last = (first + QUERIES_PER_TASK).min(s.queries);
        // Query rows (position-major, then head), each with its key span.
        let mut qs = Vec::with_capacity((last - first) * width);
        let mut spans = Vec::with_capacity((last - first) * heads_per_task);
        for i in first..last {
            let at = (seq * s.queries + i) * chunks + chunk;
            qs.extend_from_slice(&q[at * width..(at + 1) * width]);
            let end = s.start + i + 1;
            let lo = s.window.map_or(0, |w| end.saturating_sub(w));
            spans.extend(std::iter::repeat_n(lo..end, heads_per_task));
        }
        let mut acc = vec![0f32; qs.len()];
        let tile = Block {
            q: &qs,
            spans: &spans,
            keys: &k[base..base + s.capacity * hd],
            values: &v[base..base + s.capacity * hd],
            head_dim: hd,
            scale: s.scale,
        };
        attend_block(isa, &tile, &mut acc);
        for (i, a) in (first..last).zip(acc.chunks_exact(width)) {
            let at = (seq * s.queries + i) * chunks + chunk;
            let mut o = out_rows[at].lock().unwrap_or_else(|p| p.into_inner());
            o.copy_from_slice(a);
        }
    });
}

/// Query rows that share one key/value head.
struct Block<'a> {
    /// `(rows, head_dim)`.
    q: &'a [f32],
    /// Keys each row sees (indices into `keys`), one span per row.
    spans: &'a [std::ops::Range<usize>],
    /// `(positions, head_dim)` keys of this head.
    keys: &'a [f32],
    /// `(positions, head_dim)` values of this head.
    values: &'a [f32],
    /// Width of one head.
    head_dim: usize,
    /// Multiplier on the scores.
    scale: f32,
}

/// Attention of a [`Block`]'s rows into `out (rows, head_dim)`, with the
/// instruction set chosen.
fn attend_block(isa: Isa, b: &Block<'_>, out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only detected on CPUs with AVX-512 F/BW/VL,
        // AVX2 and FMA.
        Isa::Avx512 => unsafe { attend_block_avx512(b, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only detected on CPUs with AVX2 and FMA.
        Isa::Avx2 => unsafe { attend_block_avx2(b, out) },
        Isa::Scalar => attend_block_generic(b, out),
    }
}

/// [`attend_block_generic`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl")]
fn attend_block_avx512(b: &Block<'_>, out: &mut [f32]) {
    attend_block_generic(b, out)
}

/// [`attend_block_generic`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_block_avx2(b: &Block<'_>, out: &mut [f32]) {
    attend_block_generic(b, out)
}

/// Walks the keys in tiles of [`KEY_TILE`]; per row and tile: scores, the
/// running maximum `m` and sum `l` (rescaling what was summed so far by
/// `exp(m_old - m_new)`), and the weighted values added to `out`.
#[inline(always)]
fn attend_block_generic(b: &Block<'_>, out: &mut [f32]) {
    let hd = b.head_dim;
    let rows = b.spans.len();
    let lo = b.spans.iter().map(|r| r.start).min().unwrap_or(0);
    let end = b.spans.iter().map(|r| r.end).max().unwrap_or(0);
    let transpose = rows >= TRANSPOSE_MIN_ROWS;
    let mut kt = vec![[0f32; KEY_TILE]; if transpose { hd } else { 0 }];
    let mut max = vec![f32::NEG_INFINITY; rows];
    let mut sum = vec![0f32; rows];
    out.fill(0.0);
    let mut j0 = lo;
    while j0 < end {
        let n = KEY_TILE.min(end - j0);
        let keys = &b.keys[j0 * hd..(j0 + n) * hd];
        if transpose {
            for (j, key) in keys.chunks_exact(hd).enumerate() {
                for (t, &x) in kt.iter_mut().zip(key) {
                    t[j] = x;
                }
            }
        }
        // Keys of this tile row `r` sees, as tile indices (empty if none).
        let seen = |r: usize| {
            let span = &b.spans[r];
            span.start.max(j0).saturating_sub(j0)..span.end.min(j0 + n).saturating_sub(j0)
        };
        let mut r = 0;
        while r < rows {
            let keep = seen(r);
            if keep.is_empty() {
                r += 1;
                continue;
            }
            // Two rows at a time where both see this tile: they share every
            // key and value load (twice the independent sums in flight).
            // Each row's arithmetic is the same as alone.
            if transpose && r + 1 < rows && !seen(r + 1).is_empty() {
                let keep1 = seen(r + 1);
                let (q0, q1) = b.q[r * hd..(r + 2) * hd].split_at(hd);
                let (mut p0, mut p1) = ([0f32; KEY_TILE], [0f32; KEY_TILE]);
                scores_transposed2(q0, q1, &kt, &mut p0, &mut p1);
                let (o0, o1) = out[r * hd..(r + 2) * hd].split_at_mut(hd);
                let (m0, m1) = max[r..r + 2].split_at_mut(1);
                let (l0, l1) = sum[r..r + 2].split_at_mut(1);
                let row0 = Running {
                    max: &mut m0[0],
                    sum: &mut l0[0],
                    out: o0,
                };
                online_softmax(&mut p0, keep.clone(), b.scale, row0);
                let row1 = Running {
                    max: &mut m1[0],
                    sum: &mut l1[0],
                    out: o1,
                };
                online_softmax(&mut p1, keep1.clone(), b.scale, row1);
                // Outside its own keys each row's weights are 0.
                let (a, z) = (keep.start.min(keep1.start), keep.end.max(keep1.end));
                let values = &b.values[(j0 + a) * hd..(j0 + z) * hd];
                weighted_sum2(o0, o1, &p0[a..z], &p1[a..z], values);
                r += 2;
                continue;
            }
            let q = &b.q[r * hd..(r + 1) * hd];
            let mut p = [0f32; KEY_TILE];
            if transpose {
                scores_transposed(q, &kt, &mut p);
            } else {
                for (s, key) in p.iter_mut().zip(keys.chunks_exact(hd)) {
                    *s = dot(q, key);
                }
            }
            let o = &mut out[r * hd..(r + 1) * hd];
            let row = Running {
                max: &mut max[r],
                sum: &mut sum[r],
                out: o,
            };
            online_softmax(&mut p, keep.clone(), b.scale, row);
            let values = &b.values[(j0 + keep.start) * hd..(j0 + keep.end) * hd];
            weighted_sum(&mut out[r * hd..(r + 1) * hd], &p[keep], values);
            r += 1;
        }
        j0 += n;
    }
    for (o, l) in out.chunks_exact_mut(hd).zip(sum) {
        let inv = 1.0 / l;
        for x in o {
            *x *= inv;
        }
    }
}

/// One query row's online-softmax state: running maximum, running sum and
/// its (unnormalized) output.
struct Running<'a> {
    max: &'a mut f32,
    sum: &'a mut f32,
    out: &'a mut [f32],
}

/// Masks, scales and exponentiates a tile's scores `p` (keys `keep` of the
/// tile) against the row's new running maximum, rescaling what the row
/// summed so far when that maximum grows.
#[inline(always)]
fn online_softmax(
    p: &mut [f32; KEY_TILE],
    keep: std::ops::Range<usize>,
    scale: f32,
    row: Running<'_>,
) {
    let m = row.max.max(scale_and_mask(p, keep, scale));
    let tile_sum = exp_and_sum(p, m);
    if *row.max != m {
        let c = exp(*row.max - m);
        *row.sum *= c;
        for x in row.out.iter_mut() {
            *x *= c;
        }
    }
    (*row.max, *row.sum) = (m, *row.sum + tile_sum);
}

/// Lanes of the running reductions over a tile (independent, so that the
/// loops vectorize without reassociating floating-point sums).
const LANES: usize = 16;

/// Scores in `keep` times `scale`, the others `-inf`; returns their maximum.
#[inline(always)]
fn scale_and_mask(p: &mut [f32; KEY_TILE], keep: std::ops::Range<usize>, scale: f32) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for (c, chunk) in p.as_chunks_mut::<LANES>().0.iter_mut().enumerate() {
        for l in 0..LANES {
            let j = c * LANES + l;
            let s = if keep.contains(&j) {
                chunk[l] * scale
            } else {
                f32::NEG_INFINITY
            };
            chunk[l] = s;
            lanes[l] = lanes[l].max(s);
        }
    }
    lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// `p[j] = e^(p[j] - m)` (0 for masked `-inf` scores); returns their sum.
#[inline(always)]
fn exp_and_sum(p: &mut [f32; KEY_TILE], m: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    for chunk in p.as_chunks_mut::<LANES>().0 {
        for l in 0..LANES {
            let s = chunk[l];
            let e = if s == f32::NEG_INFINITY {
                0.0
            } else {
                exp(s - m)
            };
            chunk[l] = e;
            lanes[l] += e;
        }
    }
    lanes.iter().sum()
}

/// `p[j] = q . key_j` for the keys of a transposed tile `kt[c][j]`.
#[inline(always)]
fn scores_transposed(q: &[f32], kt: &[[f32; KEY_TILE]], p: &mut [f32; KEY_TILE]) {
    for (&x, t) in q.iter().zip(kt) {
        for j in 0..KEY_TILE {
            p[j] = x.mul_add(t[j], p[j]);
        }
    }
}

/// [`scores_transposed`] for two rows at once (each row's sums as alone).
/// Written out for two rather than generic over a row count: with `[[f32;
/// 64]; N]` accumulators LLVM keeps them on the stack (measured: attention's
/// share of a Q4_0 pp512 profile 16% -> 21-28%).
#[inline(always)]
fn scores_transposed2(
    q0: &[f32],
    q1: &[f32],
    kt: &[[f32; KEY_TILE]],
    p0: &mut [f32; KEY_TILE],
    p1: &mut [f32; KEY_TILE],
) {
    for ((&x0, &x1), t) in q0.iter().zip(q1).zip(kt) {
        for j in 0..KEY_TILE {
            p0[j] = x0.mul_add(t[j], p0[j]);
            p1[j] = x1.mul_add(t[j], p1[j]);
        }
    }
}

/// [`weighted_sum`] for two rows over the same values (each row's sums as
/// alone).
#[inline(always)]
fn weighted_sum2(o0: &mut [f32], o1: &mut [f32], p0: &[f32], p1: &[f32], values: &[f32]) {
    let hd = o0.len();
    let (chunks0, tail0) = o0.as_chunks_mut::<VALUE_CHUNK>();
    let (chunks1, tail1) = o1.as_chunks_mut::<VALUE_CHUNK>();
    for (c, (oc0, oc1)) in chunks0.iter_mut().zip(chunks1.iter_mut()).enumerate() {
        let (mut acc0, mut acc1) = (*oc0, *oc1);
        for ((&w0, &w1), value) in p0.iter().zip(p1).zip(values.chunks_exact(hd)) {
            let v = &value[c * VALUE_CHUNK..(c + 1) * VALUE_CHUNK];
            for d in 0..VALUE_CHUNK {
                acc0[d] = w0.mul_add(v[d], acc0[d]);
                acc1[d] = w1.mul_add(v[d], acc1[d]);
            }
        }
        (*oc0, *oc1) = (acc0, acc1);
    }
    let from = hd - tail0.len();
    for ((&w0, &w1), value) in p0.iter().zip(p1).zip(values.chunks_exact(hd)) {
        for ((y0, y1), x) in tail0.iter_mut().zip(tail1.iter_mut()).zip(&value[from..]) {
            *y0 = w0.mul_add(*x, *y0);
            *y1 = w1.mul_add(*x, *y1);
        }
    }
}

/// `o += sum_j p[j] values_j`, [`VALUE_CHUNK`] columns of `o` at a time held
/// in registers across the keys.
#[inline(always)]
fn weighted_sum(o: &mut [f32], p: &[f32], values: &[f32]) {
    let hd = o.len();
    let (chunks, tail) = o.as_chunks_mut::<VALUE_CHUNK>();
    for (c, oc) in chunks.iter_mut().enumerate() {
        let mut acc = *oc;
        for (&w, value) in p.iter().zip(values.chunks_exact(hd)) {
            let v = &value[c * VALUE_CHUNK..(c + 1) * VALUE_CHUNK];
            for d in 0..VALUE_CHUNK {
                acc[d] = w.mul_add(v[d], acc[d]);
            }
        }
        *oc = acc;
    }
    let from = hd - tail.len();
    for (&w, value) in p.iter().zip(values.chunks_exact(hd)) {
        for (y, x) in tail.iter_mut().zip(&value[from..]) {
            *y = w.mul_add(*x, *y);
        }
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

/// `e^x` without branches (so loops of it vectorize), relative error about
/// 2e-7 (Cephes' `expf` polynomial); below -87 it stays at `e^-87`
/// (about 1.6e-38, negligible beside the row maximum's `e^0`).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = 1.987_569_1e-4_f32;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = p.mul_add(r, c);
    }
    let y = (p * r).mul_add(r, r) + 1.0;
    let e = (t.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23;
    y * f32::from_bits(e as u32)
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
        // Lengths around the key tile (64) and query block (16), windows
        // shorter and longer than a tile, GQA groups 1 and 3, head widths
        // that are and are not multiples of the value chunk (64).
        for (batch, queries, start, heads, kv_heads, head_dim, window) in [
            (1, 1, 0, 9, 3, 64, None),
            (1, 1, 37, 9, 3, 64, None),
            (1, 1, 200, 9, 3, 64, None),
            (2, 21, 5, 4, 2, 12, None),
            (1, 40, 0, 6, 1, 33, None),
            (3, 3, 2, 2, 2, 8, None),
            (1, 1, 37, 4, 1, 16, Some(8)),
            (2, 30, 5, 4, 2, 12, Some(7)),
            (1, 9, 0, 2, 1, 8, Some(1)),
            (1, 150, 0, 9, 3, 64, None),
            (1, 67, 63, 3, 3, 64, None),
            (2, 70, 61, 6, 2, 256, None),
            (1, 130, 5, 6, 2, 64, Some(100)),
            (1, 1, 300, 6, 2, 256, Some(70)),
            (1, 33, 129, 3, 1, 256, Some(65)),
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
            let want = reference(&q, &k, &v, s);
            let mut out = vec![0f32; q.len()];
            attend(&q, &k, &v, s, &mut out);
            assert_close(&out, &want, &format!("{s:?}"));
            for isa in Isa::available() {
                for per_task in [1, heads / kv_heads] {
                    let mut out = vec![f32::NAN; q.len()];
                    attend_with(isa, per_task, &q, &k, &v, s, &mut out);
                    assert_close(&out, &want, &format!("{isa:?} x{per_task} {s:?}"));
                }
            }
        }
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{what}: {a} vs {b}");
        }
    }

    #[test]
    fn exp_matches_std_and_reaches_zero() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= 4e-7 * want + f32::MIN_POSITIVE,
                "exp({x}) = {got}, want {want}"
            );
            x += 0.013;
        }
        assert!(exp(f32::NEG_INFINITY) < 2e-38);
        assert_eq!(exp(0.0), 1.0);
    }
}
