//! Dense F32 / F16 weights, repacked into groups of [`GROUP`] rows stored
//! by column pairs: for pair `p` (columns `2p`, `2p + 1`) a group holds its
//! 8 rows' two values side by side, `r0c0 r0c1 r1c0 r1c1 ...`. Element
//! `(GROUP g + r, c)` sits at `(g sc + c - c % 2) GROUP + 2r + c % 2`, with
//! `sc` = [`stored_cols`] (odd widths get a zero column). One 16-value load
//! holds a pair for 8 rows, and a 64-bit broadcast of `x[2p..2p + 2]`
//! matches it lane for lane: an outer-product GEMM step for two columns.

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

/// Columns stored per row: `cols` rounded up to whole pairs.
pub(crate) fn stored_cols(cols: usize) -> usize {
    cols.div_ceil(2) * 2
}

/// Rows of `cols` values from `x`, each followed by zeros up to
/// [`stored_cols`].
pub(crate) fn pad_rows(x: &[f32], cols: usize) -> Vec<f32> {
    let sc = stored_cols(cols);
    let mut out = vec![0.0; x.len() / cols.max(1) * sc];
    for (o, x) in out.chunks_exact_mut(sc).zip(x.chunks_exact(cols.max(1))) {
        o[..cols].copy_from_slice(x);
    }
    out
}

/// Values in one packed group of [`GROUP`] rows.
pub(crate) fn group_len(cols: usize) -> usize {
    stored_cols(cols) * GROUP
}

/// Where element `(r, c)` of a `? x cols` matrix sits in the packed data.
fn index(cols: usize, r: usize, c: usize) -> usize {
    let (g, lane) = (r / GROUP, r % GROUP);
    (g * stored_cols(cols) + c - c % 2) * GROUP + 2 * lane + c % 2
}

/// Interleaves row-major `w` (`rows x cols`) into `out` (zero-filled, of
/// `rows.div_ceil(GROUP)` groups: padding rows and columns stay zero).
pub(crate) fn repack<E: DenseElem>(w: &[E], rows: usize, cols: usize, out: &mut [E]) {
    for (r, row) in w.chunks_exact(cols.max(1)).take(rows).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[index(cols, r, c)] = v;
        }
    }
}

/// Row `r` of a packed matrix, as f32.
pub(crate) fn row<E: DenseElem>(packed: &[E], cols: usize, r: usize, out: &mut [f32]) {
    for (c, o) in out.iter_mut().enumerate() {
        *o = packed[index(cols, r, c)].to_f32();
    }
}
