//! Grouped-query causal self-attention with RoPE (or none, in SmolLM3's
//! NoPE blocks), optional q/k/v/o biases, optional QK-norm (per head or over
//! the whole projection), optional sliding window, and a preallocated KV cache.

use candle_core::{DType, Device, Tensor, D};

use super::config::{AttentionKind, QkNorm};
use super::kv_cache::{CpuKv, LayerCache};
use super::linear::Linear;
use super::norm::RmsNorm;
use super::rope::Rope;
use crate::error::{Error, Result};
use crate::kernels::{self, AttentionShape};

/// Attention projections and head layout.
#[derive(Debug, Clone)]
pub struct Attention {
    /// `(heads * head_dim, hidden)`.
    pub q: Linear,
    /// `(kv_heads * head_dim, hidden)`.
    pub k: Linear,
    /// `(kv_heads * head_dim, hidden)`.
    pub v: Linear,
    /// `(hidden, heads * head_dim)`.
    pub o: Linear,
    /// Biases of the q, k, v and o projections (Qwen2: q, k and v).
    pub biases: Biases,
    /// RMSNorm of the queries before RoPE (Gemma 3, Qwen3, OLMo 2).
    pub q_norm: Option<RmsNorm>,
    /// RMSNorm of the keys before RoPE.
    pub k_norm: Option<RmsNorm>,
    /// Whether `q_norm` / `k_norm` normalize each head or the whole projection.
    pub qk_norm: QkNorm,
    /// Whether q and k are rotated (false in SmolLM3's NoPE blocks).
    pub rotary: bool,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Full or sliding-window attention (which RoPE table it uses).
    pub kind: AttentionKind,
    /// The sliding window, for sliding-window blocks.
    pub window: Option<usize>,
    /// Multiplier on the scores.
    pub scale: f64,
}

/// Optional biases added after the projections.
#[derive(Debug, Clone, Default)]
pub struct Biases {
    /// `(heads * head_dim)`.
    pub q: Option<Tensor>,
    /// `(kv_heads * head_dim)`.
    pub k: Option<Tensor>,
    /// `(kv_heads * head_dim)`.
    pub v: Option<Tensor>,
    /// `(hidden)`.
    pub o: Option<Tensor>,
}

