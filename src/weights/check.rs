//! NaN and Inf in stored weights, found by reading the bits in place (no copy,
//! no dequantization: a quantized block is non-finite only through its float
//! scales). By default only the cheap tensors (norm gains, the embedding) are
//! checked at load; `--check-weights` checks every tensor.

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;

use super::gguf::GgufFile;
use super::validate::safetensors_header;
use crate::error::{Error, Result};

/// Which tensors a load scans for NaN and Inf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightCheck {
    /// Norm gains and the embedding only (the default).
    #[default]
    Cheap,
    /// Every tensor.
    All,
}

impl WeightCheck {
    /// True when tensor `name` is scanned under this setting.
    pub fn covers(self, name: &str) -> bool {
        self == WeightCheck::All
            || name.contains("norm")
            || name.contains("embed_tokens")
            || name.contains("token_embd")
    }
}

/// A stored float format.
#[derive(Debug, Clone, Copy)]
enum Float {
    F8E4M3,
    F8E5M2,
    F16,
    BF16,
    F32,
    F64,
}

impl Float {
    fn width(self) -> usize {
        match self {
            Float::F8E4M3 | Float::F8E5M2 => 1,
            Float::F16 | Float::BF16 => 2,
            Float::F32 => 4,
            Float::F64 => 8,
        }
    }

    /// `Some("NaN")` or `Some("Inf")` for a non-finite value's little-endian bytes.
    fn classify(self, b: &[u8]) -> Option<&'static str> {
        let mut buf = [0u8; 8];
        buf[..b.len()].copy_from_slice(b);
        let bits = u64::from_le_bytes(buf);
        let (exp, mantissa) = match self {
            // E4M3 has no Inf; S.1111.111 is NaN.
            Float::F8E4M3 => return (bits & 0x7f == 0x7f).then_some("NaN"),
            Float::F8E5M2 => (0x7c, 0x03),
            Float::F16 => (0x7c00, 0x03ff),
            Float::BF16 => (0x7f80, 0x007f),
            Float::F32 => (0x7f80_0000, 0x007f_ffff),
            Float::F64 => (0x7ff0_0000_0000_0000, 0x000f_ffff_ffff_ffff),
        };
        if bits & exp != exp {
            None
        } else if bits & mantissa != 0 {
            Some("NaN")
        } else {
            Some("Inf")
        }
    }
}

/// Where the floats are: format, bytes per block, byte offsets of the floats in a block.
type Fields = (Float, usize, &'static [usize]);

fn safetensors_fields(dtype: &str) -> Option<Fields> {
    Some(match dtype {
        "F8_E4M3" => (Float::F8E4M3, 1, &[0]),
        "F8_E5M2" => (Float::F8E5M2, 1, &[0]),
        "F16" => (Float::F16, 2, &[0]),
        "BF16" => (Float::BF16, 2, &[0]),
        "F32" => (Float::F32, 4, &[0]),
        "F64" => (Float::F64, 8, &[0]),
        _ => return None,
    })
}

fn ggml_fields(dtype: GgmlDType) -> Fields {
    match dtype {
        GgmlDType::F32 => (Float::F32, 4, &[0]),
        GgmlDType::F16 => (Float::F16, 2, &[0]),
        GgmlDType::BF16 => (Float::BF16, 2, &[0]),
        GgmlDType::Q4_0 | GgmlDType::Q5_0 | GgmlDType::Q8_0 => {
            (Float::F16, dtype.type_size(), &[0])
        }
        GgmlDType::Q4_1 | GgmlDType::Q5_1 | GgmlDType::Q8_1 | GgmlDType::Q4K | GgmlDType::Q5K => {
            (Float::F16, dtype.type_size(), &[0, 2])
        }
        GgmlDType::Q2K => (Float::F16, dtype.type_size(), &[80, 82]),
        GgmlDType::Q3K => (Float::F16, dtype.type_size(), &[108]),
        GgmlDType::Q6K => (Float::F16, dtype.type_size(), &[208]),
        GgmlDType::Q8K => (Float::F32, dtype.type_size(), &[0]),
    }
}

/// The first non-finite float in `data`: its block index and kind.
fn first_non_finite(
    data: &[u8],
    (float, stride, offsets): Fields,
) -> Option<(usize, &'static str)> {
    data.chunks_exact(stride)
        .enumerate()
        .find_map(|(i, block)| {
            offsets
                .iter()
                .find_map(|&o| float.classify(&block[o..o + float.width()]))
                .map(|kind| (i, kind))
        })
}

fn found(file: &Path, name: &str, quantized: bool, (i, kind): (usize, &str)) -> Error {
    let place = if quantized {
        format!("the scale of block {i}")
    } else {
        format!("element {i}")
    };
    Error::format(
        file,
        format!("tensor `{name}` holds {kind} at {place}; the checkpoint is corrupt"),
    )
}

/// Scans the tensors `check` covers in safetensors `files`.
pub fn scan_safetensors(files: &[PathBuf], check: WeightCheck) -> Result<()> {
    for file in files {
        let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        // SAFETY: read-only mapping of a file we just opened.
        let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(file, e))?;
        let header = safetensors_header::check(&mmap).map_err(|m| Error::format(file, m))?;
        for t in header.tensors.iter().filter(|t| check.covers(&t.name)) {
            let Some(fields) = safetensors_fields(&t.dtype) else {
                continue;
            };
            if let Some(hit) = first_non_finite(&mmap[t.start..t.end], fields) {
                return Err(found(file, &t.name, false, hit));
            }
        }
    }
    Ok(())
}

/// Scans the tensors `check` covers in a GGUF file.
pub fn scan_gguf(file: &GgufFile, check: WeightCheck) -> Result<()> {
    for t in file.layout.tensors.iter().filter(|t| check.covers(&t.name)) {
        let fields = ggml_fields(t.dtype);
        if let Some(hit) = first_non_finite(&file.bytes()[t.start..t.end], fields) {
            return Err(found(&file.path, &t.name, t.dtype.block_size() > 1, hit));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_inf_are_told_apart_in_every_width() {
        let f32s = |v: f32| v.to_le_bytes().to_vec();
        assert_eq!(Float::F32.classify(&f32s(f32::NAN)), Some("NaN"));
        assert_eq!(Float::F32.classify(&f32s(f32::NEG_INFINITY)), Some("Inf"));
        assert_eq!(Float::F32.classify(&f32s(f32::MAX)), None);
        let h = |v: f32| half::f16::from_f32(v).to_le_bytes();
        assert_eq!(Float::F16.classify(&h(f32::INFINITY)), Some("Inf"));
        assert_eq!(Float::F16.classify(&h(65504.0)), None);
        let b = |v: f32| half::bf16::from_f32(v).to_le_bytes();
        assert_eq!(Float::BF16.classify(&b(f32::NAN)), Some("NaN"));
        assert_eq!(
            Float::F64.classify(&f64::INFINITY.to_le_bytes()),
            Some("Inf")
        );
        let mut data = f32s(1.0);
        data.extend(f32s(f32::NAN));
        assert_eq!(
            first_non_finite(&data, (Float::F32, 4, &[0])),
            Some((1, "NaN"))
        );
    }
}
