//! Rotary position embeddings: precomputed cos/sin tables, applied in the
//! half-split layout (Hugging Face) or the interleaved one (llama.cpp's GGUF).

use candle_core::{DType, Device, Tensor};

use super::config::{Config, Llama3Scaling};
use crate::error::Result;

/// Cos/sin tables for every position up to the context length.
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
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
        let inv = Tensor::from_vec(inv, (1, cfg.head_dim / 2), device)?;
        let pos = Tensor::arange(0u32, n as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((n, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Self {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
            interleaved: cfg.rope_interleaved,
        })
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
