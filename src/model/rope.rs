//! Rotary position embeddings: cos/sin tables, applied in the half-split
//! layout (Hugging Face, Gemma GGUFs) or the interleaved one (llama.cpp's
//! LLaMA GGUFs). Tables grow on demand, in chunks, up to the context length,
//! so a model with a long context pays only for the positions it has seen.

use std::sync::{Arc, RwLock};

use candle_core::{DType, Device, Tensor};

use super::config::{AttentionKind, Config, Llama3Scaling, RopeScaling};
use crate::error::Result;

/// Positions added to the tables each time they grow.
const GROWTH: usize = 1024;

/// One RoPE base's tables.
#[derive(Debug, Clone)]
pub struct Rope {
    /// Inverse frequencies `(head_dim / 2)`, in f32 as transformers computes them.
    inv_freq: Arc<Vec<f32>>,
    interleaved: bool,
    max_positions: usize,
    dtype: DType,
    device: Device,
    tables: Arc<RwLock<Arc<Tables>>>,
}

/// Cos/sin for positions `0..len`.
#[derive(Debug)]
struct Tables {
    len: usize,
    cos: Tensor,
    sin: Tensor,
    /// The same tables as f32 `(len, head_dim / 2)`, for [`Rope::rotate_in_place`].
    cos_f32: Vec<f32>,
    sin_f32: Vec<f32>,
}

/// The RoPE tables of a model: one for full-attention blocks and, when the
/// model has sliding-window blocks with their own base, one for those.
#[derive(Debug, Clone)]
pub struct Ropes {
    full: Rope,
    sliding: Option<Rope>,
}

impl Ropes {
    /// Tables for `cfg`, in `dtype` on `device`.
    pub fn new(cfg: &Config, dtype: DType, device: &Device) -> Result<Self> {
        let full = Rope::new(
            cfg,
            cfg.rope_theta,
            cfg.rope_scaling.as_ref(),
            dtype,
            device,
        )?;
        let sliding = cfg
            .has_sliding_layers()
            .then(|| Rope::new(cfg, cfg.local_rope_theta, None, dtype, device))
            .transpose()?;
        Ok(Self { full, sliding })
    }

    /// The tables blocks of `kind` use.
    pub fn for_kind(&self, kind: AttentionKind) -> &Rope {
        match (kind, &self.sliding) {
            (AttentionKind::Sliding, Some(r)) => r,
            _ => &self.full,
        }
    }
}

/// The inverse frequencies `1 / theta^(2i/d)`, with llama3 scaling when given.
pub fn inverse_frequencies(
    head_dim: usize,
    theta: f64,
    scaling: Option<&Llama3Scaling>,
) -> Vec<f64> {
    let d = head_dim;
    let base = (0..d / 2).map(|i| 1.0 / theta.powf((2 * i) as f64 / d as f64));
    match scaling {
        None => base.collect(),
        Some(s) => base.map(|f| llama3_scale(f, s)).collect(),
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
    /// Tables for base `theta` (and optional scaling) of a model of `cfg`,
    /// in `dtype` on `device`; empty until first used.
    pub fn new(
        cfg: &Config,
        theta: f64,
        scaling: Option<&RopeScaling>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        // Computed in f64 and rounded once to f32, as transformers (llama3
        // rule) and llama.cpp (per-frequency factors) compute them.
        let inv_freq: Vec<f32> = match scaling {
            None => inverse_frequencies(cfg.head_dim, theta, None),
            Some(RopeScaling::Llama3(s)) => inverse_frequencies(cfg.head_dim, theta, Some(s)),
            Some(RopeScaling::Factors(factors)) => inverse_frequencies(cfg.head_dim, theta, None)
                .iter()
                .zip(factors)
                .map(|(f, &k)| f / k as f64)
                .collect(),
        }
        .into_iter()
        .map(|f| f as f32)
        .collect();
        let rope = Self {
            tables: Arc::new(RwLock::new(Arc::new(build(&inv_freq, 0, dtype, device)?))),
            inv_freq: Arc::new(inv_freq),
            interleaved: cfg.rope_interleaved,
            max_positions: cfg.max_position_embeddings,
            dtype,
            device: device.clone(),
        };
        Ok(rope)
    }

    /// Tables covering positions `0..end` (grown if needed).
    fn tables(&self, end: usize) -> Result<Arc<Tables>> {
        let current = self
            .tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if current.len >= end {
            return Ok(current);
        }
        let mut slot = self.tables.write().unwrap_or_else(|p| p.into_inner());
        if slot.len < end {
            let len = end
                .next_multiple_of(GROWTH)
                .min(self.max_positions.max(end));
            *slot = Arc::new(build(&self.inv_freq, len, self.dtype, &self.device)?);
        }
        Ok(slot.clone())
    }

    /// Rotates f32 rows laid out `(batch, t, heads, head_dim)` in place, for
    /// positions `start..start + t` (the CPU inference path; same arithmetic
    /// as candle's fused `rope` / `rope_i`).
    pub fn rotate_in_place(
        &self,
        x: &mut [f32],
        t: usize,
        heads: usize,
        start: usize,
    ) -> Result<()> {
        let tables = self.tables(start + t)?;
        let half = self.inv_freq.len();
        let hd = 2 * half;
        for (r, row) in x.chunks_exact_mut(heads * hd).enumerate() {
            let pos = start + r % t;
            let cos = &tables.cos_f32[pos * half..(pos + 1) * half];
            let sin = &tables.sin_f32[pos * half..(pos + 1) * half];
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
        Ok(())
    }

    /// Rotates `(b, heads, t, head_dim)` for positions `start..start + t`.
    pub fn apply(&self, x: &Tensor, start: usize, differentiable: bool) -> Result<Tensor> {
        let t = x.dim(2)?;
        let tables = self.tables(start + t)?;
        let cos = tables.cos.narrow(0, start, t)?;
        let sin = tables.sin.narrow(0, start, t)?;
        use candle_nn::rotary_emb as re;
        Ok(match (self.interleaved, differentiable) {
            (false, false) => re::rope(&x.contiguous()?, &cos, &sin)?,
            (false, true) => re::rope_slow(x, &cos, &sin)?,
            (true, false) => re::rope_i(&x.contiguous()?, &cos, &sin)?,
            (true, true) => re::rope_i_slow(x, &cos, &sin)?,
        })
    }
}

/// Cos/sin tables for positions `0..len`.
fn build(inv_freq: &[f32], len: usize, dtype: DType, device: &Device) -> Result<Tables> {
    let half = inv_freq.len();
    let freqs: Vec<f32> = (0..len)
        .flat_map(|p| inv_freq.iter().map(move |f| p as f32 * f))
        .collect();
    let cos_f32: Vec<f32> = freqs.iter().map(|f| f.cos()).collect();
    let sin_f32: Vec<f32> = freqs.iter().map(|f| f.sin()).collect();
    let table = |v: &[f32]| -> Result<Tensor> {
        Ok(Tensor::from_slice(v, (len, half), device)?.to_dtype(dtype)?)
    };
    Ok(Tables {
        len,
        cos: table(&cos_f32)?,
        sin: table(&sin_f32)?,
        cos_f32,
        sin_f32,
    })
}
