//! [`PackedMatrix`]: a weight matrix in any supported format, repacked
//! into interleaved row groups, with its matrix product and row lookup.

use std::sync::Mutex;

use half::f16;

use super::act::{self, QuantActs};
use super::buffer::AlignedBuf;
use super::driver::run;
use super::error::check_len;
use super::formats::block32::Blocks;
use super::formats::dense::{self, DenseElem};
use super::formats::kscale::ScaleMin;
use super::formats::{q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, QuantFormat, GROUP};
use super::isa::Isa;
use super::scalar::{ScalarDense, ScalarQuant};
use super::team;
use super::{KernelError, WeightFormat};

/// Runs `$quant` with `$F` the quantized format type, or `$dense` with
/// `$E` the dense element type, for the runtime format `$format`.
macro_rules! by_format {
    ($format:expr, $F:ident => $quant:expr, $E:ident => $dense:expr) => {
        match $format {
            WeightFormat::F32 => {
                type $E = f32;
                $dense
            }
            WeightFormat::F16 => {
                type $E = f16;
                $dense
            }
            WeightFormat::Q4_0 => by_format!(@q $F = Blocks<q4_0::Q4_0>, $quant),
            WeightFormat::Q4_1 => by_format!(@q $F = Blocks<q4_1::Q4_1>, $quant),
            WeightFormat::Q5_0 => by_format!(@q $F = Blocks<q5_0::Q5_0>, $quant),
            WeightFormat::Q5_1 => by_format!(@q $F = Blocks<q5_1::Q5_1>, $quant),
            WeightFormat::Q8_0 => by_format!(@q $F = Blocks<q8_0::Q8_0>, $quant),
            WeightFormat::Q4_K => by_format!(@q $F = ScaleMin<q4_k::Q4K>, $quant),
            WeightFormat::Q5_K => by_format!(@q $F = ScaleMin<q5_k::Q5K>, $quant),
            WeightFormat::Q6_K => by_format!(@q $F = q6_k::Q6K, $quant),
        }
    };
    (@q $F:ident = $t:ty, $quant:expr) => {{
        type $F = $t;
        $quant
    }};
}

/// A `rows x cols` weight matrix for `out = x W^T`, held in its GGUF format
/// (quantized blocks keep their bits; rows are repacked into interleaved
/// groups of 8, see `formats`). One value serves as a linear map and, by
/// [`PackedMatrix::dequantize_rows`], as an embedding table.
#[derive(Clone)]
pub struct PackedMatrix {
    format: WeightFormat,
    rows: usize,
    cols: usize,
    data: AlignedBuf,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedMatrix({} {}x{})",
            self.format, self.rows, self.cols
        )
    }
}

