//! Streaming mean and standard deviation (Welford), so figures accumulate over
//! any number of tokens without storing them.

use serde::{Deserialize, Serialize};

/// Running mean and variance.
#[derive(Debug, Clone, Copy, Default)]
pub struct Running {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    /// Adds one observation (non-finite values are counted as they are, so they show).
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// The summary so far.
    pub fn stat(&self) -> Stat {
        Stat {
            mean: self.mean,
            std: if self.n > 1 {
                (self.m2 / (self.n - 1) as f64).sqrt()
            } else {
                0.0
            },
            n: self.n,
        }
    }
}

/// Mean, sample standard deviation and count of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean over tokens.
    pub mean: f64,
    /// Sample standard deviation over tokens.
    pub std: f64,
    /// Number of tokens.
    pub n: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass() {
        let xs = [1.0, 4.0, 9.0, 16.0, 25.0];
        let mut r = Running::default();
        xs.iter().for_each(|&x| r.push(x));
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        let s = r.stat();
        assert!((s.mean - mean).abs() < 1e-12 && (s.std - var.sqrt()).abs() < 1e-12 && s.n == 5);
    }
}
