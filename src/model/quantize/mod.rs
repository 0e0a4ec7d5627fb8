//! In-situ quantization (ISQ): a dense model's linear maps (attention and MLP
//! projections, and the LM head) re-encoded in one of ggml's block formats
//! after loading, the way mistral.rs does it. Norms and the embedding stay
//! dense. The blocks are ggml's reference quantization ([`blocks`], the same
//! encoder `normscope quantize` writes files with).

pub mod blocks;
pub mod kquants;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};

use super::linear::Linear;
use crate::error::{Error, Result};

/// The formats `--quantize` accepts, by the names it accepts them under.
pub const ISQ_TYPES: [(&str, GgmlDType); 4] = [
    ("q8_0", GgmlDType::Q8_0),
    ("q4_0", GgmlDType::Q4_0),
    ("q4_1", GgmlDType::Q4_1),
    ("q4k", GgmlDType::Q4K),
];

/// Parses an in-situ quantization type name (`q8_0`, `q4_0`, `q4_1`, `q4k`).
pub fn parse_isq(spec: &str) -> Result<GgmlDType> {
    let key = spec.to_ascii_lowercase().replace("q4_k", "q4k");
    ISQ_TYPES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = ISQ_TYPES.iter().map(|(n, _)| *n).collect();
            Error::setting(
                "quantize",
                format!("`{spec}` is not known (use {})", names.join(", ")),
            )
        })
}

/// The format a `(rows, cols)` matrix gets when `dtype` is asked for: k-quants
/// need rows of a multiple of 256 values, and fall back the way llama.cpp's
/// quantizer does (Q4K -> Q5_0, Q5K -> Q5_1, Q6K -> Q8_0, Q2K/Q3K -> Q4_0).
pub fn effective_type(dtype: GgmlDType, cols: usize) -> GgmlDType {
    if cols.is_multiple_of(dtype.block_size()) {
        return dtype;
    }
    match dtype {
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        GgmlDType::Q6K | GgmlDType::Q8K => GgmlDType::Q8_0,
        _ => GgmlDType::Q4_0,
    }
}

/// Replaces every dense map of `linears` by its quantized form in `dtype`
/// (or its fallback, see [`effective_type`]); maps that are already quantized
/// are left alone. Returns how many maps were quantized.
pub fn quantize_linears<'a>(
    linears: impl IntoIterator<Item = &'a mut Linear>,
    dtype: GgmlDType,
) -> Result<usize> {
    let mut count = 0;
    let mut quantize = |lin: &mut Linear| -> Result<()> {
        let Some(w) = lin.dense_weight() else {
            return Ok(());
        };
        let cols = w.dim(1)?;
        let target = effective_type(dtype, cols);
        if !cols.is_multiple_of(target.block_size()) {
            return Err(Error::usage(format!(
                "a weight with {cols} columns cannot be stored as {target:?} \
                 (blocks of {} values)",
                target.block_size()
            )));
        }
        let (rows, _) = w.dims2()?;
        let values = w
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bytes = blocks::quantize(target, &values, cols).map_err(Error::internal)?;
        let storage = QStorage::from_data(bytes.into(), w.device(), target)?;
        let q = QTensor::new(storage, (rows, cols))?;
        *lin = Linear::Quantized(QMatMul::from_qtensor(q)?);
        count += 1;
        Ok(())
    };
    for lin in linears {
        quantize(lin)?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_k_quants_fall_back() {
        assert_eq!(parse_isq("q8_0").unwrap(), GgmlDType::Q8_0);
        assert_eq!(parse_isq("Q4_K").unwrap(), GgmlDType::Q4K);
        assert!(parse_isq("q3").unwrap_err().to_string().contains("q4k"));
        assert_eq!(effective_type(GgmlDType::Q4K, 1536), GgmlDType::Q4K);
        assert_eq!(effective_type(GgmlDType::Q4K, 576), GgmlDType::Q5_0);
        assert_eq!(effective_type(GgmlDType::Q8_0, 576), GgmlDType::Q8_0);
    }
}