impl PackedMatrix {
    /// Packs raw ggml data (`rows` rows of `cols` values, row-major, as a
    /// GGUF tensor stores it: F32/F16 little-endian, quantized as blocks).
    pub fn from_ggml(
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self, KernelError> {
        let row_bytes = format.row_bytes(cols)?;
        let len = rows.checked_mul(row_bytes).ok_or(KernelError::TooLarge)?;
        check_len("bytes", bytes.len(), len)?;
        by_format!(format,
            F => Ok(repack_quant::<F>(rows, cols, bytes)),
            E => Ok(repack_dense::<E>(rows, cols, &decode_le::<E>(bytes)))
        )
    }

    /// Packs row-major f32 weights.
    pub fn from_f32(rows: usize, cols: usize, w: Vec<f32>) -> Result<Self, KernelError> {
        let len = rows.checked_mul(cols).ok_or(KernelError::TooLarge)?;
        check_len("w", w.len(), len)?;
        Ok(repack_dense(rows, cols, &w))
    }

    /// Packs row-major f16 weights.
    pub fn from_f16(rows: usize, cols: usize, w: Vec<f16>) -> Result<Self, KernelError> {
        let len = rows.checked_mul(cols).ok_or(KernelError::TooLarge)?;
        check_len("w", w.len(), len)?;
        Ok(repack_dense(rows, cols, &w))
    }

    /// The weight format.
    pub fn format(&self) -> WeightFormat {
        self.format
    }

    /// Output features (rows of W).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features (columns of W).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held (rows padded to whole groups of 8).
    pub fn storage_bytes(&self) -> usize {
        self.data.len()
    }

    /// `out (m x rows) = x (m x cols) W^T`. Quantized formats first quantize
    /// `x` as ggml does (Q8_0, Q8_1 or Q8_K).
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<(), KernelError> {
        self.matmul_on(Isa::detect(), x, m, out)
    }

    /// [`PackedMatrix::matmul`] on a given instruction set (at most
    /// [`Isa::detect`]'s).
    pub(crate) fn matmul_on(
        &self,
        isa: Isa,
        x: &[f32],
        m: usize,
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        assert!(isa <= Isa::detect(), "{isa:?} is not available on this CPU");
        check_len(
            "x",
            x.len(),
            m.checked_mul(self.cols).ok_or(KernelError::TooLarge)?,
        )?;
        check_len(
            "out",
            out.len(),
            m.checked_mul(self.rows).ok_or(KernelError::TooLarge)?,
        )?;
        by_format!(self.format,
            F => quant_matmul::<F>(isa, self, x, m, out),
            E => dense_matmul::<E>(isa, self, x, m, out)
        );
        Ok(())
    }

    /// Rows `ids` of W, dequantized as ggml does, into `out`
    /// (`ids.len() x cols`): an embedding lookup.
    pub fn dequantize_rows(&self, ids: &[u32], out: &mut [f32]) -> Result<(), KernelError> {
        check_len(
            "out",
            out.len(),
            ids.len()
                .checked_mul(self.cols)
                .ok_or(KernelError::TooLarge)?,
        )?;
        for (&id, out) in ids.iter().zip(out.chunks_exact_mut(self.cols.max(1))) {
            let r = id as usize;
            if r >= self.rows {
                return Err(KernelError::RowOutOfRange {
                    row: r,
                    rows: self.rows,
                });
            }
            by_format!(self.format,
                F => dequantize_quant_row::<F>(self, r, out),
                E => dense::row::<E>(self.data.as_slice(), self.cols, r, out)
            );
        }
        Ok(())
    }

    /// Row `r` as ggml blocks (the inverse of the repacking; for tests).
    #[cfg(test)]
    pub(crate) fn ggml_row(&self, r: usize) -> Vec<u8> {
        by_format!(self.format,
            F => {
                let mut row = vec![0; self.cols / F::VALUES * F::BYTES];
                unpack_row::<F>(self, r, &mut row);
                row
            },
            E => unreachable!("{:?} is not quantized", std::any::type_name::<E>())
        )
    }
}

/// Repacks ggml blocks into group blocks (groups in parallel on the
/// kernel team); rows past `rows` are zero.
fn repack_quant<F: QuantFormat>(rows: usize, cols: usize, bytes: &[u8]) -> PackedMatrix {
    let nb = cols / F::VALUES;
    let (row_bytes, group_bytes) = (nb * F::BYTES, nb * F::GROUP_BYTES);
    let groups = rows.div_ceil(GROUP);
    let mut data = AlignedBuf::zeroed(groups * group_bytes);
    let zero = vec![0u8; F::BYTES];
    let per_task = groups.div_ceil(16 * team::threads()).max(1);
    let tasks: Vec<Mutex<&mut [u8]>> = data
        .as_mut_slice::<u8>()
        .chunks_mut((per_task * group_bytes).max(1))
        .map(Mutex::new)
        .collect();
    team::parallel_for(tasks.len(), |t| {
        let mut out = tasks[t].lock().unwrap_or_else(|p| p.into_inner());
        for (i, out) in out.chunks_exact_mut(group_bytes).enumerate() {
            let g = t * per_task + i;
            for (b, out) in out.chunks_exact_mut(F::GROUP_BYTES).enumerate() {
                let blocks = std::array::from_fn(|lane| {
                    let r = g * GROUP + lane;
                    if r < rows {
                        &bytes[r * row_bytes + b * F::BYTES..][..F::BYTES]
                    } else {
                        &zero[..]
                    }
                });
                F::repack(blocks, out);
            }
        }
    });
    drop(tasks);
    PackedMatrix {
        format: F::FORMAT,
        rows,
        cols,
        data,
    }
}

/// Row `r`'s ggml blocks.
fn unpack_row<F: QuantFormat>(w: &PackedMatrix, r: usize, out: &mut [u8]) {
    let nb = w.cols / F::VALUES;
    let group = &w.data.as_slice::<u8>()[r / GROUP * nb * F::GROUP_BYTES..][..nb * F::GROUP_BYTES];
    for (b, blk) in out.chunks_exact_mut(F::BYTES).enumerate() {
        F::unpack(&group[b * F::GROUP_BYTES..], r % GROUP, blk);
    }
}

fn dequantize_quant_row<F: QuantFormat>(w: &PackedMatrix, r: usize, out: &mut [f32]) {
    let mut row = vec![0; w.cols / F::VALUES * F::BYTES];
    unpack_row::<F>(w, r, &mut row);
    for (blk, out) in row
        .chunks_exact(F::BYTES)
        .zip(out.chunks_exact_mut(F::VALUES))
    {
        F::dequantize(blk, out);
    }
}

/// Little-endian F32 / F16 values.
fn decode_le<E: DenseElem>(bytes: &[u8]) -> Vec<E> {
    let mut v = vec![E::default(); bytes.len() / size_of::<E>()];
    for (v, b) in v.iter_mut().zip(bytes.chunks_exact(size_of::<E>())) {
        *v = E::from_le(b);
    }
    v
}

fn repack_dense<E: DenseElem>(rows: usize, cols: usize, w: &[E]) -> PackedMatrix {
    let mut data =
        AlignedBuf::zeroed(rows.div_ceil(GROUP) * dense::group_len(cols) * size_of::<E>());
    dense::repack(w, rows, cols, data.as_mut_slice());
    PackedMatrix {
        format: E::FORMAT,
        rows,
        cols,
        data,
    }
}

/// The quantized matmul on `isa`: the one place that picks an instruction set.
fn quant_matmul<F: KernelFormat>(isa: Isa, w: &PackedMatrix, x: &[f32], m: usize, out: &mut [f32]) {
    let acts = QuantActs::quantize_with(F::ACT, x, w.cols, q8_for(isa));
    let bytes = w.data.as_slice::<u8>();
    let group_bytes = w.cols / F::VALUES * F::GROUP_BYTES;
    match isa {
        Isa::Scalar => {
            let k = ScalarQuant::<F> {
                w: bytes,
                rows: w.rows,
                acts: &acts,
                format: std::marker::PhantomData,
            };
            run(&k, w.rows, m, group_bytes, out)
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_on` checked that the CPU supports `isa`.
        Isa::Avx2 => run(
            &unsafe { x86::Quant::<F, x86::Avx2>::new(bytes, &acts) },
            w.rows,
            m,
            group_bytes,
            out,
        ),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 => run(
            &unsafe { x86::Quant::<F, x86::Avx512>::new(bytes, &acts) },
            w.rows,
            m,
            group_bytes,
            out,
        ),
    }
}

/// The Q8 and Q8_K activation quantizers for `isa` (all give identical
/// results).
fn q8_for(isa: Isa) -> (act::Q8Fn, act::Q8KFn) {
    match isa {
        Isa::Scalar => (act::quantize_q8, act::quantize_q8k),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => (
            |x, qs, d, sums| {
                // SAFETY: `Isa::Avx2` and above are only detected with AVX2 and FMA.
                unsafe { x86::act::quantize_q8(x, qs, d, sums) }
            },
            |x, qs, d, sums, bsums| {
                // SAFETY: as above.
                unsafe { x86::act::quantize_q8k(x, qs, d, sums, bsums) }
            },
        ),
    }
}

/// The dense matmul on `isa`.
fn dense_matmul<E: KernelElem>(isa: Isa, w: &PackedMatrix, x: &[f32], m: usize, out: &mut [f32]) {
    let (cols, ws) = (dense::stored_cols(w.cols), w.data.as_slice::<E>());
    let group_bytes = dense::group_len(cols) * size_of::<E>();
    // The kernels step over whole column pairs: odd-width rows get a zero.
    let padded;
    let x = if cols == w.cols {
        x
    } else {
        padded = dense::pad_rows(x, w.cols);
        &padded[..]
    };
    match isa {
        Isa::Scalar => run(
            &ScalarDense {
                w: ws,
                rows: w.rows,
                cols,
                x,
            },
            w.rows,
            m,
            group_bytes,
            out,
        ),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_on` checked that the CPU supports `isa`.
        Isa::Avx2 => run(
            &unsafe { x86::Dense::<E, x86::Avx2>::new(ws, cols, x) },
            w.rows,
            m,
            group_bytes,
            out,
        ),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 => run(
            &unsafe { x86::Dense::<E, x86::Avx512>::new(ws, cols, x) },
            w.rows,
            m,
            group_bytes,
            out,
        ),
    }
}

#[cfg(target_arch = "x86_64")]
use super::x86;

/// A quantized format with kernels on every instruction set of this target.
#[cfg(target_arch = "x86_64")]
trait KernelFormat: QuantFormat + x86::SimdFormat {}
#[cfg(target_arch = "x86_64")]
impl<F: QuantFormat + x86::SimdFormat> KernelFormat for F {}
#[cfg(not(target_arch = "x86_64"))]
trait KernelFormat: QuantFormat {}
#[cfg(not(target_arch = "x86_64"))]
impl<F: QuantFormat> KernelFormat for F {}

/// A dense element type with kernels on every instruction set of this target.
#[cfg(target_arch = "x86_64")]
trait KernelElem: DenseElem + x86::DenseSimd {}
#[cfg(target_arch = "x86_64")]
impl<E: DenseElem + x86::DenseSimd> KernelElem for E {}
#[cfg(not(target_arch = "x86_64"))]
trait KernelElem: DenseElem {}
#[cfg(not(target_arch = "x86_64"))]
impl<E: DenseElem> KernelElem for E {}
