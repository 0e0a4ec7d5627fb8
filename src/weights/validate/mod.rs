//! Validation of untrusted checkpoint bytes before any parser or allocation
//! trusts them. Each check is a pure function over bytes or a parsed value
//! that returns a plain message; callers attach the file name. The fuzz
//! targets under `fuzz/` drive these functions directly.

pub mod ggml_types;
pub mod gguf_header;
pub mod gguf_model;
pub mod json;
pub mod safetensors_header;
pub mod shard_index;
