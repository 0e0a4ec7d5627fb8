//! A bias-free linear map `y = x W^T`: dense (trainable), quantized through
//! candle, or served by normscope's own CPU kernels (see [`crate::kernels`]).

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Storage, Tensor};

use crate::error::{Error, Result};
use crate::kernels;

/// A weight matrix of shape `(out, in)`.
#[derive(Debug, Clone)]
pub enum Linear {
    /// Dense weights in the model dtype (trainable when they are `Var`s).
    Dense(candle_nn::Linear),
    /// Quantized weights through candle's `QMatMul` (any ggml type, any device).
    Quantized(QMatMul),
    /// Weights served by our CPU kernels (inference only).
    Cpu(CpuWeight),
}

/// Weights packed for [`crate::kernels`] (shared by a tied embedding and head).
#[derive(Debug, Clone)]
pub struct CpuWeight {
    matrix: Arc<kernels::PackedMatrix>,
}

/// The kernels' format for a ggml type, when they have one.
fn kernel_format(dtype: GgmlDType) -> Option<kernels::WeightFormat> {
    use kernels::WeightFormat as W;
    Some(match dtype {
        GgmlDType::F32 => W::F32,
        GgmlDType::F16 => W::F16,
        GgmlDType::Q4_0 => W::Q4_0,
        GgmlDType::Q4_1 => W::Q4_1,
        GgmlDType::Q5_0 => W::Q5_0,
        GgmlDType::Q5_1 => W::Q5_1,
        GgmlDType::Q8_0 => W::Q8_0,
        GgmlDType::Q4K => W::Q4_K,
        GgmlDType::Q5K => W::Q5_K,
        GgmlDType::Q6K => W::Q6_K,
        _ => return None,
    })
}

impl Linear {
    /// A dense map from an `(out, in)` weight.
    pub fn dense(weight: Tensor) -> Self {
        Linear::Dense(candle_nn::Linear::new(weight, None))
    }

    /// Applies the map to `(.., in)` and returns `(.., out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Linear::Dense(l) => l.forward(x)?,
            Linear::Quantized(q) => q.forward(x)?,
            Linear::Cpu(w) => w.forward(x)?,
        })
    }

    /// The dense weight, when there is one (a model loaded for training
    /// keeps every weight dense).
    pub fn dense_weight(&self) -> Option<&Tensor> {
        match self {
            Linear::Dense(l) => Some(l.weight()),
            _ => None,
        }
    }

    /// The storage format, as ggml names it: `F32`, `Q8_0`, `Q4_K`, ...
    pub fn format_name(&self) -> String {
        let dtype = |d: DType| format!("{d:?}").to_uppercase();
        match self {
            Linear::Dense(l) => dtype(l.weight().dtype()),
            Linear::Quantized(QMatMul::QTensor(q)) => match kernel_format(q.dtype()) {
                Some(f) => f.name().to_string(),
                None => format!("{:?}", q.dtype()),
            },
            Linear::Quantized(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => dtype(t.dtype()),
            Linear::Cpu(w) => w.matrix.format().name().to_string(),
        }
    }

    /// True when the map runs on our kernels in a quantized format, whose
    /// activations are quantized as ggml's (then the model follows
    /// llama.cpp's CPU numerics: see [`kernels::gelu_tanh_f16`] and
    /// [`kernels::attend_f16`]).
    pub fn quantizes_activations(&self) -> bool {
        matches!(self, Linear::Cpu(w) if w.matrix.format().block_values() > 1)
    }

    /// `(out, in)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        Ok(match self {
            Linear::Dense(l) => l.weight().dims2()?,
            Linear::Quantized(QMatMul::QTensor(q)) => q.shape().dims2()?,
            Linear::Quantized(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dims2()?,
            Linear::Cpu(w) => (w.matrix.rows(), w.matrix.cols()),
        })
    }

    /// Rows `ids` `(n,)` of the weight matrix as `(n, in)`: the dense rows, or
    /// quantized rows dequantized to f32 one by one (an embedding lookup).
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Dense(l) => Ok(l.weight().index_select(ids, 0)?),
            Linear::Quantized(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => {
                Ok(t.index_select(ids, 0)?)
            }
            Linear::Quantized(QMatMul::QTensor(q)) => {
                let (rows, cols) = q.shape().dims2()?;
                quantized_rows(&q.data()?, q.dtype(), (rows, cols), ids)
            }
            Linear::Cpu(w) => w.rows(ids),
        }
    }

    /// True when `other` holds the very same weight storage (a tied head).
    pub fn shares_weight(&self, other: &Linear) -> bool {
        match (self, other) {
            (Linear::Dense(a), Linear::Dense(b)) => a.weight().id() == b.weight().id(),
            (Linear::Quantized(QMatMul::QTensor(a)), Linear::Quantized(QMatMul::QTensor(b))) => {
                Arc::ptr_eq(a, b)
            }
            (Linear::Cpu(a), Linear::Cpu(b)) => Arc::ptr_eq(&a.matrix, &b.matrix),
            _ => false,
        }
    }

    /// The same map on our CPU kernels where one fits (f32 dense, or any
    /// ggml type the kernels know, on the CPU); otherwise unchanged.
    pub fn into_cpu_kernels(self) -> Result<Self> {
        Ok(match self {
            Linear::Dense(l)
                if l.weight().device().is_cpu() && l.weight().dtype() == DType::F32 =>
            {
                let (rows, cols) = l.weight().dims2()?;
                let w = l.weight().flatten_all()?.to_vec1::<f32>()?;
                let matrix = kernels::PackedMatrix::from_f32(rows, cols, w)?;
                Linear::Cpu(CpuWeight {
                    matrix: Arc::new(matrix),
                })
            }
            Linear::Quantized(QMatMul::QTensor(q)) if q.device().is_cpu() => {
                match kernel_format(q.dtype()) {
                    Some(format) => {
                        let (rows, cols) = q.shape().dims2()?;
                        let matrix =
                            kernels::PackedMatrix::from_ggml(format, rows, cols, &q.data()?)?;
                        Linear::Cpu(CpuWeight {
                            matrix: Arc::new(matrix),
                        })
                    }
                    None => Linear::Quantized(QMatMul::QTensor(q)),
                }
            }
            other => other,
        })
    }

    /// Bytes of weight data read per use (for bandwidth figures).
    pub fn weight_bytes(&self) -> usize {
        match self {
            Linear::Dense(l) => l.weight().elem_count() * l.weight().dtype().size_in_bytes(),
            Linear::Quantized(QMatMul::QTensor(q)) => q.storage_size_in_bytes(),
            Linear::Quantized(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => {
                t.elem_count() * t.dtype().size_in_bytes()
            }
            Linear::Cpu(w) => w.matrix.storage_bytes(),
        }
    }
}

