//! Hugging Face folders: one `model.safetensors` or shards listed in
//! `model.safetensors.index.json`, memory-mapped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::validate::safetensors_header::{self, SafetensorsHeader};
use super::validate::shard_index;
use crate::error::{Error, Result};
use crate::model::layout::TensorSpec;
use crate::model::source::{from_hf_stored, TensorSource};

/// Tensors of a safetensors checkpoint (or any `VarBuilder`), by name.
pub struct VarSource<'a> {
    vb: VarBuilder<'a>,
    /// Which file holds each tensor, for error messages.
    files: HashMap<String, PathBuf>,
    /// Each tensor's shape as its header declares it.
    shapes: HashMap<String, Vec<usize>>,
    /// Reported for tensors no file holds.
    location: PathBuf,
}

/// The safetensors files of a Hugging Face folder, in a stable order. With an
/// index, every shard it names must exist and hold exactly the tensors the
/// index assigns to it.
pub fn safetensors_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let index = folder.join("model.safetensors.index.json");
    if index.exists() {
        let bytes = std::fs::read(&index).map_err(|e| Error::io(&index, e))?;
        let map = shard_index::parse(&bytes).map_err(|m| Error::format(&index, m))?;
        let mut shards = Vec::new();
        for name in shard_index::shard_names(&map) {
            let file = folder.join(&name);
            if !file.exists() {
                return Err(Error::format(
                    &index,
                    format!("lists shard {} which does not exist", file.display()),
                ));
            }
            let names = read_header(&file)?.tensors.into_iter().map(|t| t.name);
            shards.push((name, names.collect()));
        }
        shard_index::check_agreement(&map, &shards).map_err(|m| Error::format(&index, m))?;
        return Ok(shards.into_iter().map(|(n, _)| folder.join(n)).collect());
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

/// The validated header of one safetensors file.
pub fn read_header(file: &Path) -> Result<SafetensorsHeader> {
    let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    // SAFETY: read-only mapping of a file we just opened.
    let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(file, e))?;
    safetensors_header::check(&mmap).map_err(|m| Error::format(file, m))
}

impl VarSource<'static> {
    /// Memory-maps the safetensors `files`, converting tensors to `dtype` on load.
    pub fn open(files: &[PathBuf], dtype: DType, device: &Device) -> Result<Self> {
        let mut names = HashMap::new();
        let mut shapes = HashMap::new();
        for file in files {
            for t in read_header(file)?.tensors {
                if let Some(first) = names.insert(t.name.clone(), file.clone()) {
                    return Err(Error::format(
                        file,
                        format!("tensor `{}` also appears in {}", t.name, first.display()),
                    ));
                }
                shapes.insert(t.name, t.shape);
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
            shapes,
            location,
        })
    }
}

impl<'a> VarSource<'a> {
    fn file_of(&self, name: &str) -> &Path {
        self.files.get(name).unwrap_or(&self.location)
    }
}

impl TensorSource for VarSource<'_> {
    fn tensor(&self, spec: &TensorSpec) -> Result<Tensor> {
        let name = spec.hf_name.as_str();
        let shape = spec.stored_shape();
        if !self.vb.contains_tensor(name) {
            return Err(self.error(
                spec,
                &format!("tensor is missing (expected shape {shape:?})"),
            ));
        }
        if let Some(found) = self.shapes.get(name).filter(|f| **f != shape) {
            return Err(self.error(
                spec,
                &format!("has shape {found:?}, expected {shape:?} (from config.json)"),
            ));
        }
        let stored = self
            .vb
            .get(shape, name)
            .map_err(|e| self.error(spec, &e.to_string()))?;
        let part = match spec.fused {
            Some(f) => stored.narrow(0, f.offset, spec.shape[0])?,
            None => stored,
        };
        from_hf_stored(spec, part)
    }

    fn contains(&self, spec: &TensorSpec) -> bool {
        self.vb.contains_tensor(&spec.hf_name)
    }

    fn error(&self, spec: &TensorSpec, msg: &str) -> Error {
        let name = &spec.hf_name;
        Error::format(self.file_of(name), format!("tensor `{name}`: {msg}"))
    }
}
