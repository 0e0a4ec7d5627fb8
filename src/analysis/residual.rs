//! Per-block residual-stream figures, accumulated by an observer while the model runs.
//!
//! With h_in the block input, a the attention update, h_mid = h_in + a, m the MLP
//! update and h_out = h_mid + m (||.|| the L2 norm of one token's vector):
//! norms of each, relative contribution ||h_out - h_in|| / ||h_in||, attention
//! share ||a|| / ||h_in||, MLP share ||m|| / ||h_mid||, cosines, block influence
//! 1 - cos (ShortGPT) and angular distance arccos(cos) / pi, for the block and
//! for each sublayer. For Peri-LN blocks the updates a and m are the
//! post-normed sublayer outputs (what joins the residual), and the norms of
//! the outputs before their post-norm are kept beside them.

use candle_core::{DType, Tensor, D};

use super::figure::{Figure, PerFigure};
use super::stats::{Running, Stat};
use crate::error::Result;
use crate::model::Observer;

/// Figures of one block, over all tokens and over tokens after position 0.
#[derive(Debug, Clone, Default)]
struct LayerAcc {
    all: PerFigure<Running>,
    excl0: PerFigure<Running>,
}

/// Per-token values kept when asked (`--per-token`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PerToken {
    /// ||h_out|| per token.
    pub norm_h_out: Vec<f64>,
    /// cos(h_in, h_out) per token.
    pub cos: Vec<f64>,
    /// Relative contribution per token.
    pub rel_contrib: Vec<f64>,
}

/// Summary of one block.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerFigures {
    /// Block index.
    pub layer: usize,
    /// Every figure over all tokens.
    pub all: PerFigure<Stat>,
    /// Every figure over tokens after position 0 of each window.
    pub excl0: PerFigure<Stat>,
    /// Per-token values, when kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_token: Option<PerToken>,
}

/// Observer that accumulates every [`Figure`] for every block.
pub struct ResidualObserver {
    layers: Vec<Option<LayerAcc>>,
    per_token: Option<Vec<PerToken>>,
    final_norm: [Running; 2],
    h_in: Option<Tensor>,
    attn: Option<Tensor>,
    h_mid: Option<Tensor>,
    mlp: Option<Tensor>,
    attn_raw: Option<Tensor>,
    mlp_raw: Option<Tensor>,
}

impl ResidualObserver {
    /// An observer for a model of `num_layers` blocks; `per_token` keeps per-token values.
    pub fn new(num_layers: usize, per_token: bool) -> Self {
        Self {
            layers: vec![None; num_layers],
            per_token: per_token.then(|| vec![PerToken::default(); num_layers]),
            final_norm: [Running::default(); 2],
            h_in: None,
            attn: None,
            h_mid: None,
            mlp: None,
            attn_raw: None,
            mlp_raw: None,
        }
    }

    /// The per-block summaries (blocks that never ran, e.g. skipped, are left out).
    pub fn layers(&self) -> Vec<LayerFigures> {
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(l, acc)| {
                let acc = acc.as_ref()?;
                Some(LayerFigures {
                    layer: l,
                    all: acc.all.map(Running::stat),
                    excl0: acc.excl0.map(Running::stat),
                    per_token: self.per_token.as_ref().map(|p| p[l].clone()),
                })
            })
            .collect()
    }

    /// ||final norm output|| over all tokens and after position 0.
    pub fn final_norm(&self) -> (Stat, Stat) {
        (self.final_norm[0].stat(), self.final_norm[1].stat())
    }

    fn take(slot: &mut Option<Tensor>) -> Result<Tensor> {
        slot.take()
            .ok_or_else(|| crate::error::Error::internal("observer hooks arrived out of order"))
    }
}

/// Row-wise dot products of two `(1, t, h)` tensors as f32 `(t,)`.
fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok((a * b)?.sum(D::Minus1)?.squeeze(0)?)
}

fn to_f32(x: &Tensor) -> Result<Tensor> {
    Ok(x.to_dtype(DType::F32)?)
}

impl Observer for ResidualObserver {
    fn resid_pre(&mut self, _layer: usize, x: &Tensor) -> Result<()> {
        self.h_in = Some(to_f32(x)?);
        Ok(())
    }

    fn attn_out_raw(&mut self, _layer: usize, u: &Tensor) -> Result<()> {
        self.attn_raw = Some(to_f32(u)?);
        Ok(())
    }

    fn attn_out(&mut self, _layer: usize, a: &Tensor) -> Result<()> {
        self.attn = Some(to_f32(a)?);
        Ok(())
    }

    fn resid_mid(&mut self, _layer: usize, x: &Tensor) -> Result<()> {
        self.h_mid = Some(to_f32(x)?);
        Ok(())
    }

