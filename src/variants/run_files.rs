//! The files of a fine-tuning run folder:
//!
//! ```text
//! RUN/run.json                          every setting (TrainSettings + what it resolved to)
//! RUN/metrics.jsonl                     a step record per step, an eval record per evaluation
//! RUN/checkpoint/                       a Hugging Face folder any command loads, plus
//! RUN/checkpoint/optimizer.safetensors  AdamW's moments (m.NAME, v.NAME)
//! RUN/checkpoint/trainer_state.json     {"step": N}
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::checkpoint;
use super::metrics::{self, Record};
use super::optim::AdamW;
use super::train::RunInfo;
use crate::error::{Error, Result};
use crate::model::Config;
use crate::output::write_atomic;

/// Paths inside one run folder.
pub struct RunFiles {
    root: PathBuf,
}

impl RunFiles {
    /// The run folder `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// RUN/run.json.
    pub fn info(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// RUN/metrics.jsonl.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// RUN/checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
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

    /// Writes run.json and opens metrics.jsonl for appending, keeping only the
    /// records up to step `done` (a resumed run redoes the steps after it).
    pub fn open_metrics(&self, info: &RunInfo, done: usize) -> Result<std::fs::File> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
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
        write_atomic(&path, text.as_bytes(), true)?;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))
    }

    /// Replaces RUN/checkpoint atomically with the weights, config, tokenizer
    /// files (from `source`), optimizer state and step.
    pub fn save_checkpoint(
        &self,
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
                candle_core::safetensors::save(&opt.state(), &opt_path)?;
                let state = dir.join("trainer_state.json");
                let json = serde_json::json!({ "step": step, "optimizer_steps": opt.steps() });
                std::fs::write(&state, json.to_string()).map_err(|e| Error::io(&state, e))
            },
        )
    }
}
