//! Where a block normalizes: the checkpoint's own Pre-Norm, Post-Norm,
//! DeepNorm (arXiv 2203.00555) or LayerNorm scaling (arXiv 2502.05795).
//! Recorded in `config.json` under normscope's own keys, so an unmodified
//! Pre-Norm checkpoint's config is exactly what transformers wrote.

use serde::{Deserialize, Serialize};

/// A block's norm placement. With `y = Norm(x)` (gain included):
///
/// ```text
/// pre       x + F(y)                      the checkpoint as trained
/// post      y + F(y)      (= deepnorm with alpha = 1, beta = 1)
/// deepnorm  alpha * y + F(y)              the residual carries the normalized y
/// lnscale   x + F(y / sqrt(l + 1))        block l, counted from 0
/// ```
///
/// For `post` and `deepnorm` the sum is normalized by the next sublayer's
/// norm (the final norm after the last block), which is Post-Norm's
/// `x = Norm(alpha * x + F(x))` with the first block's input norm acting as an
/// embedding norm.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Placement {
    /// `x = x + F(Norm(x))`.
    #[default]
    Pre,
    /// `x = Norm(x + F(x))`.
    Post,
    /// `x = Norm(alpha * x + F(x))`; `beta` is the factor the value, output and
    /// MLP weights were scaled by when the variant was made (recorded, not applied).
    DeepNorm {
        /// Residual up-weighting.
        alpha: f64,
        /// Weight down-scaling used at conversion.
        beta: f64,
    },
    /// Pre-Norm with block l's norm outputs scaled by `1 / sqrt(l + 1)`.
    LnScale,
    /// Peri-LN (Gemma 3): `x = x + PostNorm(F(PreNorm(x)))`, a norm before and
    /// after each sublayer. A property of a checkpoint trained that way, not a
    /// variant normscope makes.
    Peri,
    /// OLMo 2's reordered norm (arXiv 2501.00656): `x = x + Norm(F(x))`, a
    /// norm after each sublayer and none before it. Also a property of a
    /// checkpoint trained that way.
    Reordered,
}

/// The names accepted for a placement, in documentation order.
pub const PLACEMENT_NAMES: [&str; 4] = ["pre", "post", "deepnorm", "lnscale"];

impl Placement {
    /// DeepNorm's decoder-only constants for `num_layers` blocks:
    /// `alpha = (2N)^(1/4)`, `beta = (8N)^(-1/4)`.
    pub fn deepnorm(num_layers: usize) -> Placement {
        let n = num_layers as f64;
        Placement::DeepNorm {
            alpha: (2.0 * n).powf(0.25),
            beta: (8.0 * n).powf(-0.25),
        }
    }

    /// The placement called `name` for a model of `num_layers` blocks (DeepNorm
    /// with its default constants).
    pub fn from_name(name: &str, num_layers: usize) -> Result<Placement, String> {
        match name {
            "pre" => Ok(Placement::Pre),
            "post" => Ok(Placement::Post),
            "deepnorm" => Ok(Placement::deepnorm(num_layers)),
            "lnscale" => Ok(Placement::LnScale),
            other => Err(format!(
                "norm placement `{other}` is not one of {}",
                PLACEMENT_NAMES.join(", ")
            )),
        }
    }

    /// `pre`, `post`, `deepnorm` or `lnscale`.
    pub fn name(&self) -> &'static str {
        match self {
            Placement::Pre => "pre",
            Placement::Post => "post",
            Placement::DeepNorm { .. } => "deepnorm",
            Placement::LnScale => "lnscale",
            Placement::Peri => "peri",
            Placement::Reordered => "reordered",
        }
    }

    /// For Post-Norm-like placements, the factor on the normalized residual
    /// (1 for post); `None` when the residual is left un-normalized.
    pub fn residual_alpha(&self) -> Option<f64> {
        match self {
            Placement::Post => Some(1.0),
            Placement::DeepNorm { alpha, .. } => Some(*alpha),
            Placement::Pre | Placement::LnScale | Placement::Peri | Placement::Reordered => None,
        }
    }

    /// The factor on block `layer`'s norm outputs, when it is not 1.
    pub fn norm_scale(&self, layer: usize) -> Option<f64> {
        match self {
            Placement::LnScale => Some(1.0 / ((layer + 1) as f64).sqrt()),
            _ => None,
        }
    }

    /// True when each sublayer's output is normalized before it joins the residual.
    pub fn has_post_norms(&self) -> bool {
        matches!(self, Placement::Peri | Placement::Reordered)
    }

    /// True when each sublayer reads a normalized input (every placement but
    /// OLMo 2's reordered one).
    pub fn has_pre_norms(&self) -> bool {
        *self != Placement::Reordered
    }

    /// True for placements a checkpoint was trained with that normscope
    /// reads but does not make (Peri-LN, reordered).
    pub fn is_native(&self) -> bool {
        matches!(self, Placement::Peri | Placement::Reordered)
    }

    /// The factor the value, output and MLP weights carry (1 except for DeepNorm).
    pub fn beta(&self) -> f64 {
        match self {
            Placement::DeepNorm { beta, .. } => *beta,
            _ => 1.0,
        }
    }
}