impl CpuWeight {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let cols = *dims.last().unwrap_or(&0);
        if cols != self.matrix.cols() {
            return Err(Error::internal(format!(
                "linear map expects {} inputs, got shape {dims:?}",
                self.matrix.cols()
            )));
        }
        let m = x.elem_count() / cols.max(1);
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let mut out = vec![0f32; m * self.matrix.rows()];
        with_f32_slice(&x, |xs| Ok(self.matrix.matmul(xs, m, &mut out)?))?;
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("x has at least one dimension") = self.matrix.rows();
        Ok(Tensor::from_vec(out, shape, x.device())?)
    }

    /// Rows `ids` `(n,)` dequantized as `(n, in)` (an embedding lookup).
    fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        let ids = ids.to_device(&Device::Cpu)?.to_vec1::<u32>()?;
        let (rows, cols) = (self.matrix.rows(), self.matrix.cols());
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= rows) {
            return Err(Error::usage(format!(
                "token id {id} is outside the vocabulary of {rows}"
            )));
        }
        let mut out = vec![0f32; ids.len() * cols];
        self.matrix.dequantize_rows(&ids, &mut out)?;
        Ok(Tensor::from_vec(out, (ids.len(), cols), &Device::Cpu)?)
    }
}

/// Rows `ids` of a `(rows, cols)` ggml matrix stored as `bytes`, each
/// dequantized by candle, as an f32 `(n, cols)` CPU tensor.
fn quantized_rows(
    bytes: &[u8],
    dtype: GgmlDType,
    (rows, cols): (usize, usize),
    ids: &Tensor,
) -> Result<Tensor> {
    let row_bytes = bytes.len() / rows.max(1);
    let ids = ids.to_device(&Device::Cpu)?.to_vec1::<u32>()?;
    let parts = ids
        .iter()
        .map(|&id| {
            let id = id as usize;
            if id >= rows {
                return Err(Error::usage(format!(
                    "token id {id} is outside the vocabulary of {rows}"
                )));
            }
            let row = &bytes[id * row_bytes..(id + 1) * row_bytes];
            let storage = QStorage::from_data(Cow::Borrowed(row), &Device::Cpu, dtype)?;
            Ok(QTensor::new(storage, (1, cols))?.dequantize(&Device::Cpu)?)
        })
        .collect::<Result<Vec<_>>>()?;
    if parts.is_empty() {
        return Ok(Tensor::zeros((0, cols), DType::F32, &Device::Cpu)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Runs `f` on the f32 elements of a contiguous CPU tensor, without copying.
fn with_f32_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(Error::internal(
            "CPU kernels were given a tensor on another device",
        ));
    };
    let all = cpu.as_slice::<f32>()?;
    let start = layout.start_offset();
    f(&all[start..start + t.elem_count()])
}
