//! Subcommands and the options every command shares.

mod analyze;
mod bench;
mod compare;
mod convert;
mod fetch;
mod finetune;
mod generate;
mod perplexity;
mod quantize;
mod text;
mod variant;

use std::io::Write;

use candle_core::{DType, Device};
use clap::{Args, Parser, Subcommand};
use normscope::device::{compute_dtype, parse_device, parse_dtype};
use normscope::model::LoadOptions;
use normscope::weights::{self, LoadedModel};

/// Inference runtime and laboratory for pretrained LLaMA-style models.
#[derive(Debug, Parser)]
#[command(name = "normscope", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// A Hugging Face folder, a .gguf file, or a hub repo id (default: SmolLM2-135M-Instruct, fetched on first use); `analyze` takes several.
    #[arg(long, global = true)]
    pub model: Vec<String>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, global = true, default_value = "cpu")]
    pub device: String,
    /// Compute dtype for safetensors models: f32, f16 or bf16 (GGUF always computes in f32).
    #[arg(long, global = true, default_value = "f32")]
    pub dtype: String,
    /// Print exactly one JSON object on stdout (logs go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// CPU threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Log more (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Scan every weight for NaN and Inf at load (by default only norms and the embedding).
    #[arg(long, global = true)]
    pub check_weights: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring the default model into models/ (GGUF and converted float32 folder), verified by sha256.
    Fetch(fetch::FetchArgs),
    /// Convert a GGUF file into a Hugging Face folder.
    Convert(convert::ConvertArgs),
    /// Write a GGUF of one llama.cpp file type (f32 ... q6_k, q4_k_m, q5_k_m) from a GGUF or a Hugging Face folder.
    Quantize(quantize::QuantizeArgs),
    /// Generate text from a prompt, streaming it to stdout.
    Generate(generate::GenerateArgs),
    /// Per-block residual-stream figures, logit lens and ablation on a prompt or a text file.
    Analyze(analyze::AnalyzeArgs),
    /// Perplexity over non-overlapping windows of a text file.
    Perplexity(perplexity::PerplexityArgs),
    /// Prompt-processing and generation tokens/sec, llama-bench style.
    Bench(bench::BenchArgs),
    /// Write a Post-Norm, DeepNorm or LayerNorm-scaling variant of a Pre-Norm checkpoint.
    Variant(variant::VariantArgs),
    /// Fine-tune a checkpoint (or its variant) on a text, logging loss and per-layer figures.
    Finetune(finetune::FinetuneArgs),
    /// Compare fine-tuning runs: loss curves, held-out perplexity, per-layer contribution.
    Compare(compare::CompareArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Fetch(a) => fetch::run(&cli.common, a),
        Command::Convert(a) => convert::run(&cli.common, a),
        Command::Quantize(a) => quantize::run(&cli.common, a),
        Command::Generate(a) => generate::run(&cli.common, a),
        Command::Analyze(a) => analyze::run(&cli.common, a),
        Command::Perplexity(a) => perplexity::run(&cli.common, a),
        Command::Bench(a) => bench::run(&cli.common, a),
        Command::Variant(a) => variant::run(&cli.common, a),
        Command::Finetune(a) => finetune::run(&cli.common, a),
        Command::Compare(a) => compare::run(&cli.common, a),
    }
}

impl Common {
    /// The device and compute dtype asked for (saying so when bf16 has to
    /// compute in f32).
    pub fn device_and_dtype(&self) -> normscope::Result<(Device, DType)> {
        let device = parse_device(&self.device)?;
        let requested = parse_dtype(&self.dtype)?;
        let dtype = compute_dtype(requested, &device);
        if dtype != requested {
            eprintln!("note: bf16 matmul is not available on CPU; computing in f32");
        }
        Ok((device, dtype))
    }

    /// Which weights to scan for NaN and Inf.
    pub fn weight_check(&self) -> weights::WeightCheck {
        if self.check_weights {
            weights::WeightCheck::All
        } else {
            weights::WeightCheck::Cheap
        }
    }

    /// Loads `--model` (or the default model) for inference; more than one is an error.
    pub fn load_model(&self) -> normscope::Result<LoadedModel> {
        self.load_one(false)
    }

    /// Loads `--model` with dense weights, as variants and fine-tuning need them.
    pub fn load_dense_model(&self) -> normscope::Result<LoadedModel> {
        self.load_one(true)
    }

    fn load_one(&self, training: bool) -> normscope::Result<LoadedModel> {
        if self.model.len() > 1 {
            return Err(normscope::Error::usage(format!(
                "--model was given {} times; only `analyze` compares several models",
                self.model.len()
            )));
        }
        self.load_spec_with(self.model.first().map(String::as_str), training)
    }

    /// Loads one model spec (`None`: the default model) for inference.
    pub fn load_spec(&self, spec: Option<&str>) -> normscope::Result<LoadedModel> {
        self.load_spec_with(spec, false)
    }

    fn load_spec_with(&self, spec: Option<&str>, training: bool) -> normscope::Result<LoadedModel> {
        let (device, dtype) = self.device_and_dtype()?;
        let started = std::time::Instant::now();
        let opts = LoadOptions {
            training,
            ..LoadOptions::inference(dtype, &device)
        };
        let lm = weights::load_with(spec, &opts, self.weight_check())?;
        tracing::info!(
            "loaded {} in {:.2}s",
            lm.path.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(lm)
    }
}

/// Prints `value` as the one JSON object on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
        )
        .expect("progress template is valid"),
    );
    bar.set_message(what.to_string());
    bar
}

/// The exit status of a run stopped by SIGINT (128 + 2, as shells report it).
pub const INTERRUPTED_EXIT: i32 = 130;

/// On SIGINT (Ctrl-C): remove every partial output, say so, exit with 130.
pub fn install_interrupt_handler() {
    let handler = || {
        match normscope::output::remove_partial_outputs() {
            0 => eprintln!("error: interrupted"),
            n => eprintln!(
                "error: interrupted; removed {n} partial output(s), previous outputs are untouched"
            ),
        }
        std::process::exit(INTERRUPTED_EXIT);
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        tracing::debug!("no SIGINT cleanup: {e}");
    }
}

/// Logs go to stderr; `-v` shows info, `-vv` debug.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}

/// True when the error is a closed stdout (`normscope generate | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io = c.downcast_ref::<std::io::Error>().or_else(|| {
            match c.downcast_ref::<normscope::Error>() {
                Some(normscope::Error::Io { source, .. }) => Some(source),
                _ => None,
            }
        });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error as the command line words it: a library setting is named by
/// its flag (`top_p` -> `--top-p`), an existing output by how to replace it.
fn cli_message(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<normscope::Error>() {
        Some(normscope::Error::Setting { name, msg }) => {
            format!("--{} {msg}", name.replace('_', "-"))
        }
        Some(normscope::Error::Exists(path)) => {
            format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )
        }
        _ => e.to_string(),
    }
}

/// The error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cli_message(cause).replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
