//! `normscope bench`: prompt-processing and token-generation throughput in
//! the manner of llama-bench, on any weight format (safetensors in f32, f16 or
//! bf16, GGUF, in-situ quantized, or random weights of a given shape), with
//! time to first token, load time, peak resident memory and the memory
//! bandwidth each decode figure implies.

pub mod memory;
pub mod report;
pub mod runner;
pub mod size;

use std::path::Path;
use std::time::Instant;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, DeviceLocation};

pub use report::{ModelInfo, Record};
pub use runner::Test;

use crate::error::{Error, Result};
use crate::model::{Config, LoadOptions, Model};
use crate::weights::gguf::GgufFile;
use crate::weights::random::RandomSource;
use crate::weights::{self, Format, WeightCheck};

/// Where the benchmarked weights come from.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// A folder, `.gguf` file or hub repo id (`None`: the default model).
    Checkpoint(Option<&'a str>),
    /// Random weights shaped by this `config.json`.
    Random(&'a Path),
}

/// A model ready to benchmark, with the facts its records carry.
pub struct BenchModel {
    /// The network.
    pub model: Model,
    /// Model and machine facts.
    pub info: ModelInfo,
}

/// Loads `weights` on `device` in `dtype`, quantizing its linear maps in situ
/// to `quantize` when asked (then computing in f32), and times the load.
/// Afterwards the peak resident memory is reset, so that each record's peak
/// covers the runs rather than the load.
pub fn load(
    weights: Weights<'_>,
    device: &Device,
    dtype: DType,
    quantize: Option<GgmlDType>,
    check: WeightCheck,
) -> Result<BenchModel> {
    if quantize.is_some() && dtype != DType::F32 {
        return Err(Error::setting(
            "dtype",
            "must be f32 with in-situ quantization (it computes in f32, as GGUF does)",
        ));
    }
    let started = Instant::now();
    let opts = LoadOptions {
        quantize,
        ..LoadOptions::inference(dtype, device)
    };
    let (model, filename, source, gguf) = match weights {
        Weights::Checkpoint(spec) => {
            let lm = weights::load_with(spec, &opts, check)?;
            let (source, gguf) = match lm.format {
                Format::Safetensors => ("safetensors", None),
                Format::Gguf => ("gguf", Some(lm.path.clone())),
            };
            (lm.model, lm.path.display().to_string(), source, gguf)
        }
        Weights::Random(cfg_path) => {
            let cfg = Config::from_file(cfg_path)?;
            let src = RandomSource::new(dtype, device, cfg.tie_word_embeddings);
            let model = Model::load(&src, cfg, &opts)?;
            (
                model,
                format!("random:{}", cfg_path.display()),
                "random",
                None,
            )
        }
    };
    device.synchronize()?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let file_type = gguf.as_deref().and_then(file_type);
    let load_peak_rss_bytes = memory::peak_rss_bytes();
    if !memory::reset_peak_rss() {
        tracing::warn!("cannot reset the peak RSS; peak_rss_bytes includes the load");
    }
    let (device_name, backends) = match device.location() {
        DeviceLocation::Cpu => ("cpu".to_string(), "CPU"),
        DeviceLocation::Cuda { gpu_id } => (format!("cuda:{gpu_id}"), "CUDA"),
        DeviceLocation::Metal { gpu_id } => (format!("metal:{gpu_id}"), "Metal"),
    };
    let info = ModelInfo {
        filename,
        arch: model.cfg.architecture.gguf_name(),
        file_type,
        stats: size::model_stats(&model),
        source: source.to_string(),
        quantize: quantize.map(|q| format!("{q:?}").to_lowercase()),
        dtype: format!("{:?}", model.dtype()).to_lowercase(),
        device: device_name,
        backends: backends.to_string(),
        n_threads: candle_core::utils::get_num_threads(),
        load_ms,
        load_peak_rss_bytes,
    };
    Ok(BenchModel { model, info })
}

/// The `general.file_type` of the GGUF at `path`, when it records one.
fn file_type(path: &Path) -> Option<u32> {
    let file = GgufFile::open_any(path).ok()?;
    match file.content.metadata.get("general.file_type")? {
        Value::U32(t) => Some(*t),
        Value::I32(t) => u32::try_from(*t).ok(),
        _ => None,
    }
}

/// The tests `-p` and `-n` ask for, prompt tests first (zero lengths are
/// skipped, as llama-bench does), checked together with `repetitions`.
pub fn plan(n_prompt: &[usize], n_gen: &[usize], repetitions: usize) -> Result<Vec<Test>> {
    if repetitions == 0 {
        return Err(Error::setting("repetitions", "must be at least 1"));
    }
    let pp = n_prompt
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| Test::Prompt(n));
    let tg = n_gen.iter().filter(|&&n| n > 0).map(|&n| Test::Generate(n));
    let tests: Vec<Test> = pp.chain(tg).collect();
    if tests.is_empty() {
        return Err(Error::usage("no tests: give -p and/or -n a length above 0"));
    }
    Ok(tests)
}

/// Runs each test of a [`plan`] (a warm-up, then `repetitions` timed runs),
/// calling `on_record` as each finishes.
pub fn run(
    bm: &BenchModel,
    tests: &[Test],
    repetitions: usize,
    on_record: &mut dyn FnMut(&Record),
) -> Result<Vec<Record>> {
    let mut records = Vec::with_capacity(tests.len());
    for &test in tests {
        let m = runner::measure(&bm.model, test, repetitions)?;
        let record = Record::new(&bm.info, &m, memory::peak_rss_bytes());
        on_record(&record);
        records.push(record);
    }
    Ok(records)
}
