//! Checkpoints: the formats (safetensors folders, GGUF, random weights), the
//! hub cache and the default model's fetch, tokenizers, GGUF -> Hugging Face
//! conversion, validation of untrusted bytes, and the loader that turns a
//! `--model` spec into a [`LoadedModel`].

pub mod check;
pub mod convert;
pub mod fetch;
pub mod folder;
pub mod gguf;
pub mod gguf_config;
pub mod hub;
pub mod load;
pub mod random;
pub mod safetensors;
pub mod tokenizer;
pub mod unused;
pub mod validate;

pub use check::WeightCheck;
pub use folder::ChatTemplate;
pub use load::{load, load_with, resolve, LoadedModel};

/// How a checkpoint is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A Hugging Face folder with safetensors weights.
    Safetensors,
    /// A GGUF file (quantized path).
    Gguf,
}
