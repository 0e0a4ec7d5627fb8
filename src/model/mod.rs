//! The LLaMA model: configuration, layers, and the observer seam.

pub mod attention;
pub mod block;
pub mod config;
pub mod embedding;
pub mod kv_cache;
pub mod linear;
pub mod llama;
pub mod mlp;
pub mod norm;
pub mod observer;
pub mod placement;
pub mod quantize;
pub mod rope;

pub use config::Config;
pub use llama::{KvState, Llama};
pub use observer::Observer;
pub use placement::Placement;
