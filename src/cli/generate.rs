//! `normscope generate [PROMPT]`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use normscope::generate::{self, chat, SamplingConfig, StopReason};

use super::text::read_utf8;
use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: super::ModelArgs,
    /// The prompt (or use --prompt-file).
    pub prompt: Option<String>,
    /// Read the prompt from a UTF-8 file (`-`: standard input, less its final newline).
    #[arg(long, conflicts_with = "prompt")]
    pub prompt_file: Option<PathBuf>,
    /// Apply the model's chat template (the prompt is the user's message).
    #[arg(long)]
    pub chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Tool definitions for --chat: a JSON file holding the list of tools
    /// transformers' `apply_chat_template(tools=...)` takes (for templates
    /// that describe tools, such as Qwen's and Llama 3's).
    #[arg(long, requires = "chat")]
    pub tools: Option<PathBuf>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.7, allow_negative_numbers = true)]
    pub temperature: f64,
    /// Sample among the k most likely tokens.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub top_p: f64,
    /// Penalty on recently generated tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty considers.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Random seed.
    #[arg(long, default_value_t = 299792458)]
    pub seed: u64,
    /// Run without these blocks, e.g. `20,21`.
    #[arg(long, value_delimiter = ',')]
    pub skip_layers: Vec<usize>,
}

/// The tool list in `path`: a JSON array.
fn read_tools(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = read_utf8(path)?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", path.display()))?;
    if !v.is_array() {
        anyhow::bail!(
            "{}: --tools takes a JSON list of tool definitions",
            path.display()
        );
    }
    Ok(v)
}

pub fn run(common: &Common, args: GenerateArgs) -> anyhow::Result<()> {
    let stdin = Path::new("-");
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) if f == stdin => without_final_newline(read_utf8(stdin)?),
        (None, Some(f)) => read_utf8(f)?,
        // `echo ... | normscope generate`
        (None, None) if !std::io::stdin().is_terminal() => without_final_newline(read_utf8(stdin)?),
        (None, None) => anyhow::bail!(
            "no prompt: pass PROMPT or --prompt-file (`-` reads standard input), or pipe it in"
        ),
    };
    if prompt.is_empty() {
        anyhow::bail!("the prompt is empty");
    }
    let sampling = SamplingConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: Some(args.top_p),
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        seed: args.seed,
    };
    sampling.validate()?;
    if args.max_tokens == 0 {
        anyhow::bail!("--max-tokens must be at least 1");
    }
    let tools = args.tools.as_deref().map(read_tools).transpose()?;
    let mut lm = args.model.load_model()?;
    lm.model.set_skip_layers(&args.skip_layers)?;
    let text = if args.chat {
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(chat::Message {
                role: "system".into(),
                content: s.clone(),
            });
        }
        messages.push(chat::Message {
            role: "user".into(),
            content: prompt.clone(),
        });
        chat::render_with_tools(&lm.chat, &messages, tools.as_ref())?
    } else {
        prompt.clone()
    };
    // A rendered chat template writes its own special tokens.
    let ids = if args.chat {
        generate::encode_plain(&lm, &text)?
    } else {
        generate::encode(&lm, &text)?
    };
    let json = common.json;
    let mut on_text = |piece: &str| -> normscope::Result<()> {
        if !json {
            out::print(piece)?;
        }
        Ok(())
    };
    let gen = generate::generate(&lm, &ids, args.max_tokens, &sampling, &mut on_text)?;
    if !json {
        // The text ends its line before anything goes to stderr.
        out::print("\n")?;
    }
    if gen.stop_reason == StopReason::Context {
        out::eprintln(format_args!(
            "stopped: the context of {} tokens is full",
            lm.model.cfg.max_position_embeddings
        ));
    }
    if json {
        return print_json(&serde_json::json!({
            "model": super::model_label(args.model.model.as_deref(), &lm.path),
            "format": lm.format, "prompt": text,
            "prompt_ids": gen.prompt_ids, "generated_ids": gen.generated_ids,
            "text": gen.text, "stopped_at_eos": gen.stopped_at_eos, "stop_reason": gen.stop_reason,
            "sampling": sampling, "skip_layers": lm.model.skipped_layers(),
            "timings": gen.timings,
        }));
    }
    let t = &gen.timings;
    out::eprintln(format_args!(
        "prompt: {} tokens at {:.1} t/s | generated: {} tokens at {:.1} t/s | first token after {:.0} ms",
        t.prompt_tokens, t.prompt_tokens_per_sec, t.generated_tokens,
        t.generation_tokens_per_sec, t.time_to_first_token_s * 1e3
    ));
    Ok(())
}

/// Text read from standard input, less the newline that ends it (`echo`'s).
fn without_final_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}
