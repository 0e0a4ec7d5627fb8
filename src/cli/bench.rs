//! `normscope bench`: prompt-processing and generation throughput, llama-bench style.

use std::path::PathBuf;

use clap::Args;
use normscope::bench::{self, memory, Weights};
use normscope::model::quantize::parse_isq;
use normscope::weights::fetch;

use super::{out, print_json, Common};

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
    /// GGUF files, Hugging Face folders, hub repo ids `owner/name` or names `fetch` knows (their GGUF), repeated or comma-separated: one table, a row per file per test (default: the default model's GGUF).
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    #[command(flatten)]
    pub runtime: super::Runtime,
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
    // So is a name `fetch` knows.
    let default_gguf = match (&args.random_init, args.model.is_empty()) {
        (None, true) => Some(super::shown_path(&fetch::fetch_default()?.gguf)),
        _ => None,
    };
    let given = args
        .model
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| {
            Ok(match super::known_model(m)? {
                Some(f) => super::shown_path(&f.gguf),
                None => m.clone(),
            })
        })
        .collect::<normscope::Result<Vec<String>>>()?;
    let specs: Vec<&str> = given
        .iter()
        .map(String::as_str)
        .chain(default_gguf.as_deref())
        .collect();
    let weights: Vec<Weights> = match (&args.random_init, specs.as_slice()) {
        (Some(cfg), []) => vec![Weights::Random(cfg)],
        (Some(_), _) => anyhow::bail!("--random-init and --model exclude each other"),
        (None, many) => many.iter().map(|m| Weights::Checkpoint(Some(m))).collect(),
    };
    let quantize = args.quantize.as_deref().map(parse_isq).transpose()?;
    let tests = bench::plan(&args.n_prompt, &args.n_gen, args.repetitions)?;
    let (device, dtype) = args.runtime.device_and_dtype()?;
    let mut records = Vec::new();
    let mut n_threads = 1;
    for w in weights {
        // Each model is dropped before the next loads, so that each one's
        // peak resident memory is its own.
        let bm = bench::load(w, &device, dtype, quantize, args.runtime.weight_check())?;
        n_threads = bm.info.n_threads;
        records.extend(bench::run(&bm, &tests, args.repetitions, &mut |r| {
            out::eprintln(format_args!(
                "{}: {:.2} ± {:.2} t/s",
                r.test, r.avg_ts, r.stddev_ts
            ));
        })?);
    }
    if args.mem_bw {
        let bw = memory::read_bandwidth_gb_per_s(PROBE_BYTES, n_threads, 5);
        for r in &mut records {
            r.mem_read_gb_per_s = Some(bw);
        }
    }
    if common.json {
        return print_json(&Output { records: &records });
    }
    // Which file was measured, just above the table (stdout stays the table).
    out::eprintln(bench::report::model_lines(&records).trim_end());
    Ok(out::print(&bench::report::markdown(&records))?)
}
