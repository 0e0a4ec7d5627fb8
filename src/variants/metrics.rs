//! `RUN/metrics.jsonl`: one JSON object per line, a `step` record after every
//! optimizer step and an `eval` record at every evaluation (step 0 is the
//! model before fine-tuning).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What one optimizer step did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    /// 1-based step.
    pub step: usize,
    /// Mean training cross-entropy of the batch, in nats.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global L2 norm of the gradient, before clipping.
    pub grad_norm: f64,
    /// Whether the gradient was clipped.
    pub clipped: bool,
    /// L2 norm of each block's gradient (all its tensors together).
    pub layer_grad_norm: Vec<f64>,
    /// ||update|| / ||weights|| of each block.
    pub layer_update_ratio: Vec<f64>,
    /// Tokens predicted in this step.
    pub tokens: usize,
    /// Wall time of the step.
    pub seconds: f64,
    /// Peak resident memory of the process so far, in MiB (Linux; 0 elsewhere).
    pub peak_rss_mib: f64,
}

/// A held-out evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalRecord {
    /// Steps taken before it (0: the model as loaded).
    pub step: usize,
    /// Mean held-out cross-entropy, in nats.
    pub heldout_loss: f64,
    /// exp(heldout_loss).
    pub heldout_ppl: f64,
    /// Tokens predicted.
    pub tokens: usize,
    /// Per block: relative contribution ||h_out - h_in|| / ||h_in|| (mean over tokens after position 0).
    pub rel_contrib: Vec<f64>,
    /// Per block: ||attention update|| / ||residual it is added to||.
    pub attn_ratio: Vec<f64>,
    /// Per block: ||MLP update|| / ||residual it is added to||.
    pub mlp_ratio: Vec<f64>,
}

/// One line of metrics.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// After an optimizer step.
    Step(StepRecord),
    /// After an evaluation.
    Eval(EvalRecord),
}

impl Record {
    /// The step it belongs to.
    pub fn step(&self) -> usize {
        match self {
            Record::Step(s) => s.step,
            Record::Eval(e) => e.step,
        }
    }
}

/// Reads metrics.jsonl; a last line cut short by an interrupt is ignored.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(Error::format(path, format!("line {}: {e}", i + 1))),
        }
    }
    Ok(out)
}

/// Appends one record and flushes it.
pub fn append(file: &mut std::fs::File, path: &Path, record: &Record) -> Result<()> {
    let mut line = serde_json::to_string(record).expect("records serialize");
    line.push('\n');
    file.write_all(line.as_bytes())
        .and_then(|_| file.flush())
        .map_err(|e| Error::io(path, e))
}
