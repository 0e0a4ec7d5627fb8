//! ggml's reference k-quant quantizers (`quantize_row_q4_K_ref`,
//! `quantize_row_q5_K_ref`, `quantize_row_q6_K_ref` in ggml-quants.c), ported
//! operation for operation so that the blocks equal llama-quantize's (which
//! calls these without an importance matrix) bit for bit.
//!
//! candle's own `from_float` for these types follows an older ggml
//! (`make_qkx1_quants`, no per-value weights) and zeroes the quants of a
//! sub-block whose scale rounds to zero, so its Q4_K/Q5_K blocks differ from
//! today's llama.cpp files; its Q6_K lacks the all-zero super-block case.
//!
//! Every float operation keeps the C order of evaluation (ggml-base is built
//! without FMA contraction), comparisons are spelled as in C so NaN and ties
//! behave the same, and `nearest_int` uses ggml's magic-number rounding.

use half::f16;

/// Values per super-block.
pub const QK_K: usize = 256;
/// Bytes of one Q4_K super-block: d, dmin, 12 scale bytes, 128 quant bytes.
pub const Q4_K_BYTES: usize = 144;
/// Bytes of one Q5_K super-block: d, dmin, 12 scale bytes, 32 high bits, 128 quant bytes.
pub const Q5_K_BYTES: usize = 176;
/// Bytes of one Q6_K super-block: 128 low bytes, 64 high bytes, 16 scales, d.
pub const Q6_K_BYTES: usize = 210;

/// ggml's `GROUP_MAX_EPS`: below it a group counts as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: round half to even through the float's mantissa.
#[inline]
fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `GGML_FP32_TO_FP16` then back (round to nearest even).
#[inline]
fn fp16_round(v: f32) -> (u16, f32) {
    let h = f16::from_f32(v);
    (h.to_bits(), h.to_f32())
}

