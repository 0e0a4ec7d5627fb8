//! Massive activations (Sun et al., arXiv 2402.17762): in each block's
//! output, the coordinate with the largest magnitude over every token of the
//! text, where it is (which token, which dimension), and how it compares with
//! the typical magnitude (the median |coordinate| of that block's output).

use candle_core::{DType, Tensor};
use serde::Serialize;

use crate::error::Result;
use crate::model::Observer;

/// The largest coordinate of one block's output over the text.
#[derive(Debug, Clone, Serialize)]
pub struct MassiveActivation {
    /// Block index.
    pub layer: usize,
    /// |h_out[t, d]| at the largest coordinate.
    pub max_abs: f64,
    /// Which window it is in.
    pub window: usize,
    /// Its position in that window (0: the first token, BOS when the model uses one).
    pub position: usize,
    /// The token id at that position.
    pub token_id: u32,
    /// The token as text (filled in by [`crate::analysis::analyze`]).
    pub token: String,
    /// Its dimension.
    pub dim: usize,
    /// Median |h_out| over every coordinate of the window it is in.
    pub median_abs: f64,
    /// `max_abs / median_abs`.
    pub ratio: f64,
}

/// Observer that keeps, per block, the largest coordinate seen so far.
#[derive(Debug, Default)]
pub struct MassiveObserver {
    rows: Vec<Option<MassiveActivation>>,
    window: usize,
    ids: Vec<u32>,
}

impl MassiveObserver {
    /// An observer for `num_layers` blocks.
    pub fn new(num_layers: usize) -> Self {
        Self {
            rows: vec![None; num_layers],
            ..Self::default()
        }
    }

    /// Says which window (index and token ids) the next forward pass runs.
    pub fn start_window(&mut self, index: usize, ids: &[u32]) {
        self.window = index;
        self.ids = ids.to_vec();
    }

    /// The per-block maxima (blocks that never ran are left out).
    pub fn rows(self) -> Vec<MassiveActivation> {
        self.rows.into_iter().flatten().collect()
    }
}

impl Observer for MassiveObserver {
    fn resid_post(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        let (_, t, h) = x.dims3()?;
        let mut v: Vec<f32> = x.to_dtype(DType::F32)?.flatten_all()?.abs()?.to_vec1()?;
        let (at, &max) = v
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap_or((0, &0.0));
        if self.rows[layer]
            .as_ref()
            .is_some_and(|r| r.max_abs >= f64::from(max))
        {
            return Ok(());
        }
        let mid = v.len() / 2;
        let median = f64::from(*v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1);
        let position = (at / h).min(t.saturating_sub(1));
        self.rows[layer] = Some(MassiveActivation {
            layer,
            max_abs: f64::from(max),
            window: self.window,
            position,
            token_id: self.ids.get(position).copied().unwrap_or(0),
            token: String::new(),
            dim: at % h,
            median_abs: median,
            ratio: if median > 0.0 {
                f64::from(max) / median
            } else {
                f64::INFINITY
            },
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn finds_the_largest_coordinate_and_keeps_the_maximum_over_windows() {
        let mut obs = MassiveObserver::new(1);
        let mut x = vec![1f32; 2 * 3 * 4];
        x[4 + 2] = -50.0; // position 1 (of 4 dims), dim 2
        let t = Tensor::from_vec(x, (1, 3 * 2, 4), &Device::Cpu).unwrap();
        obs.start_window(0, &[7, 8, 9, 10, 11, 12]);
        obs.resid_post(0, &t).unwrap();
        let small = Tensor::full(3f32, (1, 2, 4), &Device::Cpu).unwrap();
        obs.start_window(1, &[1, 2]);
        obs.resid_post(0, &small).unwrap();
        let rows = obs.rows();
        let r = &rows[0];
        assert_eq!((r.window, r.position, r.dim, r.token_id), (0, 1, 2, 8));
        assert_eq!((r.max_abs, r.median_abs, r.ratio), (50.0, 1.0, 50.0));
    }
}
