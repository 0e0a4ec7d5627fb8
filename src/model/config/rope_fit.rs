//! llama3 RoPE scaling recovered from the per-frequency factors a Llama 3
//! GGUF stores (`rope_freqs.weight`), so that `normscope convert` can write
//! a `config.json` transformers computes the same frequencies from.
//!
//! llama.cpp's converter computes, for each frequency with wavelength `w`:
//! factor 1 where `w < orig / high`, `factor` where `w > orig / low`, and
//! `1 / ((1 - s) / factor + s)` with `s = (orig / w - low) / (high - low)`
//! between. Only `orig / low` and `orig / high` matter, so `orig` is taken
//! as Llama 3's 8192, or half the model's context when that is shorter
//! (transformers warns unless it is below the model's context).

use super::Llama3Scaling;
use crate::model::rope::inverse_frequencies;

/// Relative tolerance of the refit factors (the GGUF stores them as f32).
const TOLERANCE: f64 = 1e-5;

/// Llama 3's original context length, which the fit assumes (or half the
/// model's context, when that is shorter).
const ORIGINAL_CONTEXT: usize = 8192;

/// The llama3 parameters that reproduce `factors` for a model with
/// `head_dim`, base `theta` and context `context`; `None` when no llama3
/// scaling gives these factors.
pub fn llama3_from_factors(
    factors: &[f32],
    head_dim: usize,
    theta: f64,
    context: usize,
) -> Option<Llama3Scaling> {
    let orig = ORIGINAL_CONTEXT.min(context / 2).max(1);
    let freqs = inverse_frequencies(head_dim, theta, None);
    if freqs.len() != factors.len() || factors.is_empty() {
        return None;
    }
    let f: Vec<f64> = factors.iter().map(|&x| x as f64).collect();
    let factor = f.iter().cloned().fold(f64::MIN, f64::max);
    if !(factor > 1.0 && f.iter().all(|&x| x >= 1.0 - TOLERANCE)) {
        return None;
    }
    // x = 1 / wavelength grows with the frequency; s(x) rises from 0 at
    // x = low / orig to 1 at x = high / orig.
    let x: Vec<f64> = freqs
        .iter()
        .map(|fr| fr / (2.0 * std::f64::consts::PI))
        .collect();
    let near = |a: f64, b: f64| (a - b).abs() <= TOLERANCE * b;
    let s: Vec<f64> = f
        .iter()
        .map(|&v| (1.0 / v - 1.0 / factor) / (1.0 - 1.0 / factor))
        .collect();
    let medium: Vec<usize> = (0..f.len())
        .filter(|&i| !near(f[i], 1.0) && !near(f[i], factor))
        .collect();
    let lowest_one = (0..f.len())
        .filter(|&i| near(f[i], 1.0))
        .map(|i| x[i])
        .fold(f64::MAX, f64::min);
    let highest_full = (0..f.len())
        .filter(|&i| near(f[i], factor))
        .map(|i| x[i])
        .fold(0.0, f64::max);
    let (x0, x1) = match medium.as_slice() {
        // s is linear in x: two medium points fix the line.
        [a, .., b] => {
            let slope = (s[*b] - s[*a]) / (x[*b] - x[*a]);
            let x0 = x[*a] - s[*a] / slope;
            (x0, x0 + 1.0 / slope)
        }
        // One point: start the line halfway below it.
        [a] => {
            let x0 = (x[*a] + highest_full.min(x[*a])) / 2.0;
            (x0, x0 + (x[*a] - x0) / s[*a])
        }
        // A step: both ends inside the gap.
        [] => {
            let gap = lowest_one - highest_full;
            (highest_full + gap / 3.0, highest_full + 2.0 * gap / 3.0)
        }
    };
    if !(x0 > 0.0 && x1 > x0) {
        return None;
    }
    let o = orig as f64;
    let scaling = Llama3Scaling {
        factor,
        low_freq_factor: x0 * o,
        high_freq_factor: x1 * o,
        original_max_position_embeddings: orig,
    };
    let refit = inverse_frequencies(head_dim, theta, Some(&scaling));
    let agrees = refit
        .iter()
        .zip(&freqs)
        .zip(&f)
        .all(|((scaled, base), want)| near(base / scaled, *want));
    agrees.then_some(scaling)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factors(s: &Llama3Scaling, head_dim: usize, theta: f64) -> Vec<f32> {
        let base = inverse_frequencies(head_dim, theta, None);
        let scaled = inverse_frequencies(head_dim, theta, Some(s));
        base.iter()
            .zip(&scaled)
            .map(|(b, s)| (b / s) as f32)
            .collect()
    }

    #[test]
    fn llama_3_2_factors_give_back_its_parameters() {
        let s = Llama3Scaling {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        let fit = llama3_from_factors(&factors(&s, 64, 500_000.0), 64, 500_000.0, 131_072).unwrap();
        assert_eq!(fit.factor, 32.0);
        assert!((fit.low_freq_factor - 1.0).abs() < 1e-3, "{fit:?}");
        assert!((fit.high_freq_factor - 4.0).abs() < 1e-3, "{fit:?}");
    }

    #[test]
    fn a_step_and_a_single_medium_point_are_fitted_too() {
        for (low, high) in [(1.0, 1.01), (2.0, 3.0)] {
            let s = Llama3Scaling {
                factor: 8.0,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: 16,
            };
            let want = factors(&s, 16, 10_000.0);
            let fit = llama3_from_factors(&want, 16, 10_000.0, 32).expect("a fit");
            let got = factors(&fit, 16, 10_000.0);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-4 * b, "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn factors_no_llama3_rule_makes_are_refused() {
        assert!(llama3_from_factors(&[1.0, 3.0, 2.0, 8.0], 8, 10_000.0, 8192).is_none());
        assert!(llama3_from_factors(&[1.0, 1.0], 4, 10_000.0, 8192).is_none());
    }
}