/// `make_qkx2_quants(n = 32, ...)`: scale and (negated) min of one sub-block,
/// its quants in `l`.
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32; 32],
    weights: &[f32; 32],
    l: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let n = 32;
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l[..n].fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let q = nearest_int(iscale * (x[i] - min));
        l[i] = q.clamp(0, nmax) as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        let diff = diff * diff;
        best_error += weights[i] * diff;
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let w = weights[i];
            let lf = q as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                let diff = diff * diff;
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// `make_qx_quants(n = 16, nmax = 32, rmse_type = 1, qw = NULL)`, as Q6_K calls it.
fn make_qx_quants_q6(x: &[f32], l: &mut [i8]) -> f32 {
    const NMAX: i32 = 32;
    let n = 16;
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in &x[..n] {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l[..n].fill(0);
        return 0.0;
    }
    let mut iscale = -(NMAX as f32) / max;
    let mut sumlx = 0f32;
    let mut suml2 = 0f32;
    for i in 0..n {
        let q = nearest_int(iscale * x[i]).clamp(-NMAX, NMAX - 1);
        l[i] = (q + NMAX) as i8;
        let w = x[i] * x[i];
        let lf = q as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(NMAX as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in &x[..n] {
            let q = nearest_int(iscale * v).clamp(-NMAX, NMAX - 1);
            let w = v * v;
            let lf = q as f32;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..n {
                let q = nearest_int(iscale * x[i]).clamp(-NMAX, NMAX - 1);
                l[i] = (NMAX + q) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j`.
fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The weighted sub-block fits and packed scales shared by Q4_K and Q5_K:
/// returns (d bits, dmin bits, packed scales, quants of the whole super-block).
fn qkx_super_block(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    nstep: i32,
) -> (u16, u16, [u8; 12], [u8; QK_K]) {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; QK_K / 32];
    let mut mins = [0f32; QK_K / 32];
    let mut max_scale = 0f32;
    let mut max_min = 0f32;
    for j in 0..QK_K / 32 {
        let sub: &[f32; 32] = x[32 * j..32 * j + 32].try_into().expect("32 values");
        let mut sum_x2 = 0f32;
        for &v in sub {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0f32; 32];
        for (w, &v) in weights.iter_mut().zip(sub) {
            *w = av_x + v.abs();
        }
        let (scale, min) =
            make_qkx2_quants(nmax, sub, &weights, &mut l[32 * j..], rmin, 0.1, nstep);
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut packed = [0u8; 12];
    for j in 0..QK_K / 32 {
        // C converts the int to uint8_t (mod 256) before taking MIN(63, .).
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    let (d_bits, d) = fp16_round(max_scale / 63.0);
    let (dmin_bits, dmin) = fp16_round(max_min / 63.0);
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, &packed);
        let d = d * sc as f32;
        if d == 0.0 {
            continue; // keeps the quants make_qkx2_quants chose
        }
        let dm = dmin * m as f32;
        for ii in 0..32 {
            let q = nearest_int((x[32 * j + ii] + dm) / d);
            l[32 * j + ii] = q.clamp(0, nmax) as u8;
        }
    }
    (d_bits, dmin_bits, packed, l)
}

/// `quantize_row_q4_K_ref`: `x.len()` must be a multiple of 256; appends the blocks to `out`.
pub fn quantize_q4_k(x: &[f32], out: &mut Vec<u8>) {
    assert!(
        x.len().is_multiple_of(QK_K),
        "Q4_K rows are whole super-blocks"
    );
    for sb in x.chunks_exact(QK_K) {
        let (d, dmin, scales, l) = qkx_super_block(sb, 15, -1.0, 20);
        out.extend_from_slice(&d.to_le_bytes());
        out.extend_from_slice(&dmin.to_le_bytes());
        out.extend_from_slice(&scales);
        for j in (0..QK_K).step_by(64) {
            for i in 0..32 {
                out.push(l[j + i] | (l[j + i + 32] << 4));
            }
        }
    }
}

/// `quantize_row_q5_K_ref`: `x.len()` must be a multiple of 256; appends the blocks to `out`.
pub fn quantize_q5_k(x: &[f32], out: &mut Vec<u8>) {
    assert!(
        x.len().is_multiple_of(QK_K),
        "Q5_K rows are whole super-blocks"
    );
    for sb in x.chunks_exact(QK_K) {
        let (d, dmin, scales, l) = qkx_super_block(sb, 31, -0.5, 15);
        let mut qh = [0u8; QK_K / 8];
        let mut ql = [0u8; QK_K / 2];
        let (mut m1, mut m2) = (1u8, 2u8);
        for (k, n) in (0..QK_K).step_by(64).enumerate() {
            for j in 0..32 {
                let mut l1 = l[n + j];
                if l1 > 15 {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                let mut l2 = l[n + j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[32 * k + j] = l1 | (l2 << 4);
            }
            m1 <<= 2;
            m2 <<= 2;
        }
        out.extend_from_slice(&d.to_le_bytes());
        out.extend_from_slice(&dmin.to_le_bytes());
        out.extend_from_slice(&scales);
        out.extend_from_slice(&qh);
        out.extend_from_slice(&ql);
    }
}

/// `quantize_row_q6_K_ref`: `x.len()` must be a multiple of 256; appends the blocks to `out`.
pub fn quantize_q6_k(x: &[f32], out: &mut Vec<u8>) {
    assert!(
        x.len().is_multiple_of(QK_K),
        "Q6_K rows are whole super-blocks"
    );
    for sb in x.chunks_exact(QK_K) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; QK_K / 16];
        let mut max_scale = 0f32;
        let mut max_abs_scale = 0f32;
        for ib in 0..QK_K / 16 {
            let scale = make_qx_quants_q6(&sb[16 * ib..], &mut l[16 * ib..]);
            scales[ib] = scale;
            let abs_scale = scale.abs();
            if abs_scale > max_abs_scale {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            out.extend_from_slice(&[0u8; Q6_K_BYTES]);
            continue;
        }
        let iscale = -128.0 / max_scale;
        let (d_bits, d) = fp16_round(1.0 / iscale);
        let mut sc = [0i8; QK_K / 16];
        for (s, &scale) in sc.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * scale).min(127) as i8;
        }
        for j in 0..QK_K / 16 {
            let dj = d * sc[j] as f32;
            if dj == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let q = nearest_int(sb[16 * j + ii] / dj).clamp(-32, 31);
                l[16 * j + ii] = (q + 32) as i8;
            }
        }
        let mut ql = [0u8; QK_K / 2];
        let mut qh = [0u8; QK_K / 4];
        for (k, j) in (0..QK_K).step_by(128).enumerate() {
            for i in 0..32 {
                let b = |o: usize| l[j + i + o] as u8;
                ql[64 * k + i] = (b(0) & 0xF) | ((b(64) & 0xF) << 4);
                ql[64 * k + i + 32] = (b(32) & 0xF) | ((b(96) & 0xF) << 4);
                qh[32 * k + i] =
                    (b(0) >> 4) | ((b(32) >> 4) << 2) | ((b(64) >> 4) << 4) | ((b(96) >> 4) << 6);
            }
        }
        out.extend_from_slice(&ql);
        out.extend_from_slice(&qh);
        out.extend(sc.iter().map(|&s| s as u8));
        out.extend_from_slice(&d_bits.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even_like_ggml() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-3.7), -4);
        assert_eq!(nearest_int(62.49), 62);
    }

    #[test]
    fn block_sizes_match_ggml() {
        let x = vec![0.25f32; 2 * QK_K];
        for (f, bytes) in [
            (quantize_q4_k as fn(&[f32], &mut Vec<u8>), Q4_K_BYTES),
            (quantize_q5_k, Q5_K_BYTES),
            (quantize_q6_k, Q6_K_BYTES),
        ] {
            let mut out = Vec::new();
            f(&x, &mut out);
            assert_eq!(out.len(), 2 * bytes);
        }
    }

    #[test]
    fn all_zero_q6_k_block_is_all_zero_bytes() {
        let mut out = Vec::new();
        quantize_q6_k(&[0.0; QK_K], &mut out);
        assert!(out.iter().all(|&b| b == 0));
    }
}
