//! Fine-tuning data: a token stream split into a training part and a held-out
//! tail, training batches drawn at random positions from (seed, step) alone,
//! so the same seed gives the same order and a resumed run draws what an
//! uninterrupted one would.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// The training tokens and the held-out tail.
#[derive(Debug, Clone)]
pub struct Split {
    /// Tokens batches are drawn from.
    pub train: Vec<u32>,
    /// The last `heldout_frac` of the text, never trained on.
    pub heldout: Vec<u32>,
}

/// Holds out the last `heldout_frac` of `ids`; each part needs room for at
/// least one window of `seq_len + 1` tokens.
pub fn split(ids: &[u32], heldout_frac: f64, seq_len: usize) -> Result<Split> {
    if !(heldout_frac > 0.0 && heldout_frac < 1.0) {
        return Err(Error::setting(
            "heldout",
            format!("{heldout_frac} must be between 0 and 1"),
        ));
    }
    let cut = ids.len() - (ids.len() as f64 * heldout_frac).round() as usize;
    let (train, heldout) = ids.split_at(cut);
    for (what, part) in [("training", train), ("held-out", heldout)] {
        if part.len() < seq_len + 1 {
            return Err(Error::setting(
                "seq_len",
                format!(
                    "{seq_len} is too long: the {what} part of the text has {} tokens, \
                     fewer than seq_len + 1; use a longer text or a shorter window",
                    part.len()
                ),
            ));
        }
    }
    Ok(Split {
        train: train.to_vec(),
        heldout: heldout.to_vec(),
    })
}

/// Start positions of step `step`'s `batch` windows of `seq_len + 1` tokens
/// in a stream of `n` tokens; a function of (seed, step) only.
pub fn batch_starts(seed: u64, step: usize, batch: usize, n: usize, seq_len: usize) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let range = (n - seq_len) as u64; // starts 0..=n - seq_len - 1
    (0..batch)
        .map(|_| (rng.next_u64() % range) as usize)
        .collect()
}

/// Inputs and next-token targets `(batch, seq_len)` for `starts`.
pub fn batch(
    tokens: &[u32],
    starts: &[usize],
    seq_len: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let take = |off: usize| -> Vec<u32> {
        starts
            .iter()
            .flat_map(|&s| tokens[s + off..s + off + seq_len].iter().copied())
            .collect()
    };
    let shape = (starts.len(), seq_len);
    Ok((
        Tensor::from_vec(take(0), shape, device)?,
        Tensor::from_vec(take(1), shape, device)?,
    ))
}

/// Up to `max_tokens` of the held-out tokens as consecutive windows of `seq_len`.
pub fn heldout_windows(heldout: &[u32], seq_len: usize, max_tokens: usize) -> Vec<Vec<u32>> {
    let n = max_tokens.max(seq_len).min(heldout.len());
    heldout[..n]
        .chunks(seq_len)
        .filter(|w| w.len() >= 2)
        .map(<[u32]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_depend_on_seed_and_step_only_and_stay_in_range() {
        let a = batch_starts(1, 5, 8, 100, 10);
        assert_eq!(a, batch_starts(1, 5, 8, 100, 10));
        assert_ne!(a, batch_starts(2, 5, 8, 100, 10));
        assert_ne!(a, batch_starts(1, 6, 8, 100, 10));
        assert!((0..50)
            .flat_map(|s| batch_starts(3, s, 4, 100, 10))
            .all(|s| s + 11 <= 100));
    }

    #[test]
    fn split_holds_out_the_tail_and_targets_are_shifted() {
        let ids: Vec<u32> = (0..100).collect();
        let s = split(&ids, 0.1, 8).unwrap();
        assert_eq!((s.train.len(), s.heldout[0]), (90, 90));
        assert!(split(&ids, 0.05, 8).is_err());
        let (x, y) = batch(&s.train, &[3], 4, &Device::Cpu).unwrap();
        assert_eq!(x.to_vec2::<u32>().unwrap(), vec![vec![3, 4, 5, 6]]);
        assert_eq!(y.to_vec2::<u32>().unwrap(), vec![vec![4, 5, 6, 7]]);
    }
}
