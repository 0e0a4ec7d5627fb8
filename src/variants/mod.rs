//! Norm-placement variants of a pretrained Pre-Norm checkpoint and the
//! experiment around them: the weight maps (pre -> post / deepnorm /
//! lnscale), checkpoints on disk, full-parameter fine-tuning with per-layer
//! metrics, and the comparison report across runs.

pub mod checkpoint;
pub mod compare;
pub mod data;
pub mod heldout;
pub mod metrics;
pub mod optim;
pub mod report;
pub mod run_files;
pub mod train;
pub mod trainable;
pub mod transform;

pub use run_files::RunFiles;
pub use train::{finetune, Progress, RunInfo, Start, TrainSettings};
pub use trainable::Trainable;
pub use transform::{make_variant, model_tensors};
