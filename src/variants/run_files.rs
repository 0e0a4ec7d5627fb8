//! The files of a fine-tuning run folder:
//!
//! ```text
//! RUN/run.json                          every setting (TrainSettings + what it resolved to)
//! RUN/metrics.jsonl                     a step record per step, an eval record per evaluation
//! RUN/checkpoint/                       a Hugging Face folder any command loads, plus
//! RUN/checkpoint/optimizer.safetensors  AdamW's moments (m.NAME, v.NAME)
//! RUN/checkpoint/trainer_state.json     {"step": N}
//! ```
//!
//! A new run is written beside RUN (`.RUN.partial-*`) and moved into place
//! when its first checkpoint is complete; only then does it replace a
//! previous run. An interrupt or a failure before that leaves the previous
//! run, or no folder where there was none, as it was.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::checkpoint;
use super::metrics::{self, Record};
use super::optim::AdamW;
use super::train::RunInfo;
use crate::error::{Error, Result};
use crate::model::Config;
use crate::output::{write_atomic, StagedDir};

/// Paths inside one run folder, and the writing of a run.
pub struct RunFiles {
    root: PathBuf,
    /// metrics.jsonl, open for appending (closed before the staged run moves).
    log: Option<std::fs::File>,
    /// A new run's folder until its first checkpoint moves it to `root`.
    staged: Option<StagedDir>,
}

impl RunFiles {
    /// The existing run folder `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            log: None,
            staged: None,
        }
    }

    /// A new run for the folder `root`, staged beside it until its first
    /// checkpoint; an existing run there is replaced then, and only with `force`.
    pub fn stage(root: &Path, force: bool) -> Result<Self> {
        Ok(Self {
            staged: Some(StagedDir::new(root, force)?),
            ..Self::new(root)
        })
    }

    /// The folder written now: the staged one, or the run folder itself.
    fn dir(&self) -> &Path {
        self.staged.as_ref().map_or(&self.root, |s| s.path())
    }

    /// RUN/run.json.
    pub fn info(&self) -> PathBuf {
        self.dir().join("run.json")
    }

    /// RUN/metrics.jsonl.
    pub fn metrics(&self) -> PathBuf {
        self.dir().join("metrics.jsonl")
    }

    /// RUN/checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir().join("checkpoint")
    }

    fn state(&self) -> PathBuf {
        self.checkpoint().join("trainer_state.json")
    }

    /// The recorded settings.
    pub fn read_info(&self) -> Result<RunInfo> {
        let path = self.info();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("not a run.json: {e}")))
    }

    /// Steps the last checkpoint had taken.
    pub fn read_state(&self) -> Result<usize> {
        let path = self.state();
        if !path.exists() {
            return Err(Error::usage(format!(
                "{} has no checkpoint to resume from (start a new run instead of resuming)",
                self.root.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))?;
        v["step"]
            .as_u64()
            .map(|s| s as usize)
            .ok_or_else(|| Error::format(&path, "no `step`"))
    }

    /// The optimizer moments of the last checkpoint.
    pub fn read_optimizer(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let path = self.checkpoint().join("optimizer.safetensors");
        candle_core::safetensors::load(&path, device)
            .map_err(|e| Error::format(&path, e.to_string()))
    }

    /// Writes run.json and starts metrics.jsonl, keeping only the records up
    /// to step `done` (a resumed run redoes the steps after it).
    pub fn open_metrics(&mut self, info: &RunInfo, done: usize) -> Result<()> {
        let dir = self.dir().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let json = serde_json::to_string_pretty(info).expect("run info serializes");
        write_atomic(&self.info(), json.as_bytes(), true)?;
        let path = self.metrics();
        let kept = if done > 0 && path.exists() {
            metrics::read(&path)?
                .into_iter()
                .filter(|r| r.step() <= done)
                .collect()
        } else {
            Vec::<Record>::new()
        };
        let text: String = kept
            .iter()
            .map(|r| serde_json::to_string(r).expect("records serialize") + "\n")
            .collect();
        self.log = None;
        write_atomic(&path, text.as_bytes(), true)
    }

    /// Appends one record to metrics.jsonl and flushes it.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let path = self.metrics();
        let log = match &mut self.log {
            Some(log) => log,
            None => self.log.insert(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::io(&path, e))?,
            ),
        };
        metrics::append(log, &path, record)
    }

    /// Replaces RUN/checkpoint atomically with the weights, config, tokenizer
    /// files (from `source`), optimizer state and step. The first checkpoint
    /// of a new run then moves the whole run into place.
    pub fn save_checkpoint(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        cfg: &Config,
        source: &Path,
        opt: &AdamW,
        step: usize,
    ) -> Result<PathBuf> {
        checkpoint::save(
            &self.checkpoint(),
            true,
            tensors,
            cfg,
            DType::F32,
            source,
            |dir| {
                let opt_path = dir.join("optimizer.safetensors");
                crate::output::save_safetensors(&opt.state(), &opt_path)?;
                let state = dir.join("trainer_state.json");
                let json = serde_json::json!({ "step": step, "optimizer_steps": opt.steps() });
                std::fs::write(&state, json.to_string()).map_err(|e| Error::io(&state, e))
            },
        )?;
        if let Some(staged) = self.staged.take() {
            self.log = None;
            staged.commit()?;
        }
        Ok(self.checkpoint())
    }
}
