//! `normscope finetune --variant pre|post|deepnorm|lnscale --data F --out RUN`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::Args;
use normscope::analysis::chart::readable;
use normscope::model::placement::PLACEMENT_NAMES;
use normscope::output::{check_output, OutputKind};
use normscope::variants::metrics::{EvalRecord, StepRecord};
use normscope::variants::{finetune, Progress, RunInfo, Start, TrainSettings};

use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// The checkpoint to start from: a Hugging Face folder, a .gguf file, a hub repo id `owner/name`, or a name `fetch` knows (smollm2-135m, gemma3-270m) (default: SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<String>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads, at least 1 (default: all cores).
    #[arg(long, value_parser = super::parse_threads)]
    pub threads: Option<usize>,
    /// Norm placement to fine-tune (a Pre-Norm --model is converted first, as `variant` does).
    #[arg(long, value_parser = PossibleValuesParser::new(PLACEMENT_NAMES), required_unless_present = "resume")]
    pub variant: Option<String>,
    /// UTF-8 training text (its last --heldout fraction is held out).
    #[arg(long, default_value = "data/genesis-kjv.txt")]
    pub data: PathBuf,
    /// The run folder (run.json, metrics.jsonl, checkpoint/).
    #[arg(long)]
    pub out: PathBuf,
    /// Optimizer steps in all (with --resume: a new total; default 100).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Cosine decay floor, as a fraction of --lr.
    #[arg(long, default_value_t = 0.1)]
    pub min_lr_ratio: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip the global gradient norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f64,
    /// Seed of the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the token embedding (and a tied LM head) fixed.
    #[arg(long)]
    pub freeze_embeddings: bool,
    /// Fraction of the text held out (from its end).
    #[arg(long, default_value_t = 0.1)]
    pub heldout: f64,
    /// Evaluate on held-out text every N steps.
    #[arg(long, default_value_t = 20)]
    pub eval_every: usize,
    /// Held-out tokens per evaluation.
    #[arg(long, default_value_t = 2048)]
    pub eval_tokens: usize,
    /// Write a checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 50)]
    pub save_every: usize,
    /// Continue RUN from its last checkpoint with its recorded settings (only --steps may change).
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing run folder (once the new run has its first checkpoint).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
}

/// What fine-tuning shows as it goes: a bar with the loss and tokens/sec on
/// a terminal; with `--progress` on a redirected stderr, one plain line per
/// step and per evaluation; else nothing. It keeps the totals the closing
/// line reports either way.
struct Tracker {
    view: View,
    steps: usize,
    tokens: usize,
    seconds: f64,
    last_eval: String,
}

/// How a [`Tracker`] shows progress.
enum View {
    Bar(indicatif::ProgressBar),
    Lines,
    Quiet,
}

impl Tracker {
    fn new(view: View) -> Self {
        Self {
            view,
            steps: 0,
            tokens: 0,
            seconds: 0.0,
            last_eval: String::new(),
        }
    }
}

impl Progress for Tracker {
    fn started(&mut self, info: &RunInfo, first_step: usize) {
        self.steps = info.settings.steps;
        if let View::Bar(bar) = &self.view {
            bar.set_length(info.settings.steps as u64);
            bar.set_position(first_step as u64 - 1);
            bar.reset_eta();
        }
    }

    fn step(&mut self, r: &StepRecord) -> bool {
        self.tokens += r.tokens;
        self.seconds += r.seconds;
        match &self.view {
            View::Bar(bar) => {
                bar.set_message(format!(
                    "loss {:.4} | {:.0} tok/s | {}",
                    r.loss,
                    self.tokens as f64 / self.seconds,
                    self.last_eval
                ));
                bar.set_position(r.step as u64);
            }
            View::Lines => out::eprintln(format_args!(
                "step {}/{}: loss {:.4}, lr {:.2e}, {:.0} tokens/s",
                r.step,
                self.steps,
                r.loss,
                r.lr,
                r.tokens as f64 / r.seconds.max(1e-9)
            )),
            View::Quiet => {}
        }
        true
    }

    fn eval(&mut self, r: &EvalRecord) {
        self.last_eval = format!("held-out loss {:.4} at step {}", r.heldout_loss, r.step);
        let line = format!(
            "step {}: held-out loss {:.4}, perplexity {}",
            r.step,
            r.heldout_loss,
            readable(r.heldout_ppl)
        );
        match &self.view {
            View::Bar(bar) => bar.println(line),
            View::Lines => out::eprintln(line),
            View::Quiet => {}
        }
    }
}

pub fn run(common: &Common, args: FinetuneArgs) -> anyhow::Result<()> {
    let device = normscope::device::parse_device(&args.device)?;
    let start = if args.resume {
        Start::Resume(args.steps)
    } else {
        check_output("out", &args.out, OutputKind::Folder, args.force)?;
        let settings = TrainSettings {
            model: super::loader_spec(args.model.as_deref())?,
            variant: args
                .variant
                .clone()
                .expect("clap requires --variant without --resume"),
            data: args.data.clone(),
            steps: args.steps.unwrap_or(100),
            seq_len: args.seq_len,
            batch: args.batch,
            lr: args.lr,
            warmup: args.warmup,
            min_lr_ratio: args.min_lr_ratio,
            weight_decay: args.weight_decay,
            grad_clip: args.grad_clip,
            seed: args.seed,
            freeze_embeddings: args.freeze_embeddings,
            heldout: args.heldout,
            eval_every: args.eval_every,
            eval_tokens: args.eval_tokens,
            save_every: args.save_every,
        };
        Start::Fresh(settings, args.force)
    };
    let view = if std::io::stderr().is_terminal() {
        View::Bar(
            indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "finetune {bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
                )
                .expect("progress template is valid"),
            ),
        )
    } else if common.progress {
        View::Lines
    } else {
        View::Quiet
    };
    let mut progress = Tracker::new(view);
    let started = std::time::Instant::now();
    let info = finetune(&args.out, start, &device, &mut progress)?;
    if let View::Bar(bar) = &progress.view {
        bar.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let per_step = if progress.tokens > 0 {
        progress.seconds / (progress.tokens / (info.settings.batch * info.settings.seq_len)) as f64
    } else {
        0.0
    };
    let checkpoint = args.out.join("checkpoint");
    if common.json {
        return print_json(&serde_json::json!({
            "run": args.out, "checkpoint": checkpoint, "settings": info.settings,
            "seconds": secs, "seconds_per_step": per_step,
            "peak_rss_mib": normscope::bench::memory::peak_rss_mib(),
            "last_eval": progress.last_eval,
        }));
    }
    out::eprintln(format_args!(
        "finished {} ({} steps, {per_step:.2} s/step, {secs:.0}s in all); checkpoint {}",
        args.out.display(),
        info.settings.steps,
        checkpoint.display()
    ));
    Ok(())
}
