//! `normscope quantize`: a GGUF file or a Hugging Face folder -> a GGUF of one
//! llama.cpp file type, made the way llama.cpp's `llama-quantize` makes it
//! (same per-tensor types, same blocks, same metadata), so llama.cpp loads it
//! and tests and benchmarks get every format without llama.cpp.
//!
//! One job per file: [`target`] names the file types, [`recipe`] picks each
//! tensor's type, [`crate::model::quantize::blocks`] encodes the values (the
//! same encoder in-situ quantization uses), [`input`] reads what is quantized, [`hf_meta`] describes a folder in GGUF metadata,
//! [`gguf_out`] writes the file. The output is staged beside its destination
//! and renamed into place when complete.

pub mod gguf_out;
pub mod hf_meta;
pub mod input;
pub mod recipe;
mod spm_model;
pub mod target;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::quantize::blocks;
use crate::output::StagedFile;
use gguf_out::{Kv, TensorOut};
use input::Input;
pub use target::Target;

/// llama.cpp's `GGML_QNT_VERSION`, written as `general.quantization_version`.
pub const QUANTIZATION_VERSION: u32 = 2;

/// What one `quantize` run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The input file or folder.
    pub input: PathBuf,
    /// The GGUF written.
    pub output: PathBuf,
    /// The `--type` asked for.
    #[serde(rename = "type")]
    pub target: String,
    /// llama.cpp's file type number written as `general.file_type`.
    pub file_type: u32,
    /// How many tensors were written in each ggml type (`q4_K`, `f32`, ...).
    pub tensors: BTreeMap<String, usize>,
    /// Tensors copied unchanged (already stored in their target type).
    pub copied: usize,
    /// Tensors whose row length made them fall back to another type.
    pub fallbacks: usize,
    /// Bytes of the input's tensor data.
    pub input_bytes: u64,
    /// Bytes of the output file.
    pub output_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Progress of a run: tensors done out of the total, and the current one.
pub type Progress<'a> = &'a dyn Fn(usize, usize, &str);

/// Quantizes `input` into the GGUF `output` (replacing an existing file only
/// with `force`); `progress` is told before each tensor.
pub fn quantize(
    input: &Path,
    output: &Path,
    target: Target,
    force: bool,
    progress: Progress,
) -> Result<Summary> {
    let started = std::time::Instant::now();
    check_paths(input, output)?;
    let inp = Input::open(input)?;
    let plan =
        recipe::plan(&inp.tensors, &inp.info, target).map_err(|m| Error::format(input, m))?;

    let mut kvs = inp.kvs.clone();
    gguf_out::set(
        &mut kvs,
        Kv::u32("general.quantization_version", QUANTIZATION_VERSION),
    );
    gguf_out::set(&mut kvs, Kv::u32("general.file_type", target.ftype()));
    let outs: Vec<TensorOut> = inp
        .tensors
        .iter()
        .zip(&plan.types)
        .map(|(t, &dtype)| TensorOut {
            name: t.name.clone(),
            ne: t.ne.clone(),
            dtype,
        })
        .collect();

    let mut staged = StagedFile::new(output, force)?;
    let io = |e: std::io::Error| Error::io(output, e);
    let mut w = BufWriter::with_capacity(1 << 20, staged.file());
    let sizes = gguf_out::write_header(&mut w, &kvs, &outs, inp.alignment).map_err(io)?;
    let mut tensors = BTreeMap::new();
    let mut copied = 0;
    for (i, t) in outs.iter().enumerate() {
        progress(i, outs.len(), &t.name);
        // Every tensor's values are read, so NaN or Inf fails the run even
        // in a tensor that is copied as stored.
        let values = inp.values(i)?;
        let data = match inp.stored(i, t.dtype) {
            Some(bytes) => {
                copied += 1;
                std::borrow::Cow::Borrowed(bytes)
            }
            None => {
                let q = blocks::quantize(t.dtype, &values, t.ne[0])
                    .map_err(|m| Error::format(input, format!("tensor `{}`: {m}", t.name)))?;
                std::borrow::Cow::Owned(q)
            }
        };
        drop(values);
        if data.len() != sizes[i] {
            return Err(Error::format(
                input,
                format!(
                    "tensor `{}`: {} bytes of {:?} where {} were expected",
                    t.name,
                    data.len(),
                    t.dtype,
                    sizes[i]
                ),
            ));
        }
        gguf_out::write_data(&mut w, &data, inp.alignment).map_err(io)?;
        *tensors
            .entry(target::ggml_name(t.dtype).to_string())
            .or_insert(0) += 1;
    }
    progress(outs.len(), outs.len(), "");
    w.flush().map_err(io)?;
    drop(w);
    staged.file().sync_all().map_err(io)?;
    let output_bytes = staged.file().metadata().map_err(io)?.len();
    let written = staged.commit()?;
    Ok(Summary {
        input: input.to_path_buf(),
        output: written,
        target: target.name().to_string(),
        file_type: target.ftype(),
        tensors,
        copied,
        fallbacks: plan.fallbacks,
        input_bytes: inp.bytes,
        output_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuses an output that is a folder, lacks the `.gguf` extension, or is the input itself.
fn check_paths(input: &Path, output: &Path) -> Result<()> {
    if output.is_dir() {
        return Err(Error::usage(format!(
            "--out {} is a folder; it takes the path of the .gguf file to write",
            output.display()
        )));
    }
    if !output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        return Err(Error::usage(format!(
            "--out {} must end in .gguf",
            output.display()
        )));
    }
    if !input.exists() {
        return Err(Error::format(input, "no such file or folder"));
    }
    let same = match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(Error::usage(format!(
            "the input and --out are the same file ({}); write to another path",
            output.display()
        )));
    }
    Ok(())
}
