//! Kernel tests: every format on every available instruction set against
//! f64 references on random data, plus layout round trips and errors.

mod dense;
mod layout;
mod quant;

use half::f16;

use crate::rng::SplitMix64;

/// f32 unit roundoff.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// Random test data, drawn from the crate's SplitMix64.
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        self.0.signed_unit_f32()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    fn f16_bytes(&mut self, scale: f32) -> [u8; 2] {
        f16::from_f32(self.f32() * scale).to_le_bytes()
    }
}

/// Activations with per-32-value magnitudes over 3 decades and an all-zero
/// stretch (a block, or with 256 columns and more a whole super-block:
/// `d = 0`).
fn activations(rng: &mut Rng, m: usize, cols: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..m * cols).map(|_| rng.f32()).collect();
    for (b, blk) in x.chunks_mut(32.min(cols.max(1))).enumerate() {
        let zero_superblock = cols >= 512 && (b * 32 % cols) / 256 == 1;
        let s = if zero_superblock {
            0.0
        } else {
            [1.0, 0.0, 0.01, 3.0][b % 4]
        };
        blk.iter_mut().for_each(|v| *v *= s);
    }
    x
}