/// `y + bias` when there is a bias.
fn biased(y: Tensor, bias: &Option<Tensor>) -> Result<Tensor> {
    Ok(match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

impl Attention {
    /// `(b, t, hidden) -> (b, t, hidden)` for positions `start..start + t`,
    /// appending this call's keys and values to `cache` when given.
    /// Inference on the CPU in f32 runs [`kernels::attend`] over a flat cache;
    /// everything else (other devices and dtypes, training) uses tensor ops.
    pub fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        start: usize,
        cache: Option<&mut LayerCache>,
        differentiable: bool,
    ) -> Result<Tensor> {
        let fast = uses_cpu_kernel(x.device(), x.dtype(), differentiable);
        match cache {
            Some(LayerCache::Cpu(kv)) if fast => self.forward_cpu(x, rope, start, kv),
            None if fast => self.forward_cpu(x, rope, start, &mut CpuKv::default()),
            Some(LayerCache::Cpu(_)) => Err(Error::internal(
                "this KV cache was made for CPU f32 inference; make a new one with Model::new_cache",
            )),
            Some(LayerCache::Tensors(c)) => {
                self.forward_tensors(x, rope, start, Some(c), differentiable)
            }
            None => self.forward_tensors(x, rope, start, None, differentiable),
        }
    }

    /// The CPU f32 inference path: projections, RoPE in place, the cache
    /// append and [`kernels::attend`], without intermediate tensors.
    fn forward_cpu(&self, x: &Tensor, rope: &Rope, start: usize, kv: &mut CpuKv) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        if kv.len() != start {
            return Err(Error::internal(format!(
                "KV cache holds {} positions but the pass starts at {start}",
                kv.len()
            )));
        }
        let rows = |l: &Linear, bias, norm, heads: usize| -> Result<Vec<f32>> {
            let y = biased(l.forward(x)?, bias)?;
            let y = self.qk_normed(y, norm, (b, t, heads, hd), false)?;
            Ok(y.flatten_all()?.to_vec1::<f32>()?)
        };
        let bias = &self.biases;
        let mut q = rows(&self.q, &bias.q, &self.q_norm, nh)?;
        let mut k = rows(&self.k, &bias.k, &self.k_norm, nkv)?;
        let mut v = rows(&self.v, &bias.v, &None, nkv)?;
        if self.rotary {
            rope.rotate_in_place(&mut q, t, nh, start)?;
            rope.rotate_in_place(&mut k, t, nkv, start)?;
        }
        // On ggml-quantized weights, llama.cpp's default CPU attention: an
        // f16 cache and f16 flash attention.
        let f16 = self.q.quantizes_activations();
        if f16 {
            for x in k.iter_mut().chain(v.iter_mut()) {
                *x = kernels::round_f16(*x);
            }
        }
        kv.append(&k, &v, b, t, nkv, hd)?;
        let shape = AttentionShape {
            batch: b,
            queries: t,
            start,
            heads: nh,
            kv_heads: nkv,
            head_dim: hd,
            capacity: kv.capacity(),
            scale: self.scale as f32,
            window: self.window,
        };
        let mut y = vec![0f32; q.len()];
        if f16 {
            kernels::attend_f16(&q, kv.keys(), kv.values(), shape, &mut y);
        } else {
            kernels::attend(&q, kv.keys(), kv.values(), shape, &mut y);
        }
        let y = Tensor::from_vec(y, (b, t, nh * hd), x.device())?;
        biased(self.o.forward(&y)?, &self.biases.o)
    }

    /// The general path on tensors (any device and dtype, with a backward pass).
    fn forward_tensors(
        &self,
        x: &Tensor,
        rope: &Rope,
        start: usize,
        cache: Option<&mut candle_nn::kv_cache::KvCache>,
        differentiable: bool,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let bias = &self.biases;
        let project = |l: &Linear, bias, norm, heads: usize| -> Result<Tensor> {
            let y = biased(l.forward(x)?, bias)?;
            Ok(self
                .qk_normed(y, norm, (b, t, heads, hd), differentiable)?
                .transpose(1, 2)?)
        };
        let q = project(&self.q, &bias.q, &self.q_norm, nh)?; // (b, nh, t, hd)
        let k = project(&self.k, &bias.k, &self.k_norm, nkv)?; // (b, nkv, t, hd)
        let v = project(&self.v, &bias.v, &None, nkv)?;
        let (q, k) = match self.rotary {
            true => (
                rope.apply(&q, start, differentiable)?,
                rope.apply(&k, start, differentiable)?,
            ),
            false => (q, k),
        };
        let (k, v) = match cache {
            Some(c) => c.append(&k.contiguous()?, &v.contiguous()?)?, // (b, nkv, T, hd)
            None => (k, v),
        };
        let k = candle_transformers::utils::repeat_kv(k, nh / nkv)?; // (b, nh, T, hd)
        let v = candle_transformers::utils::repeat_kv(v, nh / nkv)?;
        let total = k.dim(2)?;
        let dtype = q.dtype();
        let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * self.scale)?; // (b, nh, t, T)
        let scores = super::norm::at_least_f32(&scores)?;
        let past = total - t;
        let scores = if t > 1 || self.window.is_some_and(|w| past + 1 > w) {
            let mask = causal_mask(t, past, self.window, x.device())?.to_dtype(scores.dtype())?;
            scores.broadcast_add(&mask)?
        } else {
            scores
        };
        let probs = if differentiable {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let y = probs.to_dtype(dtype)?.matmul(&v.contiguous()?)?; // (b, nh, t, hd)
        let y = y.transpose(1, 2)?.reshape((b, t, nh * hd))?;
        biased(self.o.forward(&y)?, &self.biases.o)
    }

    /// `y (b, t, heads * hd)` reshaped to `(b, t, heads, hd)`, RMS-normalized
    /// by `norm` when there is one: each head's vector, or (OLMo 2) the whole
    /// projection before the reshape.
    fn qk_normed(
        &self,
        y: Tensor,
        norm: &Option<RmsNorm>,
        shape: (usize, usize, usize, usize),
        differentiable: bool,
    ) -> Result<Tensor> {
        Ok(match (norm, self.qk_norm) {
            (None, _) => y.reshape(shape)?,
            (Some(n), QkNorm::PerHead) => n.forward(&y.reshape(shape)?, differentiable)?,
            (Some(n), QkNorm::Whole) => n.forward(&y, differentiable)?.reshape(shape)?,
        })
    }
}

/// Whether attention on `device` in `dtype` runs the CPU kernel (f32
/// inference on the CPU); [`super::llama::Model::new_cache`] makes the
/// matching cache.
pub fn uses_cpu_kernel(device: &Device, dtype: DType, differentiable: bool) -> bool {
    device.is_cpu() && dtype == DType::F32 && !differentiable
}

/// Additive mask `(t, past + t)`: query i (at position p = past + i) may see
/// keys 0..=p, or with a sliding window w only keys p + 1 - w..=p; the others
/// get -inf.
///
/// ```text
/// past = 1, t = 3:   k0 k1 k2 k3        window 2:   k0 k1 k2 k3
///               q0 [  0  0 -∞ -∞ ]             q0 [  0  0 -∞ -∞ ]
///               q1 [  0  0  0 -∞ ]             q1 [ -∞  0  0 -∞ ]
///               q2 [  0  0  0  0 ]             q2 [ -∞ -∞  0  0 ]
/// ```
pub fn causal_mask(
    t: usize,
    past: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let total = past + t;
    let visible = |i: usize, j: usize| j <= past + i && window.is_none_or(|w| past + i - j < w);
    let data: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if visible(i, j) {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(data, (t, total), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_the_picture() {
        let m = causal_mask(3, 1, None, &Device::Cpu).unwrap();
        let rows: Vec<Vec<f32>> = m.to_vec2().unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(
            rows,
            vec![
                vec![0.0, 0.0, inf, inf],
                vec![0.0, 0.0, 0.0, inf],
                vec![0.0, 0.0, 0.0, 0.0]
            ]
        );
        let w: Vec<Vec<f32>> = causal_mask(3, 1, Some(2), &Device::Cpu)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(
            w,
            vec![
                vec![0.0, 0.0, inf, inf],
                vec![inf, 0.0, 0.0, inf],
                vec![inf, inf, 0.0, 0.0]
            ]
        );
    }
}
