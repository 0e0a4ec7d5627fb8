//! normscope: an inference runtime and laboratory for pretrained LLaMA-style
//! language models. It loads Hugging Face safetensors folders and GGUF files,
//! generates text, and reports what every block does to the residual stream.

pub mod analysis;
pub mod bench;
pub mod device;
pub mod error;
pub mod generate;
pub mod kernels;
pub mod model;
pub mod output;
pub mod progress;
pub mod quantize;
pub mod rng;
pub mod variants;
pub mod weights;

pub use error::{Error, Result};
