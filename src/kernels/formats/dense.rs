//! Dense F32 / F16 weights, repacked into groups of [`GROUP`] rows stored
//! column by column: element `(GROUP g + r, c)` at `(g cols + c) GROUP + r`,
//! so one load holds a column of 8 rows (an outer-product GEMM's operand).

use half::f16;

use super::GROUP;
use crate::kernels::buffer::Plain;
use crate::kernels::WeightFormat;

/// A dense weight element.
pub(crate) trait DenseElem: Plain + Default + Send + Sync + 'static {
    /// The format it stores.
    const FORMAT: WeightFormat;

    /// The value as f32.
    fn to_f32(self) -> f32;

    /// The little-endian value at `b[..size_of::<Self>()]`.
    fn from_le(b: &[u8]) -> Self;
}

impl DenseElem for f32 {
    const FORMAT: WeightFormat = WeightFormat::F32;

    fn to_f32(self) -> f32 {
        self
    }

    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl DenseElem for f16 {
    const FORMAT: WeightFormat = WeightFormat::F16;

    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }

    fn from_le(b: &[u8]) -> Self {
        f16::from_le_bytes([b[0], b[1]])
    }
}

/// Interleaves row-major `w` (`rows x cols`) into `out` (rows padded with
/// zeros to whole groups).
pub(crate) fn repack<E: DenseElem>(w: &[E], rows: usize, cols: usize, out: &mut [E]) {
    for (r, row) in w.chunks_exact(cols.max(1)).take(rows).enumerate() {
        let (g, lane) = (r / GROUP, r % GROUP);
        for (c, &v) in row.iter().enumerate() {
            out[(g * cols + c) * GROUP + lane] = v;
        }
    }
}

/// Row `r` of an interleaved matrix, as f32.
pub(crate) fn row<E: DenseElem>(packed: &[E], cols: usize, r: usize, out: &mut [f32]) {
    let (g, lane) = (r / GROUP, r % GROUP);
    for (c, o) in out.iter_mut().enumerate() {
        *o = packed[(g * cols + c) * GROUP + lane].to_f32();
    }
}