    fn mlp_out_raw(&mut self, _layer: usize, u: &Tensor) -> Result<()> {
        self.mlp_raw = Some(to_f32(u)?);
        Ok(())
    }

    fn mlp_out(&mut self, _layer: usize, m: &Tensor) -> Result<()> {
        self.mlp = Some(to_f32(m)?);
        Ok(())
    }

    fn resid_post(&mut self, layer: usize, x: &Tensor) -> Result<()> {
        let h_out = to_f32(x)?;
        let h_in = Self::take(&mut self.h_in)?;
        let a = Self::take(&mut self.attn)?;
        let h_mid = Self::take(&mut self.h_mid)?;
        let m = Self::take(&mut self.mlp)?;
        // Without a post-norm the raw output is the update itself.
        let a_raw = self.attn_raw.take().unwrap_or_else(|| a.clone());
        let m_raw = self.mlp_raw.take().unwrap_or_else(|| m.clone());
        let delta = (&h_out - &h_in)?;
        // (11, t): squared norms and the three dot products, one transfer.
        let rows = Tensor::stack(
            &[
                dot(&h_in, &h_in)?,
                dot(&a, &a)?,
                dot(&h_mid, &h_mid)?,
                dot(&m, &m)?,
                dot(&h_out, &h_out)?,
                dot(&delta, &delta)?,
                dot(&h_in, &h_out)?,
                dot(&h_in, &h_mid)?,
                dot(&h_mid, &h_out)?,
                dot(&a_raw, &a_raw)?,
                dot(&m_raw, &m_raw)?,
            ],
            0,
        )?
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
        let acc = self.layers[layer].get_or_insert_with(LayerAcc::default);
        for j in 0..rows[0].len() {
            let f = token_figures(&rows, j);
            for (k, v) in f.iter() {
                acc.all[k].push(*v);
                if j > 0 {
                    acc.excl0[k].push(*v);
                }
            }
            if let Some(p) = self.per_token.as_mut() {
                p[layer].norm_h_out.push(f[Figure::NormHOut]);
                p[layer].cos.push(f[Figure::Cos]);
                p[layer].rel_contrib.push(f[Figure::RelContrib]);
            }
        }
        Ok(())
    }

    fn final_norm(&mut self, x: &Tensor) -> Result<()> {
        let x = to_f32(x)?;
        let norms: Vec<f64> = dot(&x, &x)?.to_dtype(DType::F64)?.sqrt()?.to_vec1()?;
        for (j, n) in norms.iter().enumerate() {
            self.final_norm[0].push(*n);
            if j > 0 {
                self.final_norm[1].push(*n);
            }
        }
        Ok(())
    }
}

/// Every [`Figure`] of token `j` from the squared norms and dot products.
fn token_figures(rows: &[Vec<f64>], j: usize) -> PerFigure<f64> {
    let [n_in, n_a, n_mid, n_m, n_out, n_delta] =
        [0, 1, 2, 3, 4, 5].map(|r| rows[r][j].max(0.0).sqrt());
    let (d_in_out, d_in_mid, d_mid_out) = (rows[6][j], rows[7][j], rows[8][j]);
    let [n_a_raw, n_m_raw] = [9, 10].map(|r| rows[r][j].max(0.0).sqrt());
    let cos = |d: f64, x: f64, y: f64| {
        if x > 0.0 && y > 0.0 {
            (d / (x * y)).clamp(-1.0, 1.0)
        } else {
            1.0
        }
    };
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
    let c = cos(d_in_out, n_in, n_out);
    let ca = cos(d_in_mid, n_in, n_mid);
    let cm = cos(d_mid_out, n_mid, n_out);
    let ang = |c: f64| c.acos() / std::f64::consts::PI;
    PerFigure::from_fn(|f| match f {
        Figure::NormHIn => n_in,
        Figure::NormAttn => n_a,
        Figure::NormHMid => n_mid,
        Figure::NormMlp => n_m,
        Figure::NormHOut => n_out,
        Figure::NormDelta => n_delta,
        Figure::RelContrib => ratio(n_delta, n_in),
        Figure::AttnRatio => ratio(n_a, n_in),
        Figure::MlpRatio => ratio(n_m, n_mid),
        Figure::Cos => c,
        Figure::AttnCos => ca,
        Figure::MlpCos => cm,
        Figure::Bi => 1.0 - c,
        Figure::AttnBi => 1.0 - ca,
        Figure::MlpBi => 1.0 - cm,
        Figure::Angular => ang(c),
        Figure::AttnAngular => ang(ca),
        Figure::MlpAngular => ang(cm),
        Figure::NormAttnRaw => n_a_raw,
        Figure::NormMlpRaw => n_m_raw,
    })
}
