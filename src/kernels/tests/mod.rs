//! Kernel tests: every format on every available instruction set against
//! f64 references on random data, plus layout round trips and errors.

mod dense;
mod layout;
mod quant;

use half::f16;

/// f32 unit roundoff.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// SplitMix64 PRNG.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
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
