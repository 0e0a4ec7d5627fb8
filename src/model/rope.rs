//! Rotary position embeddings: precomputed cos/sin tables, applied in the
//! half-split layout (Hugging Face) or the interleaved one (llama.cpp's GGUF).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::config::{Config, Llama3Scaling};
use crate::error::Result;

/// Cos/sin tables for every position up to the context length.
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    /// The same tables as f32 `(positions, head_dim / 2)`, for [`Rope::rotate_in_place`].
    cos_f32: Arc<Vec<f32>>,
    sin_f32: Arc<Vec<f32>>,
    interleaved: bool,
}

/// The inverse frequencies `1 / theta^(2i/d)`, with llama3 scaling when configured.
pub fn inverse_frequencies(cfg: &Config) -> Vec<f64> {
    let d = cfg.head_dim;
    let base: Vec<f64> = (0..d / 2)
        .map(|i| 1.0 / cfg.rope_theta.powf((2 * i) as f64 / d as f64))
        .collect();
    match &cfg.rope_scaling {
        None => base,
        Some(s) => base.into_iter().map(|f| llama3_scale(f, s)).collect(),
    }
}

fn llama3_scale(freq: f64, s: &Llama3Scaling) -> f64 {
    let orig = s.original_max_position_embeddings as f64;
    let low_wavelen = orig / s.low_freq_factor;
    let high_wavelen = orig / s.high_freq_factor;
    let wavelen = 2.0 * std::f64::consts::PI / freq;
    if wavelen < high_wavelen {
        freq
    } else if wavelen > low_wavelen {
        freq / s.factor
    } else {
        let smooth =
            (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        (1.0 - smooth) * freq / s.factor + smooth * freq
    }
}

impl Rope {
    /// Tables for `cfg.max_position_embeddings` positions, in `dtype` on `device`.
    pub fn new(cfg: &Config, dtype: DType, device: &Device) -> Result<Self> {
        // Computed in f32 like transformers, so angles match it bit for bit.
        let inv: Vec<f32> = inverse_frequencies(cfg)
            .into_iter()
            .map(|f| f as f32)
            .collect();
        let n = cfg.max_position_embeddings;
        let half = cfg.head_dim / 2;
        let freqs: Vec<f32> = (0..n)
            .flat_map(|p| inv.iter().map(move |f| p as f32 * f))
            .collect();
        let cos: Vec<f32> = freqs.iter().map(|f| f.cos()).collect();
        let sin: Vec<f32> = freqs.iter().map(|f| f.sin()).collect();
        let table = |v: &[f32]| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, (n, half), device)?.to_dtype(dtype)?)
        };
        Ok(Self {
            cos: table(&cos)?,
            sin: table(&sin)?,
            cos_f32: Arc::new(cos),
            sin_f32: Arc::new(sin),
            interleaved: cfg.rope_interleaved,
        })
    }

    /// Rotates f32 rows laid out `(batch, t, heads, head_dim)` in place, for
    /// positions `start..start + t` (the CPU inference path; same arithmetic
    /// as candle's fused `rope` / `rope_i`).
    pub fn rotate_in_place(&self, x: &mut [f32], t: usize, heads: usize, start: usize) {
        let half = self.half();
        let hd = 2 * half;
        for (r, row) in x.chunks_exact_mut(heads * hd).enumerate() {
            let pos = start + r % t;
            let cos = &self.cos_f32[pos * half..(pos + 1) * half];
            let sin = &self.sin_f32[pos * half..(pos + 1) * half];
            for head in row.chunks_exact_mut(hd) {
                if self.interleaved {
                    for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                        let (a, b) = (pair[0], pair[1]);
                        pair[0] = a * cos[i] - b * sin[i];
                        pair[1] = a * sin[i] + b * cos[i];
                    }
                } else {
                    let (lo, hi) = head.split_at_mut(half);
                    for i in 0..half {
                        let (a, b) = (lo[i], hi[i]);
                        lo[i] = a * cos[i] - b * sin[i];
                        hi[i] = a * sin[i] + b * cos[i];
                    }
                }
            }
        }
    }

    /// Half the head width (the tables' row length).
    fn half(&self) -> usize {
        self.cos.dim(1).unwrap_or(0)
    }

    /// Rotates `(b, heads, t, head_dim)` for positions `start..start + t`.
    pub fn apply(&self, x: &Tensor, start: usize, differentiable: bool) -> Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, start, t)?;
        let sin = self.sin.narrow(0, start, t)?;
        use candle_nn::rotary_emb as re;
        Ok(match (self.interleaved, differentiable) {
            (false, false) => re::rope(&x.contiguous()?, &cos, &sin)?,
            (false, true) => re::rope_slow(x, &cos, &sin)?,
            (true, false) => re::rope_i(&x.contiguous()?, &cos, &sin)?,
            (true, true) => re::rope_i_slow(x, &cos, &sin)?,
        })
    }
}
