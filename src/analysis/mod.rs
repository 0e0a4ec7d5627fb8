//! Layer-contribution analysis: residual-stream figures per block, logit lens,
//! perplexity and ablation, and their output as tables, CSV, SVG plots and an
//! HTML report.

pub mod chart;
pub mod figure;
pub mod findings;
pub mod html;
pub mod lens;
pub mod massive;
pub mod perplexity;
pub mod plot;
pub mod residual;
pub mod run;
pub mod stats;
pub mod table;

pub use figure::{Figure, PerFigure};
pub use run::{analyze, AnalyzeOptions, Figures};
