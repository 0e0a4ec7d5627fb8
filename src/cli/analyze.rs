//! `normscope analyze [PROMPT] [--file F]`.

use std::path::PathBuf;

use clap::Args;
use normscope::analysis::findings::{compare, findings};
use normscope::analysis::html::{render_report, ReportInput, ReportModel};
use normscope::analysis::perplexity::windows;
use normscope::analysis::plot::{render_svg, Series};
use normscope::analysis::table::{render_csv, render_table, View};
use normscope::analysis::{analyze, AnalyzeOptions, Figures};
use normscope::generate;
use normscope::output::{check_output, write_atomic, OutputKind};
use serde::Serialize;

use super::text::{read_utf8, token_ids, window_len};
use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A Hugging Face folder, a .gguf file, a hub repo id `owner/name`, or a name `fetch` knows (smollm2-135m, gemma3-270m; fetched on first use) (default: SmolLM2-135M-Instruct); repeat to compare several models.
    #[arg(long)]
    pub model: Vec<String>,
    #[command(flatten)]
    pub runtime: super::Runtime,
    /// The text to analyse (or use --file).
    pub prompt: Option<String>,
    /// A UTF-8 text file, read in windows of --ctx tokens.
    #[arg(long, conflicts_with = "prompt")]
    pub file: Option<PathBuf>,
    /// Window length in tokens (default 512 or the model's context if shorter).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Use only the first N tokens.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Skip the logit lens (the most expensive figure).
    #[arg(long)]
    pub no_lens: bool,
    /// Keep per-token values in the JSON output.
    #[arg(long)]
    pub per_token: bool,
    /// Remove each block in turn and report the perplexity without it.
    #[arg(long)]
    pub ablate: bool,
    /// Run without these blocks, e.g. `20,21`.
    #[arg(long, value_delimiter = ',')]
    pub skip_layers: Vec<usize>,
    /// Show means over all tokens in the table (default: leave out position 0 of each window).
    #[arg(long)]
    pub include_pos0: bool,
    /// Write the per-block figures as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write SVG plots.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

/// One model's analysis, as printed with --json.
#[derive(Serialize)]
struct ModelAnalysis {
    model: String,
    format: normscope::weights::Format,
    source: String,
    ctx: usize,
    skip_layers: Vec<usize>,
    /// `excl0`: the table and report default to tokens after position 0.
    default_view: &'static str,
    #[serde(flatten)]
    figures: Figures,
}

pub fn run(common: &Common, args: AnalyzeArgs) -> anyhow::Result<()> {
    let outputs = [
        ("csv", &args.csv),
        ("plot", &args.plot),
        ("report", &args.report),
    ];
    for (setting, path) in outputs {
        if let Some(path) = path {
            check_output(setting, path, OutputKind::File, args.force)?;
        }
    }
    let (text, source) = match (&args.prompt, &args.file) {
        (Some(p), _) => (p.clone(), quoted(p)),
        (None, Some(f)) if f.as_os_str() == "-" => (read_utf8(f)?, "standard input".into()),
        (None, Some(f)) => (read_utf8(f)?, f.display().to_string()),
        (None, None) => anyhow::bail!("nothing to analyse: pass PROMPT or --file"),
    };
    let specs: Vec<Option<&str>> = if args.model.is_empty() {
        vec![None]
    } else {
        args.model.iter().map(|s| Some(s.as_str())).collect()
    };
    let opts = AnalyzeOptions {
        lens: !args.no_lens,
        per_token: args.per_token,
        ablate: args.ablate,
    };
    let mut results = Vec::new();
    for spec in specs {
        let mut lm = args.runtime.load_spec(spec)?;
        lm.model.set_skip_layers(&args.skip_layers)?;
        let ctx = window_len(args.ctx, lm.model.cfg.max_position_embeddings)?;
        let ids = token_ids(&lm, &text, args.limit)?;
        let wins = windows(&ids, ctx, generate::leading_token(&lm))?;
        let active = lm.model.cfg.num_layers - lm.model.skipped_layers().len();
        let passes = wins.len() * (1 + if args.ablate { active } else { 0 });
        let what = if args.ablate {
            "analyze (windows, then one pass per block left out)"
        } else {
            "analyze"
        };
        let mut task = normscope::progress::task(what, passes as u64, "windows");
        let tokenizer = lm.tokenizer.clone();
        let decode = move |id: u32| tokenizer.decode(&[id], false).unwrap_or_default();
        let figures = analyze(&mut lm.model, &wins, &opts, &decode, &mut || task.inc(1))?;
        drop(task);
        results.push(ModelAnalysis {
            model: super::model_label(spec, &lm.path),
            format: lm.format,
            source: source.clone(),
            ctx,
            skip_layers: lm.model.skipped_layers(),
            default_view: "excl0",
            figures,
        });
    }
    // A failed write still shows the figures, then fails the command.
    let written = write_outputs(&args, &results, &source);
    let printed = if common.json {
        match results.as_slice() {
            [one] => print_json(one),
            many => print_json(&serde_json::json!({ "models": many })),
        }
    } else {
        print_table(&args, &results)
    };
    written.and(printed)
}

