//! Hugging Face folders: one `model.safetensors` or shards listed in
//! `model.safetensors.index.json`, memory-mapped.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::source::TensorSource;
use crate::error::{Error, Result};

/// Tensors of a safetensors checkpoint (or any `VarBuilder`), by name.
pub struct VarSource<'a> {
    vb: VarBuilder<'a>,
    /// Which file holds each tensor, for error messages.
    files: HashMap<String, PathBuf>,
    /// Reported for tensors no file holds.
    location: PathBuf,
}

/// The safetensors files of a Hugging Face folder, in a stable order.
pub fn safetensors_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let index = folder.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(&index, format!("not valid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::format(&index, "no `weight_map` object"))?;
        let mut names = BTreeSet::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                Error::format(
                    &index,
                    format!("weight_map entry for `{tensor}` is not a file name"),
                )
            })?;
            if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                return Err(Error::format(
                    &index,
                    format!("shard name `{file}` is not a plain file name"),
                ));
            }
            names.insert(file.to_string());
        }
        let files: Vec<PathBuf> = names.into_iter().map(|n| folder.join(n)).collect();
        if let Some(missing) = files.iter().find(|f| !f.exists()) {
            return Err(Error::format(
                &index,
                format!("lists shard {} which does not exist", missing.display()),
            ));
        }
        return Ok(files);
    }
    let single = folder.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(Error::format(
        folder,
        "no model.safetensors or model.safetensors.index.json in this folder",
    ))
}

impl VarSource<'static> {
    /// Memory-maps the safetensors `files`, converting tensors to `dtype` on load.
    pub fn open(files: &[PathBuf], dtype: DType, device: &Device) -> Result<Self> {
        let mut names = HashMap::new();
        for file in files {
            for name in tensor_names(file)? {
                if let Some(first) = names.insert(name.clone(), file.clone()) {
                    return Err(Error::format(
                        file,
                        format!("tensor `{name}` also appears in {}", first.display()),
                    ));
                }
            }
        }
        // SAFETY: the files are opened read-only; as with every mmap-based loader,
        // they must not be truncated while the model is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device) }
            .map_err(|e| Error::format(&files[0], format!("cannot map safetensors: {e}")))?;
        let location = files[0].clone();
        Ok(Self {
            vb,
            files: names,
            location,
        })
    }
}

impl<'a> VarSource<'a> {
    /// Wraps any `VarBuilder` (for example one backed by a training `VarMap`).
    pub fn from_var_builder(vb: VarBuilder<'a>, location: PathBuf) -> Self {
        Self {
            vb,
            files: HashMap::new(),
            location,
        }
    }

    fn file_of(&self, name: &str) -> &Path {
        self.files.get(name).unwrap_or(&self.location)
    }
}

/// The tensor names in one safetensors file's header.
fn tensor_names(file: &Path) -> Result<Vec<String>> {
    let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    // SAFETY: read-only mapping of a file we just opened.
    let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(file, e))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&mmap)
        .map_err(|e| Error::format(file, format!("not a valid safetensors file: {e}")))?;
    Ok(meta.tensors().into_keys().collect())
}

impl TensorSource for VarSource<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if !self.vb.contains_tensor(name) {
            return Err(self.error(
                name,
                &format!("tensor is missing (expected shape {shape:?})"),
            ));
        }
        self.vb
            .get(shape, name)
            .map_err(|e| self.error(name, &e.to_string()))
    }

    fn contains(&self, name: &str) -> bool {
        self.vb.contains_tensor(name)
    }

    fn error(&self, name: &str, msg: &str) -> Error {
        Error::format(self.file_of(name), format!("tensor `{name}`: {msg}"))
    }
}
