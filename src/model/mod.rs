//! The model: configuration, the tensor layout declared once, the loading
//! seam, the layers, and the observer seam. Everything here depends only on
//! candle and [`crate::kernels`]; checkpoint formats live in [`crate::weights`].

pub mod attention;
pub mod block;
pub mod config;
pub mod embedding;
pub mod kv_cache;
pub mod layout;
pub mod linear;
pub mod load;
pub mod mlp;
pub mod norm;
pub mod observer;
pub mod placement;
pub mod quantize;
pub mod rope;
pub mod source;
pub mod transformer;

pub use config::Config;
pub use kv_cache::KvState;
pub use load::LoadOptions;
pub use observer::Observer;
pub use placement::Placement;
pub use source::TensorSource;
pub use transformer::{Model, Weight};
