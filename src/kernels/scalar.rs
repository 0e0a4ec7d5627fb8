//! Portable kernels: each weight row is unpacked from its group to ggml's
//! layout and dotted with the format's scalar reference.

use std::ops::Range;

use super::act::QuantActs;
use super::driver::GroupKernel;
use super::formats::dense::{self, DenseElem};
use super::formats::{QuantFormat, GROUP};

/// A quantized matrix (groups of `group_bytes`) times quantized activations.
pub(crate) struct ScalarQuant<'a, F> {
    pub(crate) w: &'a [u8],
    pub(crate) rows: usize,
    pub(crate) acts: &'a QuantActs,
    pub(crate) format: std::marker::PhantomData<F>,
}

impl<F: QuantFormat> GroupKernel for ScalarQuant<'_, F> {
    fn chunk(&self, groups: Range<usize>, outs: &mut [&mut [f32]]) {
        let nb = self.acts.cols / F::VALUES;
        let mut row = vec![0u8; nb * F::BYTES];
        for (i, g) in groups.enumerate() {
            let group = &self.w[g * nb * F::GROUP_BYTES..(g + 1) * nb * F::GROUP_BYTES];
            for r in 0..GROUP.min(self.rows - g * GROUP) {
                for (b, blk) in row.chunks_exact_mut(F::BYTES).enumerate() {
                    F::unpack(&group[b * F::GROUP_BYTES..], r, blk);
                }
                for (a, out) in outs.iter_mut().enumerate() {
                    out[GROUP * i + r] = row
                        .chunks_exact(F::BYTES)
                        .enumerate()
                        .map(|(b, blk)| F::dot(blk, self.acts.block(a, b, F::VALUES, F::ACT)))
                        .sum();
                }
            }
        }
    }
}

/// A dense matrix (interleaved groups) times f32 activations.
pub(crate) struct ScalarDense<'a, E> {
    pub(crate) w: &'a [E],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) x: &'a [f32],
}

impl<E: DenseElem> GroupKernel for ScalarDense<'_, E> {
    fn chunk(&self, groups: Range<usize>, outs: &mut [&mut [f32]]) {
        let (cols, len) = (self.cols, dense::group_len(self.cols));
        for (i, g) in groups.enumerate() {
            let group = &self.w[g * len..(g + 1) * len];
            for (a, out) in outs.iter_mut().enumerate() {
                let x = &self.x[a * cols..(a + 1) * cols];
                let mut acc = [0.0f32; GROUP];
                // Pair p: the group's 8 rows' columns 2p and 2p + 1.
                for (w, x) in group.chunks_exact(2 * GROUP).zip(x.chunks_exact(2)) {
                    for (acc, w) in acc.iter_mut().zip(w.chunks_exact(2)) {
                        *acc += w[0].to_f32() * x[0] + w[1].to_f32() * x[1];
                    }
                }
                let n = GROUP.min(self.rows - g * GROUP);
                out[GROUP * i..GROUP * i + n].copy_from_slice(&acc[..n]);
            }
        }
    }
}
