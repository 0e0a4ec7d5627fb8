//! The model: embedding -> blocks -> final norm -> LM head. One implementation
//! serves generation, analysis, ablation and training.

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::kv_cache::KvCache;

use super::attention::{uses_cpu_kernel, Attention};
use super::block::{Block, Pass};
use super::config::Config;
use super::embedding::Embedding;
use super::kv_cache::{CpuKv, LayerCache, CACHE_CHUNK};
use super::linear::Linear;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::observer::Observer;
use super::rope::Rope;
use crate::error::{Error, Result};
use crate::weights::TensorSource;

/// A LLaMA-architecture causal language model.
#[derive(Debug, Clone)]
pub struct Llama {
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
    rope: Rope,
    skip: Vec<bool>,
    dtype: DType,
    device: Device,
}

/// Per-layer key/value caches and the number of positions already seen.
#[derive(Debug, Clone)]
pub struct KvState {
    layers: Vec<LayerCache>,
    len: usize,
}

impl KvState {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first forward pass.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Llama {
    /// Builds the model from checkpoint tensors named as in Hugging Face's
    /// `LlamaForCausalLM` (`model.layers.N.self_attn.q_proj.weight`, ...).
    pub fn load(
        src: &dyn TensorSource,
        cfg: Config,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let (q_out, kv_out) = (
            cfg.num_heads * cfg.head_dim,
            cfg.num_kv_heads * cfg.head_dim,
        );
        let norm = |name: &str| -> Result<RmsNorm> {
            Ok(RmsNorm::new(src.tensor(name, &[h])?, cfg.rms_norm_eps))
        };
        let embed = src.embedding("model.embed_tokens.weight", &[cfg.vocab_size, h])?;
        let mut blocks = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}");
            let lin = |name: &str, out: usize, inp: usize| {
                src.linear(&format!("{p}.{name}.weight"), out, inp)
            };
            blocks.push(Block {
                attn_norm: norm(&format!("{p}.input_layernorm.weight"))?,
                attn: Attention {
                    q: lin("self_attn.q_proj", q_out, h)?,
                    k: lin("self_attn.k_proj", kv_out, h)?,
                    v: lin("self_attn.v_proj", kv_out, h)?,
                    o: lin("self_attn.o_proj", h, q_out)?,
                    num_heads: cfg.num_heads,
                    num_kv_heads: cfg.num_kv_heads,
                    head_dim: cfg.head_dim,
                },
                mlp_norm: norm(&format!("{p}.post_attention_layernorm.weight"))?,
                mlp: Mlp {
                    gate: lin("mlp.gate_proj", cfg.intermediate_size, h)?,
                    up: lin("mlp.up_proj", cfg.intermediate_size, h)?,
                    down: lin("mlp.down_proj", h, cfg.intermediate_size)?,
                },
            });
        }
        let lm_head = if src.contains("lm_head.weight") {
            src.linear("lm_head.weight", cfg.vocab_size, h)?
        } else if cfg.tie_word_embeddings {
            src.tied_head(&embed)?
        } else {
            return Err(src.error(
                "lm_head.weight",
                "tensor is missing and tie_word_embeddings is false in config.json",
            ));
        };
        Ok(Self {
            rope: Rope::new(&cfg, dtype, device)?,
            skip: vec![false; cfg.num_layers],
            norm: norm("model.norm.weight")?,
            cfg,
            embed,
            blocks,
            lm_head,
            differentiable: false,
            dtype,
            device: device.clone(),
        })
    }

    /// Moves every linear map that fits onto normscope's CPU kernels (f32
    /// dense, Q4_1, Q8_0); for inference only, as the kernels have no backward.
    pub fn use_cpu_kernels(&mut self) -> Result<()> {
        let convert = |l: &mut Linear| -> Result<()> {
            *l = l.clone().into_cpu_kernels()?;
            Ok(())
        };
        // A quantized embedding is converted once; a tied head then shares it.
        let tied = self.embed.is_tied_to(&self.lm_head);
        let head_shared = match &mut self.embed {
            Embedding::Rows(l) => {
                convert(l)?;
                if tied {
                    self.lm_head = l.clone();
                }
                tied
            }
            Embedding::Dense(_) => false,
        };
        for b in &mut self.blocks {
            for l in [&mut b.attn.q, &mut b.attn.k, &mut b.attn.v, &mut b.attn.o] {
                convert(l)?;
            }
            for l in [&mut b.mlp.gate, &mut b.mlp.up, &mut b.mlp.down] {
                convert(l)?;
            }
        }
        if !head_shared {
            convert(&mut self.lm_head)?;
        }
        Ok(())
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
            return Err(Error::usage(format!(
                "--skip-layers: layer {bad} does not exist (the model has layers 0..{})",
                n - 1
            )));
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
            rope: &self.rope,
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

    /// Embeds token ids `(b, t)` into `(b, t, hidden)`.
    pub fn embed_ids(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let flat = self.embed.forward(&ids.flatten_all()?, self.dtype)?;
        Ok(flat.reshape((b, t, self.cfg.hidden_size))?)
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