/// normscope's keys in `config.json`; all absent for a Pre-Norm checkpoint.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct PlacementFields {
    /// `pre`, `post`, `deepnorm` or `lnscale` (absent: `pre`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normscope_norm_placement: Option<String>,
    /// DeepNorm's alpha (absent: `(2N)^(1/4)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normscope_deepnorm_alpha: Option<f64>,
    /// DeepNorm's beta (absent: `(8N)^(-1/4)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normscope_deepnorm_beta: Option<f64>,
}

impl PlacementFields {
    /// The fields that record `p`.
    pub fn of(p: Placement) -> Self {
        let (alpha, beta) = match p {
            Placement::DeepNorm { alpha, beta } => (Some(alpha), Some(beta)),
            _ => (None, None),
        };
        Self {
            normscope_norm_placement: (p != Placement::Pre).then(|| p.name().to_string()),
            normscope_deepnorm_alpha: alpha,
            normscope_deepnorm_beta: beta,
        }
    }

    /// The placement these fields describe for a model of `num_layers` blocks.
    pub fn resolve(&self, num_layers: usize) -> Result<Placement, String> {
        let name = self.normscope_norm_placement.as_deref().unwrap_or("pre");
        let p = Placement::from_name(name, num_layers)
            .map_err(|e| format!("normscope_norm_placement: {e}"))?;
        let (alpha, beta) = (self.normscope_deepnorm_alpha, self.normscope_deepnorm_beta);
        let Placement::DeepNorm {
            alpha: a0,
            beta: b0,
        } = p
        else {
            if alpha.is_some() || beta.is_some() {
                return Err(format!(
                    "normscope_deepnorm_alpha/beta are set but the norm placement is `{name}`"
                ));
            }
            return Ok(p);
        };
        let (alpha, beta) = (alpha.unwrap_or(a0), beta.unwrap_or(b0));
        for (key, v) in [("alpha", alpha), ("beta", beta)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("normscope_deepnorm_{key} {v} must be positive"));
            }
        }
        Ok(Placement::DeepNorm { alpha, beta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepnorm_constants_for_30_layers() {
        let Placement::DeepNorm { alpha, beta } = Placement::deepnorm(30) else {
            unreachable!()
        };
        assert!((alpha - 60f64.powf(0.25)).abs() < 1e-12);
        assert!((beta - 240f64.powf(-0.25)).abs() < 1e-12);
    }

    #[test]
    fn fields_round_trip_and_pre_writes_nothing() {
        assert_eq!(
            PlacementFields::of(Placement::Pre),
            PlacementFields::default()
        );
        for p in [Placement::Post, Placement::deepnorm(4), Placement::LnScale] {
            assert_eq!(PlacementFields::of(p).resolve(4).unwrap(), p);
        }
    }

    #[test]
    fn bad_fields_are_rejected() {
        let f = |name: &str, alpha: Option<f64>| PlacementFields {
            normscope_norm_placement: Some(name.into()),
            normscope_deepnorm_alpha: alpha,
            normscope_deepnorm_beta: None,
        };
        assert!(f("sandwich", None).resolve(2).is_err());
        assert!(f("post", Some(2.0)).resolve(2).is_err());
        assert!(f("deepnorm", Some(-1.0)).resolve(2).is_err());
        assert_eq!(
            f("deepnorm", Some(1.0)).resolve(2).unwrap(),
            Placement::DeepNorm {
                alpha: 1.0,
                beta: 0.5
            }
        );
    }
}
