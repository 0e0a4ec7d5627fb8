//! Rows of f32 values -> the bytes of one ggml tensor type, as ggml's
//! reference quantizers write them. Rows are independent, so they are
//! quantized in parallel chunks and concatenated in order.
//!
//! Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 go through candle's `QTensor::quantize`
//! (its `from_float` is a line-by-line port of `quantize_row_*_ref`; the
//! tests check it against an independent implementation); Q4_K, Q5_K and Q6_K
//! through our own port in [`super::kquants`]; F16 and BF16 round to nearest
//! even like `ggml_fp32_to_fp16_row` / `ggml_fp32_to_bf16_row_ref`.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::kquants;

/// Elements quantized per parallel task (about what llama-quantize uses).
const CHUNK_ELEMS: usize = 32 * 512;

/// Quantizes `data` (rows of `row_len` values) to `dtype`. `row_len` must be a
/// multiple of the type's block size (the recipe's fallback makes sure of it);
/// the error is a plain message for the caller to place.
pub fn quantize(dtype: GgmlDType, data: &[f32], row_len: usize) -> Result<Vec<u8>, String> {
    let block = dtype.block_size();
    if row_len == 0 || !row_len.is_multiple_of(block) || !data.len().is_multiple_of(row_len) {
        return Err(format!(
            "cannot quantize rows of {row_len} values to {dtype:?} (block size {block})"
        ));
    }
    let rows_per_chunk = CHUNK_ELEMS.div_ceil(row_len).max(1);
    let parts: Vec<Result<Vec<u8>, String>> = data
        .par_chunks(rows_per_chunk * row_len)
        .map(|chunk| quantize_chunk(dtype, chunk, row_len))
        .collect();
    let mut out = Vec::with_capacity(data.len() / block * dtype.type_size());
    for p in parts {
        out.extend_from_slice(&p?);
    }
    Ok(out)
}

fn quantize_chunk(dtype: GgmlDType, chunk: &[f32], row_len: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(chunk.len() / dtype.block_size() * dtype.type_size());
    match dtype {
        GgmlDType::F32 => chunk
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlDType::F16 => chunk
            .iter()
            .for_each(|&v| out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes())),
        GgmlDType::BF16 => chunk
            .iter()
            .for_each(|&v| out.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes())),
        GgmlDType::Q4K => kquants::quantize_q4_k(chunk, &mut out),
        GgmlDType::Q5K => kquants::quantize_q5_k(chunk, &mut out),
        GgmlDType::Q6K => kquants::quantize_q6_k(chunk, &mut out),
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_0 => {
            let q = Tensor::from_slice(chunk, (chunk.len() / row_len, row_len), &Device::Cpu)
                .and_then(|t| QTensor::quantize(&t, dtype))
                .map_err(|e| e.to_string())?;
            out.extend_from_slice(&q.data().map_err(|e| e.to_string())?);
        }
        other => return Err(format!("normscope does not write {other:?} tensors")),
    }
    Ok(out)
}
