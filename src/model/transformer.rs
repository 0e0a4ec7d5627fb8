//! The model: embedding -> blocks -> final norm -> LM head, for every
//! architecture [`super::layout`] describes. One implementation serves
//! generation, analysis, ablation and training.

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::kv_cache::KvCache;

use super::attention::uses_cpu_kernel;
use super::block::{Block, Pass};
use super::config::Config;
use super::embedding::Embedding;
use super::kv_cache::{CpuKv, KvState, LayerCache, CACHE_CHUNK};
use super::layout::{Part, Site};
use super::linear::Linear;
use super::norm::RmsNorm;
use super::observer::Observer;
use super::rope::Ropes;
use crate::error::{Error, Result};

/// A decoder-only transformer of any [`super::config::Architecture`].
#[derive(Debug, Clone)]
pub struct Model {
    /// The resolved configuration.
    pub cfg: Config,
    /// Token embedding `(vocab, hidden)`.
    pub embed: Embedding,
    /// The decoder blocks.
    pub blocks: Vec<Block>,
    /// The final norm.
    pub norm: RmsNorm,
    /// The LM head `(vocab, hidden)`.
    pub lm_head: Linear,
    /// Use ops with a backward pass (training) instead of fused kernels.
    pub differentiable: bool,
    /// The LM head was made from the embedding at load (a tied checkpoint
    /// without its own `lm_head`), so it holds no parameters of its own.
    pub(super) head_tied: bool,
    pub(super) ropes: Ropes,
    pub(super) skip: Vec<bool>,
    pub(super) dtype: DType,
    pub(super) device: Device,
}

