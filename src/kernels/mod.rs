//! CPU matrix-product kernels for every GGUF weight format (F32, F16,
//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) and causal attention.
//!
//! A [`PackedMatrix`] holds a `rows x cols` weight matrix in its format,
//! repacked at load time into groups of 8 interleaved rows, and computes
//! `out (m x rows) = x (m x cols) * W^T` for decode (m = 1) and prefill
//! (m > 1, register-tiled over several activation rows). Quantized formats
//! quantize the activations as ggml does (Q8_0 / Q8_1 / Q8_K) and use exact
//! integer dot products. Output row groups are split across the kernel
//! thread team ([`team`]; its size is rayon's thread count).
//!
//! Layers (imports point down only):
//! * `format`, `error`, `isa`, `buffer`, `cache`, `team`, `f16_row`: leaves.
//! * `act`: activation quantization.
//! * `ggml_f16`: llama.cpp's half-precision GELU table and f16 flash
//!   attention, for agreeing with it on quantized models.
//! * `formats/`: one file per block format (ggml layout, repacked layout,
//!   dequantization, scalar reference dot).
//! * `driver`: splits row groups into tasks for a `GroupKernel`.
//! * `scalar`, `x86/`: the kernels on each instruction set (x86: AVX2 and
//!   AVX-512 VNNI, chosen at run time, detected once).
//! * `packed`: the public [`PackedMatrix`], the one place that picks a
//!   format's kernel and an instruction set.
//!
//! This module is self-contained (std, half, rayon only).

mod act;
mod attention;
mod buffer;
mod cache;
mod driver;
mod error;
mod f16_row;
mod format;
mod formats;
mod ggml_f16;
mod isa;
mod packed;
mod scalar;
pub(crate) mod team;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use attention::{attend, AttentionShape};
pub use error::KernelError;
pub use f16_row::round_f16;
pub use format::WeightFormat;
pub use ggml_f16::{attend_f16, gelu_tanh_f16};
pub use packed::PackedMatrix;