/// The table of each model, its header line and its findings, on stdout.
fn print_table(args: &AnalyzeArgs, results: &[ModelAnalysis]) -> anyhow::Result<()> {
    let view = if args.include_pos0 {
        View::All
    } else {
        View::Excl0
    };
    let mut text = String::new();
    for r in results {
        text += &format!(
            "{} ({} placement; {} tokens, {} window(s); means over {})\n",
            r.model,
            r.figures.placement,
            r.figures.tokens,
            r.figures.windows,
            if args.include_pos0 {
                "all tokens"
            } else {
                "tokens after position 0"
            }
        );
        if let Some(p) = r.figures.perplexity {
            text += &format!("perplexity {p:.4}\n");
        }
        text += &render_table(&r.figures, view);
        for f in findings(&r.figures) {
            text += &format!("- {f}\n");
        }
    }
    Ok(out::print(&text)?)
}

fn write_outputs(
    args: &AnalyzeArgs,
    results: &[ModelAnalysis],
    source: &str,
) -> anyhow::Result<()> {
    if let Some(path) = &args.csv {
        let csv = match results {
            [one] => render_csv(&one.figures),
            many => many
                .iter()
                .map(|r| format!("# {}\n{}", r.model, render_csv(&r.figures)))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        write_atomic(path, csv.as_bytes(), args.force)?;
    }
    if args.plot.is_none() && args.report.is_none() {
        return Ok(());
    }
    let series: Vec<Series> = results
        .iter()
        .map(|r| Series {
            label: r.model.clone(),
            figures: &r.figures,
        })
        .collect();
    let svg = render_svg(&series, source)?;
    if let Some(path) = &args.plot {
        write_atomic(path, svg.as_bytes(), args.force)?;
    }
    if let Some(path) = &args.report {
        let command = super::command_line();
        let html = render_report(&ReportInput {
            title: "normscope: what each block does to the residual stream".into(),
            command,
            source: source.to_string(),
            models: results
                .iter()
                .map(|r| ReportModel::new(r.model.clone(), &r.figures))
                .collect(),
            svg,
            findings: if results.len() > 1 {
                compare(
                    &results
                        .iter()
                        .map(|r| (r.model.clone(), &r.figures))
                        .collect::<Vec<_>>(),
                )
            } else {
                Vec::new()
            },
        })?;
        write_atomic(path, html.as_bytes(), args.force)?;
    }
    Ok(())
}

/// A prompt as titles and `source` name it: quoted, cut after 60 characters.
fn quoted(prompt: &str) -> String {
    const MAX: usize = 60;
    match prompt.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &prompt[..cut])),
        None => format!("{prompt:?}"),
    }
}
