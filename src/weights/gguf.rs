//! GGUF files: the validated, memory-mapped file, and its tensors served to
//! the model on the quantized path by their llama.cpp names (see
//! [`crate::model::layout`]); metadata -> config is in [`super::gguf_config`].

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};

use super::validate::gguf_header::{self, GgufLayout};
use super::validate::gguf_model;
use crate::error::{Error, Result};
use crate::model::embedding::Embedding;
use crate::model::layout::TensorSpec;
use crate::model::linear::Linear;
use crate::model::source::TensorSource;

/// A parsed GGUF file, memory-mapped.
pub struct GgufFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Header: metadata and tensor table.
    pub content: Content,
    /// The header as our own validator walked it (tensor byte ranges included).
    pub layout: GgufLayout,
    mmap: memmap2::Mmap,
}

impl GgufFile {
    /// Maps `path`, validates its header (as a model normscope runs) and parses it.
    pub fn open(path: &Path) -> Result<Self> {
        let file = Self::open_any(path)?;
        gguf_model::check(&file.layout).map_err(|m| Error::format(path, m))?;
        Ok(file)
    }

    /// Maps `path`, validates its header as a GGUF of any architecture (what
    /// every reader needs: sizes, offsets, types) and parses it.
    pub fn open_any(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only mapping; the file must not be truncated while in use.
        let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
        let layout = gguf_header::check(&mmap).map_err(|m| Error::format(path, m))?;
        let content = Content::read(&mut Cursor::new(&mmap[..]))
            .map_err(|e| Error::format(path, format!("not a valid GGUF file: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            layout,
            mmap,
        })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
    }

    /// Reads tensor `gguf_name` as stored (quantized or not).
    pub fn qtensor(&self, gguf_name: &str) -> Result<QTensor> {
        self.content
            .tensor(&mut Cursor::new(&self.mmap[..]), gguf_name, &Device::Cpu)
            .map_err(|e| Error::format(&self.path, format!("tensor `{gguf_name}`: {e}")))
    }
}

/// GGUF tensors served on the quantized path: linear maps stay quantized,
/// norms and the embedding are dequantized to the compute dtype.
pub struct GgufSource<'a> {
    file: &'a GgufFile,
    device: Device,
    dtype: DType,
}

impl<'a> GgufSource<'a> {
    /// Serves `file`'s tensors on `device`, dense ones in `dtype`.
    pub fn new(file: &'a GgufFile, dtype: DType, device: &Device) -> Self {
        Self {
            file,
            device: device.clone(),
            dtype,
        }
    }

    /// The tensor `spec` as stored, its shape checked (a fused part: its rows).
    fn checked(&self, spec: &TensorSpec) -> Result<QTensor> {
        let shape = spec.stored_shape();
        if !self.contains(spec) {
            return Err(self.error(
                spec,
                &format!("tensor is missing (expected shape {shape:?})"),
            ));
        }
        let q = self.file.qtensor(&spec.gguf_name)?;
        if q.shape().dims() != shape.as_slice() {
            return Err(self.error(
                spec,
                &format!("has shape {:?}, expected {shape:?}", q.shape().dims()),
            ));
        }
        match spec.fused {
            Some(f) => slice_rows(&q, f.offset, spec.shape[0]),
            None => Ok(q),
        }
    }

    fn quantized_linear(&self, q: QTensor) -> Result<Linear> {
        if self.device.is_cpu() {
            // Kept as stored, F16 and F32 too (candle's `from_arc` would widen
            // those to f32 tensors): `Model::load` moves every type onto our
            // kernels, which read these bytes as they are.
            return Ok(Linear::Quantized(QMatMul::QTensor(Arc::new(q))));
        }
        let q = move_qtensor(q, &self.device)?;
        Ok(Linear::Quantized(QMatMul::from_arc(Arc::new(q))?))
    }
}

/// Rows `offset..offset + rows` of a 2-D tensor in any ggml type (each row
/// is whole blocks, so rows are contiguous byte ranges).
fn slice_rows(q: &QTensor, offset: usize, rows: usize) -> Result<QTensor> {
    let (total, cols) = q.shape().dims2()?;
    let data = q.data()?;
    let row_bytes = data.len() / total.max(1);
    let bytes = data[offset * row_bytes..(offset + rows) * row_bytes].to_vec();
    let storage =
        candle_core::quantized::QStorage::from_data(bytes.into(), &Device::Cpu, q.dtype())?;
    Ok(QTensor::new(storage, (rows, cols))?)
}

fn move_qtensor(q: QTensor, device: &Device) -> Result<QTensor> {
    let data = q.data()?.into_owned();
    let storage = candle_core::quantized::QStorage::from_data(data.into(), device, q.dtype())?;
    Ok(QTensor::new(storage, q.shape().clone())?)
}

impl TensorSource for GgufSource<'_> {
    fn tensor(&self, spec: &TensorSpec) -> Result<Tensor> {
        let q = self.checked(spec)?;
        Ok(q.dequantize(&Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?)
    }

    fn contains(&self, spec: &TensorSpec) -> bool {
        self.file.content.tensor_infos.contains_key(&spec.gguf_name)
    }

    fn error(&self, spec: &TensorSpec, msg: &str) -> Error {
        Error::format(
            &self.file.path,
            format!("tensor `{}`: {msg}", spec.gguf_name),
        )
    }

    fn linear(&self, spec: &TensorSpec) -> Result<Linear> {
        let q = self.checked(spec)?;
        self.quantized_linear(q)
    }

    /// On the CPU the embedding stays as stored, F16 and F32 included (rows
    /// are dequantized per lookup, and a tied head shares the bytes);
    /// elsewhere it is dequantized once.
    fn embedding(&self, spec: &TensorSpec) -> Result<Embedding> {
        let q = self.checked(spec)?;
        if self.device.is_cpu() {
            return Ok(Embedding::Rows(self.quantized_linear(q)?));
        }
        Ok(Embedding::Dense(
            q.dequantize(&Device::Cpu)?
                .to_dtype(self.dtype)?
                .to_device(&self.device)?,
        ))
    }

    fn tied_head(&self, embed: &Embedding, embed_spec: &TensorSpec) -> Result<Linear> {
        if let Embedding::Rows(l) = embed {
            return Ok(l.clone());
        }
        self.quantized_linear(self.checked(embed_spec)?)
    }
}
