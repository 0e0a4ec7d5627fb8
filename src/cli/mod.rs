//! Subcommands and the options every command shares.

mod analyze;
mod bench;
mod compare;
mod convert;
mod fetch;
mod finetune;
mod generate;
pub mod out;
mod perplexity;
mod quantize;
mod reporter;
mod text;
mod variant;

use std::io::IsTerminal;
use std::path::Path;

use candle_core::{DType, Device};
use clap::{Args, Parser, Subcommand};
use normscope::device::{compute_dtype, parse_device, parse_dtype};
use normscope::model::LoadOptions;
use normscope::weights::fetch as fetched;
use normscope::weights::{self, LoadedModel};

/// Inference runtime and laboratory for pretrained LLaMA-style models.
#[derive(Debug, Parser)]
#[command(name = "normscope", version, about, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    /// `--model` given before the command (`normscope --model M generate ...`), as older scripts do.
    #[arg(long = "model", hide = true)]
    pub model_before_command: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Print exactly one JSON object on stdout (logs go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log more (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Report progress on stderr even when it is not a terminal (plain lines;
    /// on a terminal progress bars are drawn anyway).
    #[arg(long, global = true)]
    pub progress: bool,
}

/// How a command that runs a model runs it.
#[derive(Debug, Args)]
pub struct Runtime {
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype for safetensors models: f32, f16 or bf16 (GGUF always computes in f32).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// CPU threads, at least 1 (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Scan every weight for NaN and Inf at load (by default only norms and the embedding).
    #[arg(long)]
    pub check_weights: bool,
}

/// The model a one-model command loads, and how it runs it.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A Hugging Face folder, a .gguf file, a hub repo id `owner/name`, or a name `fetch` knows (smollm2-135m, gemma3-270m; fetched on first use) (default: SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub runtime: Runtime,
}

/// `--threads`: a count of at least 1 (leaving it out means all cores).
fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (leave --threads out to use all cores)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number of threads")),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring a known model (smollm2-135m, the default, or gemma3-270m) into models/ (GGUF and converted float32 folder), verified by sha256.
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

/// The one model of a one-model command: its own `--model`, or one given
/// before the command.
fn one_model(own: Option<String>, before: Vec<String>) -> normscope::Result<Option<String>> {
    match (own, before.as_slice()) {
        (own, []) => Ok(own),
        (None, [one]) => Ok(Some(one.clone())),
        (own, before) => Err(normscope::Error::usage(format!(
            "--model was given {} times; only `analyze` and `bench` take several models",
            before.len() + usize::from(own.is_some())
        ))),
    }
}

impl Command {
    /// Moves `--model`s given before the command into it (an error for
    /// commands that load no model by that flag).
    fn with_models(mut self, before: Vec<String>) -> normscope::Result<Self> {
        if before.is_empty() {
            return Ok(self);
        }
        match &mut self {
            Command::Generate(a) => a.model.model = one_model(a.model.model.take(), before)?,
            Command::Perplexity(a) => a.model.model = one_model(a.model.model.take(), before)?,
            Command::Bench(a) => a.model.splice(0..0, before).for_each(drop),
            Command::Variant(a) => a.model.model = one_model(a.model.model.take(), before)?,
            Command::Finetune(a) => a.model = one_model(a.model.take(), before)?,
            Command::Analyze(a) => a.model.splice(0..0, before).for_each(drop),
            Command::Fetch(_)
            | Command::Convert(_)
            | Command::Quantize(_)
            | Command::Compare(_) => {
                return Err(normscope::Error::usage(
                    "--model does not apply to this command (see its --help)",
                ))
            }
        }
        Ok(self)
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let cli = Cli {
        command: cli.command.with_models(cli.model_before_command)?,
        model_before_command: Vec::new(),
        common: cli.common,
    };
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

impl Command {
    /// The `--threads` this command was given, if it takes the flag.
    pub fn threads(&self) -> Option<usize> {
        match self {
            Command::Generate(a) => a.model.runtime.threads,
            Command::Perplexity(a) => a.model.runtime.threads,
            Command::Bench(a) => a.runtime.threads,
            Command::Variant(a) => a.model.runtime.threads,
            Command::Analyze(a) => a.runtime.threads,
            Command::Finetune(a) => a.threads,
            Command::Quantize(a) => a.threads,
            Command::Fetch(_) | Command::Convert(_) | Command::Compare(_) => None,
        }
    }
}

impl Runtime {
    /// The device and compute dtype asked for (saying so when bf16 has to
    /// compute in f32).
    pub fn device_and_dtype(&self) -> normscope::Result<(Device, DType)> {
        let device = parse_device(&self.device)?;
        let requested = parse_dtype(&self.dtype)?;
        let dtype = compute_dtype(requested, &device);
        if dtype != requested {
            out::eprintln("note: bf16 matmul is not available on CPU; computing in f32");
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

    /// Loads one model spec (`None`: the default model) for inference.
    pub fn load_spec(&self, spec: Option<&str>) -> normscope::Result<LoadedModel> {
        self.load_spec_with(spec, false)
    }

    /// Loads one model spec (`None`: the default model), dense when `training`.
    pub fn load_spec_with(
        &self,
        spec: Option<&str>,
        training: bool,
    ) -> normscope::Result<LoadedModel> {
        let (device, dtype) = self.device_and_dtype()?;
        let started = std::time::Instant::now();
        let opts = LoadOptions {
            training,
            ..LoadOptions::inference(dtype, &device)
        };
        let spec = loader_spec(spec)?;
        let lm = weights::load_with(spec.as_deref(), &opts, self.weight_check())?;
        tracing::info!(
            "loaded {} in {:.2}s",
            lm.path.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(lm)
    }
}

impl ModelArgs {
    /// Loads `--model` (or the default model) for inference.
    pub fn load_model(&self) -> normscope::Result<LoadedModel> {
        self.runtime.load_spec(self.model.as_deref())
    }

    /// Loads `--model` with dense weights, as variants need them.
    pub fn load_dense_model(&self) -> normscope::Result<LoadedModel> {
        self.runtime.load_spec_with(self.model.as_deref(), true)
    }
}

/// The fetched files of the model `fetch` calls `spec` (`smollm2-135m`,
/// `gemma3-270m`), when `spec` is one of those names and no file or folder
/// has it; fetched on first use, as the default model is.
pub fn known_model(spec: &str) -> normscope::Result<Option<fetched::FetchedModel>> {
    if Path::new(spec).exists() {
        return Ok(None);
    }
    let Ok(model) = fetched::known(spec) else {
        return Ok(None);
    };
    if let Some(notice) = model.notice {
        out::eprintln(format_args!("note: {notice}"));
    }
    fetched::fetch(&model).map(Some)
}

/// The `--model` the loader is given: a name `fetch` knows becomes the
/// folder it fetches.
pub fn loader_spec(spec: Option<&str>) -> normscope::Result<Option<String>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    Ok(Some(match known_model(spec)? {
        Some(f) => f.folder.to_string_lossy().into_owned(),
        None => spec.to_string(),
    }))
}

/// How a loaded model is named to the user: its `--model` as given, or,
/// for the default model, its path as [`shown_path`] shows it.
pub fn model_label(spec: Option<&str>, path: &Path) -> String {
    spec.map_or_else(|| shown_path(path), str::to_string)
}

/// `path` relative to the current folder when it is inside it, else as it is.
pub fn shown_path(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Prints `value` as the one JSON object on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    // Serialized first, so that a failed write is an I/O error of stdout's
    // (which `main` recognizes) rather than one hidden inside serde_json's.
    let text = serde_json::to_string_pretty(value)?;
    Ok(out::println(text)?)
}

/// This process's command line, shell-quoted so that pasting it reruns the command.
pub fn command_line() -> String {
    let argv: Vec<String> = std::env::args().collect();
    // Quoting fails only on a NUL byte, which no argument can hold.
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

/// The exit status of a run stopped by SIGINT (128 + 2, as shells report it).
pub const INTERRUPTED_EXIT: i32 = 130;

/// On SIGINT (Ctrl-C): remove every partial output, say so, exit with 130.
pub fn install_interrupt_handler() {
    let handler = || {
        match normscope::output::remove_partial_outputs() {
            0 => out::eprintln("error: interrupted"),
            n => out::eprintln(format_args!(
                "error: interrupted; removed {n} partial output(s), previous outputs are untouched"
            )),
        }
        std::process::exit(INTERRUPTED_EXIT);
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        tracing::debug!("no SIGINT cleanup: {e}");
    }
}

/// Installs the progress reporter: bars when stderr is a terminal, plain
/// lines when `forced` (`--progress`) and it is not, else nothing.
pub fn install_reporter(forced: bool) {
    if let Some(r) = reporter::for_stderr(std::io::stderr().is_terminal(), forced) {
        normscope::progress::set_reporter(r);
    }
}

/// clap's error as one line; a negative number given to a flag that wants a
/// count (`--max-tokens -1`) names that flag.
pub fn parse_error_line(e: &clap::Error, argv: &[String]) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::UnknownArgument {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            let flag = argv
                .iter()
                .position(|a| a == arg)
                .and_then(|i| i.checked_sub(1))
                .map(|i| argv[i].as_str())
                .filter(|f| f.starts_with('-') && f.parse::<f64>().is_err());
            if let (true, Some(flag)) = (arg.parse::<f64>().is_ok(), flag) {
                return format!("error: {flag} takes no negative value (got {arg})");
            }
        }
    }
    let text = e.to_string();
    // clap's first line names the problem; the usage block would make it
    // many. A first line ending in ':' lists its subjects on the indented
    // lines below it (the missing arguments): those join it. A value outside
    // a flag's possible values is followed by them.
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let first = lines.next().unwrap_or("bad arguments");
    if e.kind() == ErrorKind::InvalidValue {
        if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
            return format!("{first}; possible values: {}", valid.join(", "));
        }
    }
    if !first.ends_with(':') {
        return first.to_string();
    }
    let subjects: Vec<&str> = lines
        .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    format!("{first} {}", subjects.join(", "))
}

/// Logs go to stderr (coloured only on a terminal); `-v` shows info, `-vv` debug.
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
        .with_ansi(std::io::stderr().is_terminal())
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
