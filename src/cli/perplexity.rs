//! `normscope perplexity --file F`.

use std::path::PathBuf;

use clap::Args;
use normscope::analysis::perplexity::{evaluate, llama_cpp_chunks, windows};
use normscope::generate;

use super::text::{read_utf8, token_ids, window_len};
use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: super::ModelArgs,
    /// UTF-8 text file.
    #[arg(long)]
    pub file: PathBuf,
    /// Window length in tokens (non-overlapping windows, each from position 0; default 512 or the model's context if shorter).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Use only the first N tokens of the file.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Run without these blocks, e.g. `20,21`.
    #[arg(long, value_delimiter = ',')]
    pub skip_layers: Vec<usize>,
    /// Score as llama-perplexity does: the text tokenized with the model's BOS,
    /// cut into whole chunks of --ctx tokens whose first token is replaced by
    /// BOS, and only the second half of each chunk scored.
    #[arg(long)]
    pub second_half: bool,
}

pub fn run(common: &Common, args: PerplexityArgs) -> anyhow::Result<()> {
    let text = read_utf8(&args.file)?;
    let mut lm = args.model.load_model()?;
    lm.model.set_skip_layers(&args.skip_layers)?;
    let ctx = window_len(args.ctx, lm.model.cfg.max_position_embeddings)?;
    let bos = generate::leading_token(&lm);
    let (wins, first) = if args.second_half {
        let mut ids = generate::encode(&lm, &text)?;
        ids.truncate(args.limit.unwrap_or(usize::MAX));
        let chunks = llama_cpp_chunks(&ids, ctx, bos)?;
        if chunks.is_empty() {
            anyhow::bail!(
                "the text has {} tokens, fewer than one chunk of --ctx {ctx}",
                ids.len()
            );
        }
        (chunks, ctx / 2)
    } else {
        (windows(&token_ids(&lm, &text, args.limit)?, ctx, bos)?, 0)
    };
    let mut task = normscope::progress::task("perplexity", wins.len() as u64, "windows");
    let started = std::time::Instant::now();
    let nll = evaluate(&lm.model, &wins, first, &mut || task.inc(1))?;
    drop(task);
    let secs = started.elapsed().as_secs_f64();
    let ppl = nll
        .perplexity()
        .expect("every window predicts at least one token");
    if common.json {
        return print_json(&serde_json::json!({
            "model": super::model_label(args.model.model.as_deref(), &lm.path),
            "format": lm.format, "file": args.file, "ctx": ctx,
            "tokens": wins.iter().map(Vec::len).sum::<usize>(), "windows": wins.len(),
            "predicted_tokens": nll.count, "mean_nll": nll.sum / nll.count as f64,
            "perplexity": ppl, "skip_layers": lm.model.skipped_layers(),
            "scoring": if args.second_half { "second_half" } else { "all" },
            "seconds": secs, "tokens_per_sec": nll.count as f64 / secs,
        }));
    }
    out::println(format_args!(
        "perplexity {ppl:.4} over {} predicted tokens in {} windows of up to {} tokens",
        nll.count,
        wins.len(),
        ctx
    ))?;
    Ok(())
}
