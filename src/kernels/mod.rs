//! CPU matrix-product kernels for quantized (ggml Q4_1 / Q8_0) and dense
//! (f32 / f16) weights.
//!
//! All matmuls compute `out (m x rows) = x (m x cols) * W^T`, where `W` is a
//! `rows x cols` row-major weight matrix and `x`/`out` are row-major. Output
//! rows are split across the kernel thread team ([`team`]; its size is
//! rayon's thread count). An AVX2+FMA+F16C path is chosen at run time (detected
//! once), with a portable scalar fallback elsewhere.

mod attention;
mod dense;
mod quant;
#[cfg(target_arch = "x86_64")]
mod simd;
pub(crate) mod team;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Mutex, OnceLock};

pub use attention::{attend, AttentionShape};
pub use quant::{
    quantize_row_q8_0, quantize_row_q8_1, Q8_0Row, Q8_1Row, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK,
};

/// Error returned when matmul arguments have inconsistent shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// `cols` must be a multiple of the 32-value block size for quantized weights.
    ColsNotBlockMultiple {
        /// The offending column count.
        cols: usize,
    },
    /// A buffer's length does not match the given shape.
    BadLength {
        /// Which argument (`"w"`, `"x"` or `"out"`).
        what: &'static str,
        /// Length implied by `rows`, `cols` and `m`.
        expected: usize,
        /// Actual length.
        got: usize,
    },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ColsNotBlockMultiple { cols } => {
                write!(f, "cols = {cols} is not a multiple of the block size {QK}")
            }
            Self::BadLength {
                what,
                expected,
                got,
            } => write!(f, "`{what}` has length {got}, expected {expected}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Instruction set used by a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Portable Rust, no explicit SIMD.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C; only returned by [`Isa::detect`].
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Isa {
    /// Best instruction set supported by this CPU (detected once, cached).
    pub(crate) fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                return Isa::Avx2;
            }
            Isa::Scalar
        })
    }
}

/// `out (m x rows) = x (m x cols) * W^T` for Q4_1 weights (`w`: raw ggml
/// blocks, `rows * cols / 32 * 20` bytes). Activations are quantized to Q8_1.
pub fn matmul_q4_1(
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    quant::matmul_q4_1(Isa::detect(), w, rows, cols, x, m, out)
}

/// `out (m x rows) = x (m x cols) * W^T` for Q8_0 weights (`w`: raw ggml
/// blocks, `rows * cols / 32 * 34` bytes). Activations are quantized to Q8_0.
pub fn matmul_q8_0(
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    quant::matmul_q8_0(Isa::detect(), w, rows, cols, x, m, out)
}

/// `out (m x rows) = x (m x cols) * W^T` for dense f32 weights (any `cols`).
pub fn matmul_f32(
    w: &[f32],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    dense::matmul(Isa::detect(), w, rows, cols, x, m, out)
}

/// `out (m x rows) = x (m x cols) * W^T` for dense f16 weights (any `cols`).
pub fn matmul_f16(
    w: &[half::f16],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    dense::matmul(Isa::detect(), w, rows, cols, x, m, out)
}

/// Checks that `len` equals `expected`, naming the argument otherwise.
fn check_len(what: &'static str, len: usize, expected: usize) -> Result<(), KernelError> {
    if len == expected {
        Ok(())
    } else {
        Err(KernelError::BadLength {
            what,
            expected,
            got: len,
        })
    }
}

/// A weight format's micro-kernel: dot products of a tile of `R` weight rows
/// with `A` activation rows.
pub(crate) trait Tiles: Sync + Sized {
    /// `[[dot(W[r + i], X[a + j]); A]; R]`.
    fn tile<const R: usize, const A: usize>(&self, r: usize, a: usize) -> [[f32; A]; R];

    /// `outs[i][j] = dot(W[r0 + j], X[i])` for m > 1 (default: 1 x 4 tiles,
    /// which share each unpacked weight block across 4 activation rows).
    fn gemm_chunk(&self, r0: usize, outs: &mut [&mut [f32]]) {
        tiled_chunk::<Self, 1, 4>(self, r0, outs);
    }
}

