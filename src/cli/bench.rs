//! `normscope bench`: prompt-processing and generation throughput, llama-bench style.

use std::path::PathBuf;

use clap::Args;
use normscope::bench::{self, memory, Weights};
use normscope::model::quantize::parse_isq;
use normscope::weights::fetch;

use super::{print_json, Common};

/// Bytes the `--mem-bw` probe reads: far larger than any CPU cache.
const PROBE_BYTES: usize = 1 << 30;

/// What `--json` prints: the records, fields in their declared order.
#[derive(serde::Serialize)]
struct Output<'a> {
    records: &'a [bench::Record],
}

/// `normscope bench`'s own flags (llama-bench's `-p`, `-n`, `-r`).
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: super::ModelArgs,
    /// Prompt lengths to process, e.g. `128,512` (0 skips prompt tests).
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_delimiter = ',',
        default_value = "512"
    )]
    pub n_prompt: Vec<usize>,
    /// Token counts to generate, e.g. `128` (0 skips generation tests).
    #[arg(
        short = 'n',
        long = "n-gen",
        value_delimiter = ',',
        default_value = "128"
    )]
    pub n_gen: Vec<usize>,
    /// Timed repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub repetitions: usize,
    /// Quantize a safetensors model's linear maps after loading: q8_0, q4_0, q4_1 or q4k.
    #[arg(long)]
    pub quantize: Option<String>,
    /// Benchmark random weights shaped by this config.json instead of a checkpoint.
    #[arg(long)]
    pub random_init: Option<PathBuf>,
    /// Also measure the machine's memory-read bandwidth (reads a 1 GiB buffer).
    #[arg(long)]
    pub mem_bw: bool,
}

/// Loads the model, runs the tests and prints the table (or, with `--json`, the records).
pub fn run(common: &Common, args: BenchArgs) -> anyhow::Result<()> {
    // A speed benchmark defaults to the default model's GGUF (Q4_1), not its float32 folder.
    let default_gguf = match (&args.random_init, &args.model.model) {
        (None, None) => Some(fetch::fetch_default()?.gguf.to_string_lossy().into_owned()),
        _ => None,
    };
    let spec = args.model.model.as_deref().or(default_gguf.as_deref());
    let weights = match (&args.random_init, spec) {
        (Some(cfg), None) => Weights::Random(cfg),
        (Some(_), Some(_)) => anyhow::bail!("--random-init and --model exclude each other"),
        (None, spec) => Weights::Checkpoint(spec),
    };
    let quantize = args.quantize.as_deref().map(parse_isq).transpose()?;
    let tests = bench::plan(&args.n_prompt, &args.n_gen, args.repetitions)?;
    let (device, dtype) = args.model.runtime.device_and_dtype()?;
    let bm = bench::load(
        weights,
        &device,
        dtype,
        quantize,
        args.model.runtime.weight_check(),
    )?;
    let mut records = bench::run(&bm, &tests, args.repetitions, &mut |r| {
        eprintln!("{}: {:.2} ± {:.2} t/s", r.test, r.avg_ts, r.stddev_ts);
    })?;
    if args.mem_bw {
        let bw = memory::read_bandwidth_gb_per_s(PROBE_BYTES, bm.info.n_threads, 5);
        for r in &mut records {
            r.mem_read_gb_per_s = Some(bw);
        }
    }
    if common.json {
        return print_json(&Output { records: &records });
    }
    // Which file was measured, just above the table (stdout stays the table).
    eprint!("{}", bench::report::model_lines(&records));
    print!("{}", bench::report::markdown(&records));
    Ok(())
}
