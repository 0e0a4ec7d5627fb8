//! Building a [`Model`] from a [`TensorSource`]: the layout's tensors, then
//! in-situ quantization and the CPU kernels when the options ask for them.

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};

use super::block::Block;
use super::config::Config;
use super::embedding::Embedding;
use super::layout::{self, Site};
use super::linear::Linear;
use super::norm::RmsNorm;
use super::quantize::quantize_linears;
use super::rope::Ropes;
use super::source::TensorSource;
use super::transformer::Model;
use crate::error::Result;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compute dtype of dense weights and activations.
    pub dtype: DType,
    /// Where the weights live.
    pub device: Device,
    /// Re-encode every dense linear map in this ggml type after loading
    /// (in-situ quantization; see [`super::quantize`]).
    pub quantize: Option<GgmlDType>,
    /// Keep every weight a dense tensor and use ops with a backward pass
    /// (fine-tuning). Otherwise the model is prepared for inference: on the
    /// CPU its linear maps move onto normscope's kernels.
    pub training: bool,
}

impl LoadOptions {
    /// Inference in `dtype` on `device`, weights as stored.
    pub fn inference(dtype: DType, device: &Device) -> Self {
        Self {
            dtype,
            device: device.clone(),
            quantize: None,
            training: false,
        }
    }
}

impl Model {
    /// Builds the model of `cfg` from `src`'s tensors (named as
    /// [`layout::tensors`] lists them), then quantizes and prepares it as
    /// `opts` asks.
    pub fn load(src: &dyn TensorSource, cfg: Config, opts: &LoadOptions) -> Result<Self> {
        // Straight onto the CPU kernels as each piece loads (unless it is to
        // be trained or re-quantized first), so that the file's tensors and
        // their repacked copies never all coexist: peak memory while loading
        // stays near the model's size, and so does what the allocator keeps.
        let early = !opts.training && opts.device.is_cpu() && opts.quantize.is_none();
        let embed_spec = layout::spec(&cfg, Site::Embedding);
        let mut embed = src.embedding(&embed_spec)?;
        if let (true, Embedding::Rows(l)) = (early, &mut embed) {
            *l = l.clone().into_cpu_kernels()?;
        }
        let mut task = crate::progress::task("loading", cfg.num_layers as u64, "blocks");
        let blocks = (0..cfg.num_layers)
            .map(|l| {
                let mut block = Block::load(src, &cfg, l)?;
                if early {
                    for (_, lin) in block.linears_mut() {
                        *lin = lin.clone().into_cpu_kernels()?;
                    }
                }
                task.inc(1);
                Ok(block)
            })
            .collect::<Result<Vec<_>>>()?;
        drop(task);
        let head = layout::spec(&cfg, Site::Head);
        let head_tied = !src.contains(&head);
        let lm_head = if !head_tied {
            src.linear(&head)?
        } else if cfg.tie_word_embeddings {
            src.tied_head(&embed, &embed_spec)?
        } else {
            return Err(src.error(
                &head,
                "tensor is missing and tie_word_embeddings is false in the configuration",
            ));
        };
        let norm = RmsNorm::load(src, &layout::spec(&cfg, Site::FinalNorm), cfg.rms_norm_eps)?;
        let mut model = Self {
            ropes: Ropes::new(&cfg, opts.dtype, &opts.device)?,
            skip: vec![false; cfg.num_layers],
            norm,
            cfg,
            embed,
            blocks,
            lm_head,
            head_tied,
            differentiable: opts.training,
            dtype: opts.dtype,
            device: opts.device.clone(),
        };
        if let Some(q) = opts.quantize {
            let n = model.quantize_in_situ(q)?;
            tracing::info!("quantized {n} linear maps to {q:?} in situ");
        }
        if !opts.training && model.device.is_cpu() {
            model.use_cpu_kernels()?;
        }
        Ok(model)
    }

    /// Moves every linear map that fits onto normscope's CPU kernels. A tied
    /// head and the embedding stay one copy: the packed head serves
    /// embedding lookups too (rows unpacked per token).
    fn use_cpu_kernels(&mut self) -> Result<()> {
        let tied = self.head_shares_embedding();
        if let Embedding::Rows(l) = &mut self.embed {
            *l = l.clone().into_cpu_kernels()?;
        }
        for (site, l) in self.linears_mut() {
            if !(tied && site == Site::Head) {
                *l = l.clone().into_cpu_kernels()?;
            }
        }
        if tied {
            match &self.embed {
                Embedding::Rows(l) => self.lm_head = l.clone(),
                Embedding::Dense(_) => {
                    self.lm_head = self.lm_head.clone().into_cpu_kernels()?;
                    if matches!(self.lm_head, Linear::Cpu(_)) {
                        self.embed = Embedding::Rows(self.lm_head.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// Re-encodes every dense linear map (attention, MLP, LM head) in the
    /// ggml type `dtype` (see [`super::quantize`]); returns how many changed.
    /// Norms and the embedding stay dense.
    pub fn quantize_in_situ(&mut self, dtype: GgmlDType) -> Result<usize> {
        quantize_linears(self.linears_mut().into_iter().map(|(_, l)| l), dtype)
    }
}
