//! Per-layer key/value caches: candle's preallocated tensor cache for every
//! device and dtype, and a flat f32 cache that the CPU attention kernel
//! ([`crate::kernels::attend`]) reads in place.

use candle_nn::kv_cache::KvCache;

use crate::error::{Error, Result};

/// Positions added to a cache each time it runs out of room.
pub const CACHE_CHUNK: usize = 512;

/// Per-layer key/value caches and the number of positions already seen.
#[derive(Debug, Clone)]
pub struct KvState {
    pub(super) layers: Vec<LayerCache>,
    pub(super) len: usize,
}

impl KvState {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first forward pass.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the caches hold allocated (keys and values, every layer).
    pub fn bytes(&self) -> u64 {
        self.layers.iter().map(LayerCache::bytes).sum()
    }
}

impl LayerCache {
    /// Bytes this layer's keys and values hold allocated.
    fn bytes(&self) -> u64 {
        match self {
            LayerCache::Tensors(c) => [c.k_cache(), c.v_cache()]
                .into_iter()
                .filter_map(|c| c.all_data().as_ref())
                .map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u64)
                .sum(),
            LayerCache::Cpu(c) => ((c.k.len() + c.v.len()) * size_of::<f32>()) as u64,
        }
    }
}

/// One layer's cache.
#[derive(Debug, Clone)]
pub enum LayerCache {
    /// Tensors `(b, kv_heads, T, head_dim)` on the model's device.
    Tensors(KvCache),
    /// Flat f32 buffers for the CPU inference path.
    Cpu(CpuKv),
}

/// Keys and values as `(batch, kv_heads, capacity, head_dim)` f32 buffers.
#[derive(Debug, Clone, Default)]
pub struct CpuKv {
    k: Vec<f32>,
    v: Vec<f32>,
    len: usize,
    capacity: usize,
    batch: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl CpuKv {
    /// Positions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first append.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions there is room for per (sequence, head).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The key buffer.
    pub fn keys(&self) -> &[f32] {
        &self.k
    }

    /// The value buffer.
    pub fn values(&self) -> &[f32] {
        &self.v
    }

    /// Appends `t` positions of keys and values laid out
    /// `(batch, t, kv_heads, head_dim)` (a projection's output).
    pub fn append(
        &mut self,
        k: &[f32],
        v: &[f32],
        batch: usize,
        t: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Result<()> {
        if self.len == 0 {
            (self.batch, self.kv_heads, self.head_dim) = (batch, kv_heads, head_dim);
        } else if (self.batch, self.kv_heads, self.head_dim) != (batch, kv_heads, head_dim) {
            return Err(Error::usage(format!(
                "KV cache holds batch {} x {} heads x {}, got batch {batch} x {kv_heads} x {head_dim}",
                self.batch, self.kv_heads, self.head_dim
            )));
        }
        let n = batch * t * kv_heads * head_dim;
        if k.len() != n || v.len() != n {
            return Err(Error::usage(
                "KV cache append: keys or values have the wrong length",
            ));
        }
        if self.len + t > self.capacity {
            self.grow((self.len + t).next_multiple_of(CACHE_CHUNK));
        }
        for b in 0..batch {
            for i in 0..t {
                for h in 0..kv_heads {
                    let src = ((b * t + i) * kv_heads + h) * head_dim;
                    let dst = ((b * kv_heads + h) * self.capacity + self.len + i) * head_dim;
                    self.k[dst..dst + head_dim].copy_from_slice(&k[src..src + head_dim]);
                    self.v[dst..dst + head_dim].copy_from_slice(&v[src..src + head_dim]);
                }
            }
        }
        self.len += t;
        Ok(())
    }

    /// Reallocates to `capacity` positions, keeping what is stored.
    fn grow(&mut self, capacity: usize) {
        let (rows, hd) = (self.batch * self.kv_heads, self.head_dim);
        let mut k = vec![0f32; rows * capacity * hd];
        let mut v = vec![0f32; rows * capacity * hd];
        let keep = self.len * hd;
        for r in 0..rows {
            let (old, new) = (r * self.capacity * hd, r * capacity * hd);
            k[new..new + keep].copy_from_slice(&self.k[old..old + keep]);
            v[new..new + keep].copy_from_slice(&self.v[old..old + keep]);
        }
        (self.k, self.v, self.capacity) = (k, v, capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_keep_positions_across_growth() {
        let (b, h, d) = (2, 3, 4);
        let mut kv = CpuKv::default();
        let mut appended: Vec<(usize, usize, Vec<f32>)> = Vec::new();
        let mut total = 0;
        for t in [5, 1, 600, 1] {
            let n = b * t * h * d;
            let k: Vec<f32> = (0..n).map(|i| (total * 1000 + i) as f32).collect();
            kv.append(&k, &k, b, t, h, d).unwrap();
            appended.push((total, t, k));
            total += t;
            // Every position of every (seq, head) holds what was appended there.
            for (at, t, k) in &appended {
                for seq in 0..b {
                    for i in 0..*t {
                        for hh in 0..h {
                            let src = ((seq * t + i) * h + hh) * d;
                            let dst = ((seq * h + hh) * kv.capacity() + at + i) * d;
                            assert_eq!(kv.keys()[dst..dst + d], k[src..src + d]);
                            assert_eq!(kv.values()[dst..dst + d], k[src..src + d]);
                        }
                    }
                }
            }
        }
        assert_eq!(kv.len(), total);
        assert_eq!(kv.capacity(), 1024);
        let state = KvState {
            layers: vec![LayerCache::Cpu(kv.clone()), LayerCache::Cpu(kv.clone())],
            len: total,
        };
        assert_eq!(state.bytes(), 2 * 2 * (b * h * 1024 * d * 4) as u64);
        assert!(kv.append(&[0.0; 4], &[0.0; 4], 1, 1, 1, 4).is_err());
    }
}
