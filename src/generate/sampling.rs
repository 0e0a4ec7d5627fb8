//! Sampling settings, validated, mapped onto candle-transformers' `LogitsProcessor`.

use candle_transformers::generation::{LogitsProcessor, Sampling};

use crate::error::{Error, Result};

/// How the next token is chosen.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SamplingConfig {
    /// 0 means greedy (argmax).
    pub temperature: f64,
    /// Keep only the k most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches p (1 = off).
    pub top_p: Option<f64>,
    /// Divide the logits of recently seen tokens by this (1 = off).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: None,
            top_p: None,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 299792458,
        }
    }
}

impl SamplingConfig {
    /// Checks every value is in range.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::setting(
                "temperature",
                format!("{} must be a number >= 0", self.temperature),
            ));
        }
        if self.top_k == Some(0) {
            return Err(Error::setting("top_k", "must be at least 1"));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::setting("top_p", format!("{p} must be in (0, 1]")));
            }
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return Err(Error::setting(
                "repeat_penalty",
                format!("{} must be > 0", self.repeat_penalty),
            ));
        }
        Ok(())
    }

    /// The candle sampler for these settings.
    pub fn processor(&self) -> LogitsProcessor {
        let temperature = self.temperature;
        let sampling = if temperature == 0.0 {
            Sampling::ArgMax
        } else {
            match (self.top_k, self.top_p.filter(|&p| p < 1.0)) {
                (None, None) => Sampling::All { temperature },
                (Some(k), None) => Sampling::TopK { k, temperature },
                (None, Some(p)) => Sampling::TopP { p, temperature },
                (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
            }
        };
        LogitsProcessor::from_sampling(self.seed, sampling)
    }
}
