//! Subcommands and the options every command shares.

mod convert;
mod fetch;
mod generate;

use std::io::Write;

use candle_core::{DType, Device};
use clap::{Args, Parser, Subcommand};
use normscope::device::{compute_dtype, parse_device, parse_dtype};
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
    /// A Hugging Face folder, a .gguf file, or a hub repo id (default: SmolLM2-135M-Instruct, fetched on first use).
    #[arg(long, global = true)]
    pub model: Option<String>,
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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring the default model into models/ (GGUF and converted float32 folder), verified by sha256.
    Fetch(fetch::FetchArgs),
    /// Convert a GGUF file into a Hugging Face folder.
    Convert(convert::ConvertArgs),
    /// Generate text from a prompt, streaming it to stdout.
    Generate(generate::GenerateArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Fetch(a) => fetch::run(&cli.common, a),
        Command::Convert(a) => convert::run(&cli.common, a),
        Command::Generate(a) => generate::run(&cli.common, a),
    }
}

impl Common {
    /// The device and compute dtype asked for.
    pub fn device_and_dtype(&self) -> normscope::Result<(Device, DType)> {
        let device = parse_device(&self.device)?;
        let dtype = compute_dtype(parse_dtype(&self.dtype)?, &device);
        Ok((device, dtype))
    }

    /// Loads `--model` (or the default model).
    pub fn load_model(&self) -> normscope::Result<LoadedModel> {
        let (device, dtype) = self.device_and_dtype()?;
        let started = std::time::Instant::now();
        let lm = weights::load(self.model.as_deref(), &device, dtype)?;
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

/// The error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
