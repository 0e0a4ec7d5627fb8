//! The model as trainable parameters: every tensor a `Var` (or a plain tensor
//! when frozen), the one [`Model`] built on them with differentiable ops, the
//! training loss, and the held-out evaluation from the analysis module.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};

use super::metrics::EvalRecord;
use crate::analysis::{analyze, AnalyzeOptions, Figure};
use crate::error::{Error, Result};
use crate::model::layout::TensorSpec;
use crate::model::source::{from_hf_stored, TensorSource};
use crate::model::{Config, LoadOptions, Model};

/// A model whose weights are trainable variables.
pub struct Trainable {
    /// The network; its tensors are the variables' tensors.
    pub model: Model,
    /// The trainable parameters by Hugging Face name, in a stable order.
    pub params: Vec<(String, Var)>,
    /// Frozen tensors by name.
    frozen: HashMap<String, Tensor>,
}

/// Serves tensors from a Hugging Face name -> stored tensor map.
struct MapSource<'a>(&'a HashMap<String, Tensor>);

impl TensorSource for MapSource<'_> {
    fn tensor(&self, spec: &TensorSpec) -> Result<Tensor> {
        let t = self
            .0
            .get(&spec.hf_name)
            .ok_or_else(|| self.error(spec, "tensor is missing"))?;
        if t.dims() != spec.shape.as_slice() {
            return Err(self.error(
                spec,
                &format!("has shape {:?}, expected {:?}", t.dims(), spec.shape),
            ));
        }
        from_hf_stored(spec, t.clone())
    }

    fn contains(&self, spec: &TensorSpec) -> bool {
        self.0.contains_key(&spec.hf_name)
    }

    fn error(&self, spec: &TensorSpec, msg: &str) -> Error {
        Error::format(
            PathBuf::from("<trainable parameters>"),
            format!("tensor `{}`: {msg}", spec.hf_name),
        )
    }
}

impl Trainable {
    /// Makes every tensor of `tensors` a variable in `dtype` (f32 for training,
    /// f64 for gradient checks) on `device`, except those `frozen` names, and
    /// builds the model with differentiable ops.
    pub fn new(
        tensors: HashMap<String, Tensor>,
        cfg: Config,
        frozen: impl Fn(&str) -> bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut names: Vec<String> = tensors.keys().cloned().collect();
        names.sort();
        let mut all = HashMap::new();
        let (mut params, mut fixed) = (Vec::new(), HashMap::new());
        for name in names {
            let t = tensors[&name].to_dtype(dtype)?.to_device(device)?;
            if frozen(&name) {
                fixed.insert(name.clone(), t.clone());
                all.insert(name, t);
            } else {
                let v = Var::from_tensor(&t)?;
                all.insert(name.clone(), v.as_tensor().clone());
                params.push((name, v));
            }
        }
        drop(tensors);
        let opts = LoadOptions {
            training: true,
            ..LoadOptions::inference(dtype, device)
        };
        let model = Model::load(&MapSource(&all), cfg, &opts)?;
        Ok(Self {
            model,
            params,
            frozen: fixed,
        })
    }

    /// Mean next-token cross-entropy of `inputs` -> `targets`, both `(b, t)`.
    pub fn loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = self
            .model
            .logits(&self.model.hidden(inputs, None, &mut ())?)?; // (b, t, vocab)
        Ok(candle_nn::loss::cross_entropy(
            &logits.flatten_to(1)?,
            &targets.flatten_all()?,
        )?)
    }

    /// Every weight by name, as the checkpoint stores it.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut out = self.frozen.clone();
        out.extend(
            self.params
                .iter()
                .map(|(n, v)| (n.clone(), v.as_tensor().clone())),
        );
        out
    }

    /// Held-out loss and per-block figures over `windows` (fused inference ops).
    pub fn evaluate(&mut self, step: usize, windows: &[Vec<u32>]) -> Result<EvalRecord> {
        self.model.differentiable = false;
        let figures = analyze(
            &mut self.model,
            windows,
            &AnalyzeOptions::default(),
            &|_| String::new(),
            &mut || {},
        );
        self.model.differentiable = true;
        let figures = figures?;
        let ppl = figures
            .perplexity
            .ok_or_else(|| Error::usage("no held-out tokens to evaluate"))?;
        let per_layer = |key: Figure| figures.layers.iter().map(|l| l.excl0[key].mean).collect();
        Ok(EvalRecord {
            step,
            heldout_loss: ppl.ln(),
            heldout_ppl: ppl,
            tokens: figures.predicted_tokens,
            rel_contrib: per_layer(Figure::RelContrib),
            attn_ratio: per_layer(Figure::AttnRatio),
            mlp_ratio: per_layer(Figure::MlpRatio),
        })
    }
}
