//! The interleaved layout of one "unit": 32 consecutive columns of the 8
//! rows of a group, each value an unsigned integer of 4, 5, 6 or 8 bits.
//!
//! Column `c = 4k + j` (`k` in 0..8, `j` in 0..4) of row `r` lives at byte
//! `r * 4 + j` of 32-byte lane group `k`, so register `W_k` (one 32-byte
//! load, or two nibble planes) holds columns `4k..4k + 4` of all 8 rows, and
//! a `vpdpbusd` with those 4 activation bytes broadcast gives each row's
//! partial dot product in its own 32-bit lane.
//!
//! * 8 bits: `W_k` is bytes `32 k..32 k + 32`.
//! * 4 bits: 128 bytes of nibble planes; `W_k` is the low nibbles of bytes
//!   `32 k..` for `k < 4`, the high nibbles of bytes `32 (k - 4)..` otherwise.
//! * 5 bits: 32 bytes of high bits, then the nibbles: bit `k` of byte
//!   `r * 4 + j` is bit 4 of column `4k + j`.
//! * 6 bits: 64 bytes of high bit pairs, then the nibbles: bits `2 (k % 4)`
//!   and `2 (k % 4) + 1` of byte `32 (k / 4) + r * 4 + j` are bits 4 and 5
//!   of column `4k + j`.

use super::GROUP;

/// Bytes of one unit of `bits`-bit values.
pub(crate) const fn unit_bytes(bits: u32) -> usize {
    match bits {
        4 => 128,
        5 => 160,
        6 => 192,
        _ => 256,
    }
}

/// Bytes of the high-bit plane that precedes the nibbles.
const fn high_bytes(bits: u32) -> usize {
    match bits {
        5 => 32,
        6 => 64,
        _ => 0,
    }
}

/// Byte of lane group `k` holding row `r`, column `4k + j`.
fn at(k: usize, r: usize, j: usize) -> usize {
    32 * k + 4 * r + j
}

/// Writes the unit of rows `q[r]` (values below `2^bits`) to `out`.
pub(crate) fn put_unit(q: &[[u8; 32]; GROUP], bits: u32, out: &mut [u8]) {
    let (high, low) = out[..unit_bytes(bits)].split_at_mut(high_bytes(bits));
    for (r, row) in q.iter().enumerate() {
        debug_assert!(row.iter().all(|&v| u32::from(v) < 1 << bits));
        for k in 0..4 {
            for j in 0..4 {
                let (c, hi_c) = (4 * k + j, 16 + 4 * k + j);
                if bits == 8 {
                    low[at(k, r, j)] = row[c];
                    low[at(k + 4, r, j)] = row[hi_c];
                } else {
                    low[at(k, r, j)] = (row[c] & 0x0F) | ((row[hi_c] & 0x0F) << 4);
                }
            }
        }
        for j in 0..4 {
            let tops = (0..8).map(|k| row[4 * k + j] >> 4);
            match bits {
                5 => high[at(0, r, j)] = tops.enumerate().fold(0, |h, (k, v)| h | (v << k)),
                6 => {
                    let (mut h0, mut h1) = (0, 0);
                    for (k, v) in tops.enumerate() {
                        if k < 4 {
                            h0 |= v << (2 * k);
                        } else {
                            h1 |= v << (2 * (k - 4));
                        }
                    }
                    high[at(0, r, j)] = h0;
                    high[at(1, r, j)] = h1;
                }
                _ => {}
            }
        }
    }
}

/// Row `r` of a unit written by [`put_unit`].
pub(crate) fn get_unit(unit: &[u8], bits: u32, r: usize) -> [u8; 32] {
    let (high, low) = unit[..unit_bytes(bits)].split_at(high_bytes(bits));
    std::array::from_fn(|c| {
        let (k, j) = (c / 4, c % 4);
        match bits {
            8 => low[at(k, r, j)],
            _ => {
                let v = (low[at(k % 4, r, j)] >> (4 * (k / 4))) & 0x0F;
                match bits {
                    5 => v | (((high[at(0, r, j)] >> k) & 1) << 4),
                    6 => v | (((high[at(k / 4, r, j)] >> (2 * (k % 4))) & 3) << 4),
                    _ => v,
                }
            }
        }
    })
}
