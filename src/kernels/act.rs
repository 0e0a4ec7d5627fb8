//! Activation quantization as ggml does it before an integer dot product:
//! Q8_0 / Q8_1 (32-value blocks) for the 32-value formats, Q8_K (256-value
//! super-blocks with 16-value sums) for the k-quants.

use std::sync::Mutex;

use super::team;

/// Values per Q8_0 / Q8_1 block.
pub(crate) const QK: usize = 32;
/// Values per Q8_K super-block.
pub(crate) const QK_K: usize = 256;

/// Which activation quantization a weight format pairs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActKind {
    /// `d = fp16(amax / 127)` per 32 values, `q = round(127 x / amax)`
    /// (half to even), as ggml's x86 code. Serves Q8_0 and Q8_1 (whose
    /// `s = d * sum(q)` kernels compute from `sums`).
    Q8,
    /// ggml's `quantize_row_q8_K_ref`: per 256 values `d = -max / 127` with
    /// `max` the value of largest magnitude, `q = min(127, rint(x / d))`.
    Q8K,
}

impl ActKind {
    /// Values sharing one scale `d`.
    pub(crate) const fn block(self) -> usize {
        match self {
            Self::Q8 => QK,
            Self::Q8K => QK_K,
        }
    }
}

/// `m` rows of quantized activations; row `a`, value `c` is
/// `d[(a * cols + c) / kind.block()] * qs[a * cols + c]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuantActs {
    pub(crate) cols: usize,
    pub(crate) qs: Vec<i8>,
    /// One scale per `kind.block()` values.
    pub(crate) d: Vec<f32>,
    /// Sum of the quants of every 32 values.
    pub(crate) sums: Vec<i16>,
    /// Sum of the quants of every 16 values (Q8_K only, else empty).
    pub(crate) bsums: Vec<i16>,
}

impl QuantActs {
    /// Quantizes `x` (`m` rows of `cols`, `cols` a multiple of
    /// `kind.block()`), rows in parallel on the kernel team.
    #[cfg(test)]
    pub(crate) fn quantize(kind: ActKind, x: &[f32], cols: usize) -> QuantActs {
        Self::quantize_with(kind, x, cols, (quantize_q8, quantize_q8k))
    }

    /// Quantizes `x` (`m` rows of `cols`, `cols` a multiple of
    /// `kind.block()`), rows in parallel on the kernel team, with
    /// instruction-set versions of [`quantize_q8`] and [`quantize_q8k`]
    /// (identical results).
    pub(crate) fn quantize_with(
        kind: ActKind,
        x: &[f32],
        cols: usize,
        (q8, q8k): (Q8Fn, Q8KFn),
    ) -> QuantActs {
        debug_assert!(cols.is_multiple_of(kind.block()) && x.len().is_multiple_of(cols.max(1)));
        let n = x.len();
        let mut acts = QuantActs {
            cols,
            qs: vec![0; n],
            d: vec![0.0; n / kind.block()],
            sums: vec![0; n / QK],
            bsums: vec![0; if kind == ActKind::Q8K { n / 16 } else { 0 }],
        };
        if n == 0 {
            return acts;
        }
        // Tasks of whole rows, each locking only its own slices.
        let m = n / cols;
        let per_task = m.div_ceil(4 * team::threads()).max(1);
        let chunk = per_task * cols;
        let bsum_chunk = if kind == ActKind::Q8K { chunk / 16 } else { 1 };
        let parts: Vec<_> = x
            .chunks(chunk)
            .zip(acts.qs.chunks_mut(chunk))
            .zip(acts.d.chunks_mut(chunk / kind.block()))
            .zip(acts.sums.chunks_mut(chunk / QK))
            .zip(
                acts.bsums
                    .chunks_mut(bsum_chunk)
                    .map(Some)
                    .chain(std::iter::repeat_with(|| None)),
            )
            .map(Mutex::new)
            .collect();
        team::parallel_for(parts.len(), |t| {
            let mut p = parts[t].lock().unwrap_or_else(|e| e.into_inner());
            let ((((x, qs), d), sums), bsums) = &mut *p;
            match kind {
                ActKind::Q8 => q8(x, qs, d, sums),
                ActKind::Q8K => q8k(x, qs, d, sums, bsums.as_deref_mut().unwrap_or(&mut [])),
            }
        });
        acts
    }
}

/// A Q8 block quantizer: `(x, qs, d, sums)` for whole 32-value blocks.
pub(crate) type Q8Fn = fn(&[f32], &mut [i8], &mut [f32], &mut [i16]);

/// Q8_0 quantization of whole 32-value blocks as ggml's x86 `quantize_row_q8_0`
/// does it (the code llama.cpp runs on AVX2 CPUs): `id = 127 / amax`,
/// `q = round(x * id)` half to even, and the scale stored as ggml stores it,
/// `d = fp16(amax / 127)` (kept here as the f32 of that f16).
pub(crate) fn quantize_q8(x: &[f32], qs: &mut [i8], d: &mut [f32], sums: &mut [i16]) {
    for (((x, q), d), s) in x
        .chunks_exact(QK)
        .zip(qs.chunks_exact_mut(QK))
        .zip(d.iter_mut())
        .zip(sums.iter_mut())
    {
        let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        *d = fp16_scale(amax / 127.0);
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (q, v) in q.iter_mut().zip(x) {
            *q = nearest_int(v * id) as i8;
        }
        *s = q.iter().map(|&q| i16::from(q)).sum();
    }
}

/// `d` rounded to the nearest f16 (ties to even), as ggml's
/// `GGML_CPU_FP32_TO_FP16` stores a block scale, widened back to f32.
pub(crate) fn fp16_scale(d: f32) -> f32 {
    half::f16::from_f32(d).to_f32()
}

/// A Q8_K super-block quantizer: `(x, qs, d, sums, bsums)`.
pub(crate) type Q8KFn = fn(&[f32], &mut [i8], &mut [f32], &mut [i16], &mut [i16]);

/// ggml's `quantize_row_q8_K_ref` on whole 256-value super-blocks.
pub(crate) fn quantize_q8k(
    x: &[f32],
    qs: &mut [i8],
    d: &mut [f32],
    sums: &mut [i16],
    bsums: &mut [i16],
) {
    for (((x, q), d), (s, bs)) in x
        .chunks_exact(QK_K)
        .zip(qs.chunks_exact_mut(QK_K))
        .zip(d.iter_mut())
        .zip(
            sums.chunks_exact_mut(QK_K / QK)
                .zip(bsums.chunks_exact_mut(QK_K / 16)),
        )
    {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            *d = 0.0;
            q.fill(0);
        } else {
            let iscale = -127.0 / max;
            for (q, v) in q.iter_mut().zip(x) {
                *q = nearest_int(iscale * v).min(127) as i8;
            }
            *d = 1.0 / iscale;
        }
        for (b, q16) in bs.iter_mut().zip(q.chunks_exact(16)) {
            *b = q16.iter().map(|&q| i16::from(q)).sum();
        }
        for (s, b) in s.iter_mut().zip(bs.chunks_exact(2)) {
            *s = b[0] + b[1];
        }
    }
}

/// ggml's `nearest_int`: round half to even via the 1.5 * 2^23 trick
/// (valid for `|v| < 2^22`).
pub(crate) fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0).to_bits() as i32;
    (bits & 0x007F_FFFF) - 0x0040_0000
}
