//! The fine-tuning loop: AdamW with linear warm-up and cosine decay, global
//! gradient clipping, per-block gradient and update figures every step,
//! held-out evaluation every `eval_every` steps, and atomic checkpoints that
//! carry the optimizer state, so `--resume` continues exactly where the last
//! checkpoint left off.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::ParamsAdamW;
use serde::{Deserialize, Serialize};

use super::data::{batch, batch_starts, heldout_windows, split};
use super::metrics::{EvalRecord, Record, StepRecord};
use super::optim::AdamW;
use super::trainable::Trainable;
use super::transform::{make_variant, model_tensors};
use super::RunFiles;
use crate::error::{Error, Result};
use crate::model::layout::hf_layer as layer_of;
use crate::model::{LoadOptions, Placement};
use crate::weights::{self, WeightCheck};

/// Every setting of a run, as RUN/run.json records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainSettings {
    /// The checkpoint fine-tuned (`None`: the default model).
    pub model: Option<String>,
    /// `pre`, `post`, `deepnorm` or `lnscale`.
    pub variant: String,
    /// The UTF-8 training text.
    pub data: PathBuf,
    /// Optimizer steps in all.
    pub steps: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// The cosine decays to `lr * min_lr_ratio` at the last step.
    pub min_lr_ratio: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    pub grad_clip: f64,
    /// Seeds the data order.
    pub seed: u64,
    /// Keep the token embedding (and a tied LM head) fixed.
    pub freeze_embeddings: bool,
    /// Fraction of the text held out, taken from its end.
    pub heldout: f64,
    /// Evaluate every this many steps (and at the first and last).
    pub eval_every: usize,
    /// Held-out tokens per evaluation.
    pub eval_tokens: usize,
    /// Write a checkpoint every this many steps (and at the last).
    pub save_every: usize,
}

/// run.json: the settings and what they resolved to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// The settings.
    #[serde(flatten)]
    pub settings: TrainSettings,
    /// The checkpoint folder fine-tuning started from.
    pub source: PathBuf,
    /// DeepNorm's alpha and beta (1 and 1 for the other placements).
    pub alpha: f64,
    /// See `alpha`.
    pub beta: f64,
    /// Number of blocks.
    pub num_layers: usize,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Tokens in the training part and in the held-out part.
    pub train_tokens: usize,
    /// See `train_tokens`.
    pub heldout_tokens: usize,
    /// normscope's version.
    pub version: String,
}

/// How a run starts.
pub enum Start {
    /// A new run in an absent or empty folder; with `force`, one that replaces
    /// the run there once its first checkpoint is complete.
    Fresh(TrainSettings, bool),
    /// From the run's last checkpoint, optionally with a new total of steps.
    Resume(Option<usize>),
}

/// Receives progress; `step` returning false stops the run after a checkpoint.
pub trait Progress {
    /// Called once the model is ready, with the first step to run.
    fn started(&mut self, _info: &RunInfo, _first_step: usize) {}
    /// After every step.
    fn step(&mut self, _r: &StepRecord) -> bool {
        true
    }
    /// After every evaluation.
    fn eval(&mut self, _r: &EvalRecord) {}
}

/// Nothing to report.
impl Progress for () {}

