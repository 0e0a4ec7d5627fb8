//! `normscope compare RUN...`: each run's settings, loss curve, held-out
//! loss before and after, and per-block relative contribution before (step 0)
//! and after (last evaluation), read from its run.json and metrics.jsonl.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::metrics::{self, Record};
use super::RunFiles;
use crate::error::{Error, Result};

/// One run, summarized.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run folder.
    pub run: PathBuf,
    /// A short label: the folder name.
    pub label: String,
    /// Norm placement.
    pub variant: String,
    /// DeepNorm's alpha (1 otherwise).
    pub alpha: f64,
    /// DeepNorm's beta (1 otherwise).
    pub beta: f64,
    /// Steps recorded.
    pub steps: usize,
    /// Tokens per step.
    pub tokens_per_step: usize,
    /// Mean training loss of the first and last tenth of the steps (at least one step each).
    pub train_loss_first: f64,
    /// See `train_loss_first`.
    pub train_loss_last: f64,
    /// Held-out loss at step 0 and at the last evaluation.
    pub heldout_loss_before: f64,
    /// See `heldout_loss_before`.
    pub heldout_loss_after: f64,
    /// exp of the held-out losses.
    pub heldout_ppl_before: f64,
    /// See `heldout_ppl_before`.
    pub heldout_ppl_after: f64,
    /// Mean wall time per step.
    pub seconds_per_step: f64,
    /// Peak resident memory during the run, in MiB.
    pub peak_rss_mib: f64,
    /// Per-block relative contribution at step 0 and at the last evaluation.
    pub rel_contrib_before: Vec<f64>,
    /// See `rel_contrib_before`.
    pub rel_contrib_after: Vec<f64>,
    /// (step, training loss) for every step.
    pub train_curve: Vec<(usize, f64)>,
    /// (step, held-out loss) for every evaluation.
    pub heldout_curve: Vec<(usize, f64)>,
}

/// Reads and summarizes the run folder `run`.
pub fn summarize(run: &Path) -> Result<RunSummary> {
    let files = RunFiles::new(run);
    let info = files.read_info()?;
    let records = metrics::read(&files.metrics())?;
    let (mut steps, mut evals) = (Vec::new(), Vec::new());
    for r in records {
        match r {
            Record::Step(s) => steps.push(s),
            Record::Eval(e) => evals.push(e),
        }
    }
    let (Some(first), Some(last)) = (evals.first(), evals.last()) else {
        return Err(Error::format(files.metrics(), "no evaluation recorded yet"));
    };
    if steps.is_empty() {
        return Err(Error::format(
            files.metrics(),
            "no training step recorded yet",
        ));
    }
    let tenth = (steps.len() / 10).max(1);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let losses: Vec<f64> = steps.iter().map(|s| s.loss).collect();
    Ok(RunSummary {
        run: run.to_path_buf(),
        label: run.file_name().map_or_else(
            || run.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        variant: info.settings.variant.clone(),
        alpha: info.alpha,
        beta: info.beta,
        steps: steps.len(),
        tokens_per_step: info.settings.batch * info.settings.seq_len,
        train_loss_first: mean(&losses[..tenth]),
        train_loss_last: mean(&losses[losses.len() - tenth..]),
        heldout_loss_before: first.heldout_loss,
        heldout_loss_after: last.heldout_loss,
        heldout_ppl_before: first.heldout_ppl,
        heldout_ppl_after: last.heldout_ppl,
        seconds_per_step: mean(&steps.iter().map(|s| s.seconds).collect::<Vec<_>>()),
        peak_rss_mib: steps.iter().map(|s| s.peak_rss_mib).fold(0.0, f64::max),
        rel_contrib_before: first.rel_contrib.clone(),
        rel_contrib_after: last.rel_contrib.clone(),
        train_curve: steps.iter().map(|s| (s.step, s.loss)).collect(),
        heldout_curve: evals.iter().map(|e| (e.step, e.heldout_loss)).collect(),
    })
}

/// A plain-text table of the runs, one row each.
pub fn render_table(runs: &[RunSummary]) -> String {
    let mut out = format!(
        "{:<16} {:<9} {:>6} {:>11} {:>11} {:>12} {:>12} {:>9} {:>9}\n",
        "run",
        "variant",
        "steps",
        "train first",
        "train last",
        "held-out 0",
        "held-out end",
        "s/step",
        "peak MiB"
    );
    for r in runs {
        out += &format!(
            "{:<16} {:<9} {:>6} {:>11.4} {:>11.4} {:>12.4} {:>12.4} {:>9.2} {:>9.0}\n",
            r.label,
            r.variant,
            r.steps,
            r.train_loss_first,
            r.train_loss_last,
            r.heldout_loss_before,
            r.heldout_loss_after,
            r.seconds_per_step,
            r.peak_rss_mib
        );
    }
    out
}
