//! A bias-free linear map `y = x W^T`: dense (trainable), quantized through
//! candle, or served by normscope's own CPU kernels (see [`crate::kernels`]).

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Storage, Tensor};

use crate::error::{Error, Result};
use crate::kernels;

/// At most this many activation rows go through the f32 GEMV kernel; larger
/// products (prefill) use candle's GEMM, which tiles better for them.
const F32_KERNEL_MAX_ROWS: usize = 4;

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

/// Weights laid out for [`crate::kernels`].
#[derive(Debug, Clone)]
pub struct CpuWeight {
    rows: usize,
    cols: usize,
    data: CpuData,
}

#[derive(Debug, Clone)]
enum CpuData {
    /// Raw ggml Q4_1 blocks.
    Q4_1(Arc<Vec<u8>>),
    /// Raw ggml Q8_0 blocks.
    Q8_0(Arc<Vec<u8>>),
    /// Dense f32 `(rows, cols)` on the CPU.
    F32(Tensor),
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

    /// The dense weight, when there is one.
    pub fn dense_weight(&self) -> Option<&Tensor> {
        match self {
            Linear::Dense(l) => Some(l.weight()),
            Linear::Cpu(CpuWeight {
                data: CpuData::F32(w),
                ..
            }) => Some(w),
            _ => None,
        }
    }

    /// `(out, in)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        Ok(match self {
            Linear::Dense(l) => l.weight().dims2()?,
            Linear::Quantized(QMatMul::QTensor(q)) => q.shape().dims2()?,
            Linear::Quantized(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dims2()?,
            Linear::Cpu(w) => (w.rows, w.cols),
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
            Linear::Cpu(w) => match &w.data {
                CpuData::F32(t) => Ok(t.index_select(ids, 0)?),
                CpuData::Q4_1(b) => quantized_rows(b, GgmlDType::Q4_1, (w.rows, w.cols), ids),
                CpuData::Q8_0(b) => quantized_rows(b, GgmlDType::Q8_0, (w.rows, w.cols), ids),
            },
        }
    }

    /// True when `other` holds the very same weight storage (a tied head).
    pub fn shares_weight(&self, other: &Linear) -> bool {
        match (self, other) {
            (Linear::Dense(a), Linear::Dense(b)) => a.weight().id() == b.weight().id(),
            (Linear::Quantized(QMatMul::QTensor(a)), Linear::Quantized(QMatMul::QTensor(b))) => {
                Arc::ptr_eq(a, b)
            }
            (Linear::Cpu(a), Linear::Cpu(b)) => match (&a.data, &b.data) {
                (CpuData::Q4_1(x), CpuData::Q4_1(y)) | (CpuData::Q8_0(x), CpuData::Q8_0(y)) => {
                    Arc::ptr_eq(x, y)
                }
                (CpuData::F32(x), CpuData::F32(y)) => x.id() == y.id(),
                _ => false,
            },
            _ => false,
        }
    }

    /// The same map on our CPU kernels where one fits (f32 dense, Q4_1, Q8_0
    /// on the CPU); otherwise unchanged.
    pub fn into_cpu_kernels(self) -> Result<Self> {
        Ok(match self {
            Linear::Dense(l)
                if l.weight().device().is_cpu() && l.weight().dtype() == DType::F32 =>
            {
                let (rows, cols) = l.weight().dims2()?;
                Linear::Cpu(CpuWeight {
                    rows,
                    cols,
                    data: CpuData::F32(l.weight().contiguous()?),
                })
            }
            Linear::Quantized(QMatMul::QTensor(q)) if q.device().is_cpu() => {
                let (rows, cols) = q.shape().dims2()?;
                let bytes = || -> Result<Arc<Vec<u8>>> { Ok(Arc::new(q.data()?.into_owned())) };
                match q.dtype() {
                    GgmlDType::Q4_1 => Linear::Cpu(CpuWeight {
                        rows,
                        cols,
                        data: CpuData::Q4_1(bytes()?),
                    }),
                    GgmlDType::Q8_0 => Linear::Cpu(CpuWeight {
                        rows,
                        cols,
                        data: CpuData::Q8_0(bytes()?),
                    }),
                    _ => Linear::Quantized(QMatMul::QTensor(q)),
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
            Linear::Cpu(w) => match &w.data {
                CpuData::Q4_1(b) | CpuData::Q8_0(b) => b.len(),
                CpuData::F32(t) => t.elem_count() * 4,
            },
        }
    }
}

impl CpuWeight {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let cols = *dims.last().unwrap_or(&0);
        if cols != self.cols {
            return Err(Error::internal(format!(
                "linear map expects {} inputs, got shape {dims:?}",
                self.cols
            )));
        }
        let m = x.elem_count() / cols.max(1);
        if let CpuData::F32(w) = &self.data {
            if m > F32_KERNEL_MAX_ROWS {
                return Ok(candle_nn::Linear::new(w.clone(), None).forward(x)?);
            }
        }
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let mut out = vec![0f32; m * self.rows];
        with_f32_slice(&x, |xs| {
            match &self.data {
                CpuData::Q4_1(w) => kernels::matmul_q4_1(w, self.rows, self.cols, xs, m, &mut out)?,
                CpuData::Q8_0(w) => kernels::matmul_q8_0(w, self.rows, self.cols, xs, m, &mut out)?,
                CpuData::F32(w) => with_f32_slice(w, |ws| {
                    Ok(kernels::matmul_f32(
                        ws, self.rows, self.cols, xs, m, &mut out,
                    )?)
                })?,
            };
            Ok(())
        })?;
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("x has at least one dimension") = self.rows;
        Ok(Tensor::from_vec(out, shape, x.device())?)
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
