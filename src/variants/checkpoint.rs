//! Checkpoints on disk: a complete Hugging Face folder (weights, config.json
//! with the norm placement, the source's tokenizer and generation files) that
//! every command loads, written under a temporary name and renamed into place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::model::Config;
use crate::output::StagedDir;
use crate::weights::convert::dtype_name;

/// Files copied from the source folder when they exist.
pub const COPIED_FILES: [&str; 7] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
];

/// Writes `model.safetensors` (in `dtype`), `config.json` and the files of
/// [`COPIED_FILES`] found in `source` into the folder `dir`.
pub fn write_folder(
    dir: &Path,
    tensors: &HashMap<String, Tensor>,
    cfg: &Config,
    dtype: DType,
    source: &Path,
) -> Result<()> {
    if !source.is_dir() {
        return Err(Error::format(
            source,
            "variants and fine-tuning need a Hugging Face folder (convert a GGUF first with `normscope convert`)",
        ));
    }
    let cast = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    crate::output::save_safetensors(&cast, &dir.join("model.safetensors"))?;
    let config =
        serde_json::to_string_pretty(&cfg.to_hf(dtype_name(dtype)?)).expect("configs serialize");
    let path = dir.join("config.json");
    std::fs::write(&path, config).map_err(|e| Error::io(&path, e))?;
    for name in COPIED_FILES {
        let from = source.join(name);
        if from.is_file() {
            std::fs::copy(&from, dir.join(name)).map_err(|e| Error::io(&from, e))?;
        }
    }
    Ok(())
}

/// Writes the folder `dest` atomically: [`write_folder`], then `extra` adds
/// its own files, then the folder is renamed into place (replacing `dest`
/// only with `force`).
pub fn save(
    dest: &Path,
    force: bool,
    tensors: &HashMap<String, Tensor>,
    cfg: &Config,
    dtype: DType,
    source: &Path,
    extra: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let staged = StagedDir::new(dest, force)?;
    write_folder(staged.path(), tensors, cfg, dtype, source)?;
    extra(staged.path())?;
    staged.commit()
}

/// Writes `model` (a loaded Pre-Norm checkpoint from the folder `source`) as
/// the `target` variant into the folder `out`, weights in `dtype`.
pub fn write_variant(
    model: &crate::model::Model,
    source: &Path,
    target: crate::model::Placement,
    out: &Path,
    dtype: DType,
    force: bool,
) -> Result<PathBuf> {
    crate::output::check_writable(out, force)?;
    let mut tensors = super::model_tensors(model)?;
    let mut cfg = model.cfg.clone();
    super::make_variant(&mut tensors, &mut cfg, target)?;
    save(out, force, &tensors, &cfg, dtype, source, |_| Ok(()))
}
