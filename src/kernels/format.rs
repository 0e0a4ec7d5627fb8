//! The weight formats a [`super::PackedMatrix`] can hold, with their ggml
//! block geometry.

use std::fmt;

use super::KernelError;

/// A GGUF weight format (ggml tensor type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum WeightFormat {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// 32-value blocks: f16 scale, 4-bit quants (offset 8).
    Q4_0,
    /// 32-value blocks: f16 scale and min, 4-bit quants.
    Q4_1,
    /// 32-value blocks: f16 scale, 5-bit quants (offset 16).
    Q5_0,
    /// 32-value blocks: f16 scale and min, 5-bit quants.
    Q5_1,
    /// 32-value blocks: f16 scale, 8-bit signed quants.
    Q8_0,
    /// 256-value super-blocks of 8 x 32: 6-bit scales and mins, 4-bit quants.
    Q4_K,
    /// 256-value super-blocks of 8 x 32: 6-bit scales and mins, 5-bit quants.
    Q5_K,
    /// 256-value super-blocks of 16 x 16: 8-bit scales, 6-bit quants (offset 32).
    Q6_K,
}

impl WeightFormat {
    /// Every format, in ggml type-id order.
    pub const ALL: [WeightFormat; 10] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
    ];

    /// The format's name as ggml and GGUF tools print it (`"Q4_K"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q4_K => "Q4_K",
            Self::Q5_K => "Q5_K",
            Self::Q6_K => "Q6_K",
        }
    }

    /// The ggml tensor type id (as stored in a GGUF tensor header).
    pub const fn ggml_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
        }
    }

    /// The format with ggml tensor type id `id`.
    pub fn from_ggml_type(id: u32) -> Result<Self, KernelError> {
        Self::ALL
            .into_iter()
            .find(|f| f.ggml_type() == id)
            .ok_or(KernelError::UnsupportedType(id))
    }

    /// Values per block (1 for the float formats).
    pub const fn block_values(self) -> usize {
        match self {
            Self::F32 | Self::F16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q4_K | Self::Q5_K | Self::Q6_K => 256,
        }
    }

    /// Bytes per block in ggml's layout.
    pub const fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4_K => 144,
            Self::Q5_K => 176,
            Self::Q6_K => 210,
        }
    }

    /// Bytes of one ggml row of `cols` values.
    pub fn row_bytes(self, cols: usize) -> Result<usize, KernelError> {
        if !cols.is_multiple_of(self.block_values()) {
            return Err(KernelError::ColsNotBlockMultiple { format: self, cols });
        }
        Ok(cols / self.block_values() * self.block_bytes())
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
