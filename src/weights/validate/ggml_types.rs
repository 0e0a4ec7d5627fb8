//! The ggml tensor types normscope can read, by their GGUF type id.

use candle_core::quantized::GgmlDType;

/// The candle dtype for GGUF tensor type `id`, or `None` for a type that is
/// unknown or that candle cannot read from a file (Q8_1 and Q8_K exist in
/// candle only as intermediate types for matmul; the fuzzer found that candle
/// refuses to load them).
pub fn ggml_type(id: u32) -> Option<GgmlDType> {
    Some(match id {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

/// Bytes taken by `elems` elements of `dtype`, or an explanation when `elems`
/// is not a whole number of blocks.
pub fn byte_size(dtype: GgmlDType, row: usize, elems: usize) -> Result<usize, String> {
    let block = dtype.block_size();
    if !row.is_multiple_of(block) {
        return Err(format!(
            "rows of {row} elements are not a multiple of the {dtype:?} block size {block}"
        ));
    }
    (elems / block)
        .checked_mul(dtype.type_size())
        .ok_or_else(|| format!("{elems} elements of {dtype:?} overflow"))
}