/// Weight rows per tile in decode (m == 1).
const GEMV_ROWS: usize = 4;

/// Computes `out (m x rows)` with `k`, splitting weight rows across the
/// team's tasks; `row_bytes` (bytes per weight row) sizes the chunks.
fn run<K: Tiles>(k: &K, rows: usize, m: usize, row_bytes: usize, out: &mut [f32]) {
    if rows == 0 || m == 0 {
        return;
    }
    let chunk = chunk_rows(rows, m, row_bytes);
    // Task t gets, for every activation row, the output columns of its chunk.
    let n_tasks = rows.div_ceil(chunk);
    let mut tasks: Vec<Vec<&mut [f32]>> = (0..n_tasks).map(|_| Vec::with_capacity(m)).collect();
    for out_row in out.chunks_mut(rows) {
        for (task, part) in tasks.iter_mut().zip(out_row.chunks_mut(chunk)) {
            task.push(part);
        }
    }
    // Each task locks only its own slot (never contended).
    let tasks: Vec<Mutex<Vec<&mut [f32]>>> = tasks.into_iter().map(Mutex::new).collect();
    team::parallel_for(n_tasks, |t| {
        let mut outs = tasks[t].lock().unwrap_or_else(|p| p.into_inner());
        compute_chunk(k, t * chunk, &mut outs);
    });
}

/// Rows per task: for decode, a few balanced chunks of >= 64 rows; for
/// m > 1, chunks of ~64 KiB of weights that stay cache-resident while all
/// activation rows pass over them.
fn chunk_rows(rows: usize, m: usize, row_bytes: usize) -> usize {
    let threads = team::threads();
    let n_tasks = if m == 1 {
        let n = (rows / 64).clamp(1, 4 * threads);
        if n > threads {
            n / threads * threads
        } else {
            n
        }
    } else {
        let per_chunk = (64 * 1024 / row_bytes.max(1)).max(GEMV_ROWS);
        rows.div_ceil(per_chunk).max(threads.min(rows))
    };
    rows.div_ceil(n_tasks).next_multiple_of(GEMV_ROWS)
}

/// Fills `outs[i][j] = dot(W[r0 + j], X[i])` for one chunk of weight rows.
fn compute_chunk<K: Tiles>(k: &K, r0: usize, outs: &mut [&mut [f32]]) {
    if outs.len() == 1 {
        tiled_chunk::<K, GEMV_ROWS, 1>(k, r0, outs);
    } else {
        k.gemm_chunk(r0, outs);
    }
}

/// [`compute_chunk`] with `R x A` tiles; leftover rows use `1 x A` tiles and
/// leftover activation rows `1 x 1` tiles.
fn tiled_chunk<K: Tiles, const R: usize, const A: usize>(
    k: &K,
    r0: usize,
    outs: &mut [&mut [f32]],
) {
    let n = outs[0].len();
    for (t, acts) in outs.chunks_mut(A).enumerate() {
        let a = t * A;
        if acts.len() < A {
            for (i, out) in acts.iter_mut().enumerate() {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = k.tile::<1, 1>(r0 + j, a + i)[0][0];
                }
            }
            continue;
        }
        let full = n / R * R;
        for j in (0..full).step_by(R) {
            store(k.tile::<R, A>(r0 + j, a), acts, j);
        }
        for j in full..n {
            store(k.tile::<1, A>(r0 + j, a), acts, j);
        }
    }
}

/// Writes tile `t` (weight rows `j..j + R` x activation rows `acts`).
fn store<const R: usize, const A: usize>(t: [[f32; A]; R], acts: &mut [&mut [f32]], j: usize) {
    for (i, row) in t.iter().enumerate() {
        for (out, v) in acts.iter_mut().zip(row) {
            out[j + i] = *v;
        }
    }
}