/// The learning rate at 1-based `step`: linear warm-up, then cosine decay.
pub fn learning_rate(s: &TrainSettings, step: usize) -> f64 {
    if step <= s.warmup {
        return s.lr * step as f64 / s.warmup.max(1) as f64;
    }
    let span = s.steps.saturating_sub(s.warmup).max(1) as f64;
    let progress = ((step - s.warmup) as f64 / span).min(1.0);
    let min = s.lr * s.min_lr_ratio;
    min + 0.5 * (s.lr - min) * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Runs (or resumes) the fine-tuning run in folder `run`; returns its run.json.
pub fn finetune(
    run: &Path,
    start: Start,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<RunInfo> {
    let (settings, source, done, mut files) = match start {
        Start::Fresh(s, force) => {
            let files = RunFiles::stage(run, force)?;
            let src = weights::resolve(s.model.as_deref())?;
            (s, src, 0, files)
        }
        Start::Resume(steps) => {
            let files = RunFiles::new(run);
            let mut info = files.read_info()?;
            if let Some(n) = steps {
                info.settings.steps = n;
            }
            let done = files.read_state()?;
            (info.settings, files.checkpoint(), done, files)
        }
    };
    check(&settings)?;
    let opts = LoadOptions {
        training: true,
        ..LoadOptions::inference(DType::F32, device)
    };
    let lm = weights::load_with(Some(&source.to_string_lossy()), &opts, WeightCheck::Cheap)?;
    let text = std::fs::read_to_string(&settings.data).map_err(|e| Error::io(&settings.data, e))?;
    let data = split(
        &crate::generate::encode_plain(&lm, &text)?,
        settings.heldout,
        settings.seq_len,
    )?;
    let mut cfg = lm.model.cfg.clone();
    let mut tensors = model_tensors(&lm.model)?;
    drop(lm);
    let target = Placement::from_name(&settings.variant, cfg.num_layers).map_err(Error::usage)?;
    if cfg.placement.name() != target.name() {
        make_variant(&mut tensors, &mut cfg, target)?;
    }
    let freeze = settings.freeze_embeddings;
    let frozen =
        move |n: &str| freeze && (n == "model.embed_tokens.weight" || n == "lm_head.weight");
    let mut net = Trainable::new(tensors, cfg.clone(), frozen, DType::F32, device)?;
    let params = ParamsAdamW {
        lr: settings.lr,
        weight_decay: settings.weight_decay,
        ..Default::default()
    };
    let mut opt = AdamW::new(&net.params, params)?;
    if done > 0 {
        opt.restore(&files.read_optimizer(device)?, done)?;
    }
    let info = RunInfo {
        settings: settings.clone(),
        source: source.clone(),
        alpha: cfg.placement.residual_alpha().unwrap_or(1.0),
        beta: cfg.placement.beta(),
        num_layers: cfg.num_layers,
        trainable_params: net.params.iter().map(|(_, v)| v.elem_count()).sum(),
        train_tokens: data.train.len(),
        heldout_tokens: data.heldout.len(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    files.open_metrics(&info, done)?;
    progress.started(&info, done + 1);
    let windows = heldout_windows(&data.heldout, settings.seq_len, settings.eval_tokens);
    if done == 0 {
        let r = net.evaluate(0, &windows)?;
        progress.eval(&r);
        files.append(&Record::Eval(r))?;
    }
    for step in done + 1..=settings.steps {
        let started = std::time::Instant::now();
        opt.set_learning_rate(learning_rate(&settings, step));
        let starts = batch_starts(
            settings.seed,
            step,
            settings.batch,
            data.train.len(),
            settings.seq_len,
        );
        let (x, y) = batch(&data.train, &starts, settings.seq_len, device)?;
        let loss = net.loss(&x, &y)?;
        let mut grads = loss.backward()?;
        let record = train_step(
            &net,
            &mut opt,
            &mut grads,
            &settings,
            step,
            loss.to_scalar::<f32>()? as f64,
            started,
        )?;
        files.append(&Record::Step(record.clone()))?;
        let keep_going = progress.step(&record);
        if step % settings.eval_every == 0 || step == settings.steps {
            let r = net.evaluate(step, &windows)?;
            progress.eval(&r);
            files.append(&Record::Eval(r))?;
        }
        if step % settings.save_every == 0 || step == settings.steps || !keep_going {
            files.save_checkpoint(&net.tensors(), &cfg, &source, &opt, step)?;
        }
        if !keep_going {
            break;
        }
    }
    Ok(info)
}

/// Clips, records the gradient figures, and applies the update.
fn train_step(
    net: &Trainable,
    opt: &mut AdamW,
    grads: &mut candle_core::backprop::GradStore,
    s: &TrainSettings,
    step: usize,
    loss: f64,
    started: std::time::Instant,
) -> Result<StepRecord> {
    let n = net.model.cfg.num_layers;
    let (mut total, mut layer_sq) = (0.0, vec![0.0; n]);
    for (name, var) in &net.params {
        let Some(g) = grads.get(var) else { continue };
        let sq = g
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        total += sq;
        if let Some(l) = layer_of(name) {
            layer_sq[l] += sq;
        }
    }
    let grad_norm = total.sqrt();
    let clipped = s.grad_clip > 0.0 && grad_norm > s.grad_clip;
    if clipped {
        for (_, var) in &net.params {
            if let Some(g) = grads.get(var) {
                let g = (g * (s.grad_clip / grad_norm))?;
                grads.insert(var, g);
            }
        }
    }
    let (mut upd, mut w) = (vec![0.0; n], vec![0.0; n]);
    for (name, norms) in opt.step(grads)? {
        if let Some(l) = layer_of(&name) {
            upd[l] += norms.update_sq;
            w[l] += norms.weight_sq;
        }
    }
    Ok(StepRecord {
        step,
        loss,
        lr: learning_rate(s, step),
        grad_norm,
        clipped,
        layer_grad_norm: layer_sq.iter().map(|x| x.sqrt()).collect(),
        layer_update_ratio: upd
            .iter()
            .zip(&w)
            .map(|(u, w)| if *w > 0.0 { (u / w).sqrt() } else { 0.0 })
            .collect(),
        tokens: s.batch * s.seq_len,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mib: crate::bench::memory::peak_rss_mib(),
    })
}

fn check(s: &TrainSettings) -> Result<()> {
    let positive = [
        ("steps", s.steps),
        ("seq_len", s.seq_len),
        ("batch", s.batch),
        ("eval_every", s.eval_every),
        ("eval_tokens", s.eval_tokens),
        ("save_every", s.save_every),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Err(Error::setting(name, "must be positive"));
    }
    if s.seq_len < 2 {
        return Err(Error::setting("seq_len", "must be at least 2"));
    }
    if !(s.lr.is_finite() && s.lr > 0.0) {
        return Err(Error::setting("lr", format!("{} must be positive", s.lr)));
    }
    if !(0.0..=1.0).contains(&s.min_lr_ratio) {
        return Err(Error::setting(
            "min_lr_ratio",
            format!("{} must be within [0, 1]", s.min_lr_ratio),
        ));
    }
    for (name, v) in [("grad_clip", s.grad_clip), ("weight_decay", s.weight_decay)] {
        if v.is_nan() || v < 0.0 {
            return Err(Error::setting(name, format!("{v} must not be negative")));
        }
    }
    Ok(())
}