/// A weight of the model, as [`Model::weight`] finds it at a [`Site`].
#[derive(Debug, Clone, Copy)]
pub enum Weight<'a> {
    /// The token embedding.
    Embedding(&'a Embedding),
    /// A linear map.
    Linear(&'a Linear),
    /// A norm.
    Norm(&'a RmsNorm),
    /// A bias vector.
    Bias(&'a Tensor),
}

impl Model {
    /// Every linear map with its site, block by block, the LM head last
    /// (also when it shares the embedding's weight).
    pub fn linears(&self) -> Vec<(Site, &Linear)> {
        let mut out: Vec<(Site, &Linear)> = Vec::new();
        for (l, b) in self.blocks.iter().enumerate() {
            out.extend(
                Part::LINEARS
                    .into_iter()
                    .filter_map(|p| Some((Site::Block(l, p), b.linear(p)?))),
            );
        }
        out.push((Site::Head, &self.lm_head));
        out
    }

    /// [`Model::linears`], mutably.
    pub fn linears_mut(&mut self) -> Vec<(Site, &mut Linear)> {
        let mut out: Vec<(Site, &mut Linear)> = Vec::new();
        for (l, b) in self.blocks.iter_mut().enumerate() {
            out.extend(b.linears_mut().map(|(p, lin)| (Site::Block(l, p), lin)));
        }
        out.push((Site::Head, &mut self.lm_head));
        out
    }

    /// The weight at `site`, when the model holds one there.
    pub fn weight(&self, site: Site) -> Option<Weight<'_>> {
        Some(match site {
            Site::Embedding => Weight::Embedding(&self.embed),
            Site::FinalNorm => Weight::Norm(&self.norm),
            Site::Head => Weight::Linear(&self.lm_head),
            Site::Block(l, p) => {
                let b = self.blocks.get(l)?;
                match (b.linear(p), b.bias(p)) {
                    (Some(lin), _) => Weight::Linear(lin),
                    (None, Some(bias)) => Weight::Bias(bias),
                    (None, None) => Weight::Norm(b.norm(p)?),
                }
            }
        })
    }

    /// True when the LM head is the embedding matrix (tied at load), so its
    /// parameters are the embedding's, even where in-situ quantization gave
    /// it a storage of its own.
    pub fn head_is_tied(&self) -> bool {
        self.head_tied
    }

    /// True when the LM head and the embedding share one storage (tied and
    /// held once in memory).
    pub fn head_shares_embedding(&self) -> bool {
        self.embed.is_tied_to(&self.lm_head)
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// An empty KV cache for this model: flat f32 buffers for CPU f32
    /// inference, tensors otherwise (set `differentiable` before calling).
    pub fn new_cache(&self) -> KvState {
        let fast = uses_cpu_kernel(self.device(), self.dtype, self.differentiable);
        let chunk = self.cfg.max_position_embeddings.min(CACHE_CHUNK);
        KvState {
            layers: (0..self.cfg.num_layers)
                .map(|_| {
                    if fast {
                        LayerCache::Cpu(CpuKv::default())
                    } else {
                        LayerCache::Tensors(KvCache::new(2, chunk))
                    }
                })
                .collect(),
            len: 0,
        }
    }

    /// Runs the model without the given blocks (each replaced by the identity).
    pub fn set_skip_layers(&mut self, layers: &[usize]) -> Result<()> {
        let n = self.cfg.num_layers;
        if let Some(bad) = layers.iter().find(|&&l| l >= n) {
            return Err(Error::setting(
                "skip_layers",
                format!(
                    "{bad}: layer {bad} does not exist (the model has layers 0..{})",
                    n - 1
                ),
            ));
        }
        self.skip = (0..n).map(|l| layers.contains(&l)).collect();
        Ok(())
    }

    /// The blocks currently skipped.
    pub fn skipped_layers(&self) -> Vec<usize> {
        (0..self.skip.len()).filter(|&l| self.skip[l]).collect()
    }

    /// Final-norm hidden states `(b, t, hidden)` for token ids `(b, t)`,
    /// continuing from `cache` when given.
    pub fn hidden<O: Observer>(
        &self,
        ids: &Tensor,
        mut cache: Option<&mut KvState>,
        obs: &mut O,
    ) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let start = cache.as_ref().map_or(0, |c| c.len);
        if start + t > self.cfg.max_position_embeddings {
            return Err(Error::usage(format!(
                "{} tokens exceed the model's context of {} tokens",
                start + t,
                self.cfg.max_position_embeddings
            )));
        }
        let pass = Pass {
            ropes: &self.ropes,
            start,
            differentiable: self.differentiable,
            placement: self.cfg.placement,
        };
        let mut x = self.embed_ids(ids)?;
        for (l, block) in self.blocks.iter().enumerate() {
            if self.skip[l] {
                continue;
            }
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[l]);
            x = block.forward(l, &x, &pass, layer_cache, obs)?;
        }
        if let Some(c) = cache {
            c.len = start + t;
        }
        let y = self.norm.forward(&x, self.differentiable)?;
        obs.final_norm(&y)?;
        Ok(y)
    }

    /// Embeds token ids `(b, t)` into `(b, t, hidden)` (scaled as the
    /// architecture asks, e.g. by sqrt(hidden) for Gemma).
    pub fn embed_ids(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let flat = self.embed.forward(&ids.flatten_all()?, self.dtype)?;
        let x = flat.reshape((b, t, self.cfg.hidden_size))?;
        Ok(match self.cfg.embedding_scale {
            Some(s) => (x * s)?,
            None => x,
        })
    }

    /// Logits `(.., vocab)` for hidden states `(.., hidden)`, in f32 (f64 for an f64 model).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        super::norm::at_least_f32(&self.lm_head.forward(hidden)?)
    }

    /// Logits at every position `(b, t, vocab)`.
    pub fn forward_all(&self, ids: &Tensor, cache: Option<&mut KvState>) -> Result<Tensor> {
        let h = self.hidden(ids, cache, &mut ())?;
        self.logits(&h)
    }

    /// Logits at the last position `(b, vocab)`.
    pub fn forward_last(&self, ids: &Tensor, cache: Option<&mut KvState>) -> Result<Tensor> {
        let h = self.hidden(ids, cache, &mut ())?;
        let t = h.dim(1)?;
        self.logits(&h.i((.., t - 1, ..))?.contiguous()?)
    }
}
