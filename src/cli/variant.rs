//! `normscope variant --kind post|deepnorm|lnscale --out DIR`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use clap::builder::PossibleValuesParser;
use clap::Args;
use normscope::device::parse_dtype;
use normscope::model::placement::{PlacementFields, PLACEMENT_NAMES};
use normscope::model::Placement;
use normscope::output::{check_output, OutputKind};
use normscope::variants::checkpoint::write_variant;
use normscope::variants::heldout::heldout_loss;
use normscope::weights;

use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct VariantArgs {
    #[command(flatten)]
    pub model: super::ModelArgs,
    /// The norm placement of the new checkpoint.
    #[arg(long, value_parser = PossibleValuesParser::new(
        PLACEMENT_NAMES.into_iter().filter(|&n| n != Placement::Pre.name())
    ))]
    pub kind: String,
    /// The Hugging Face folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// DeepNorm's residual weight (default (2N)^(1/4) for N blocks).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// DeepNorm's weight scale (default (8N)^(-1/4)).
    #[arg(long)]
    pub beta: Option<f64>,
    /// Replace a non-empty output folder.
    #[arg(long)]
    pub force: bool,
    /// Text whose held-out part (the last 10 %, as `finetune` holds it out) measures the new checkpoint's loss.
    #[arg(long, default_value = "data/genesis-kjv.txt")]
    pub data: PathBuf,
}

/// Held-out tokens scored for the loss `variant` reports.
const HELDOUT_TOKENS: usize = 512;

/// The held-out loss of the written variant and of its source.
#[derive(serde::Serialize)]
struct Heldout {
    loss: f64,
    source_loss: f64,
    tokens: usize,
}

/// Scores the variant at `out` and its `source` on `data`'s held-out part (CPU, f32).
fn heldout(out: &Path, source: &Path, data: &Path) -> anyhow::Result<Heldout> {
    let text = std::fs::read_to_string(data).map_err(|e| normscope::Error::io(data, e))?;
    let score = |p: &Path| -> anyhow::Result<(f64, usize)> {
        let lm = weights::load(Some(&p.to_string_lossy()), &Device::Cpu, DType::F32)?;
        Ok(heldout_loss(&lm, &text, HELDOUT_TOKENS)?)
    };
    let (loss, tokens) = score(out)?;
    let (source_loss, _) = score(source)?;
    Ok(Heldout {
        loss,
        source_loss,
        tokens,
    })
}

pub fn run(common: &Common, args: VariantArgs) -> anyhow::Result<()> {
    check_output("out", &args.out, OutputKind::Folder, args.force)?;
    let started = std::time::Instant::now();
    let lm = args.model.load_dense_model()?;
    let n = lm.model.cfg.num_layers;
    let mut target = Placement::from_name(&args.kind, n).map_err(anyhow::Error::msg)?;
    match &mut target {
        Placement::DeepNorm { alpha, beta } => {
            *alpha = args.alpha.unwrap_or(*alpha);
            *beta = args.beta.unwrap_or(*beta);
        }
        _ if args.alpha.is_some() || args.beta.is_some() => {
            anyhow::bail!("--alpha and --beta apply to --kind deepnorm only")
        }
        _ => {}
    }
    // The same check config.json gets when the variant is loaded.
    PlacementFields::of(target)
        .resolve(n)
        .map_err(|e| anyhow::anyhow!("--alpha/--beta: {e}"))?;
    let dtype = parse_dtype(&args.model.runtime.dtype)?;
    write_variant(&lm.model, &lm.path, target, &args.out, dtype, args.force)?;
    let secs = started.elapsed().as_secs_f64();
    let source = lm.path.clone();
    let shown = super::model_label(args.model.model.as_deref(), &source);
    drop(lm);
    let scored = heldout(&args.out, &source, &args.data);
    let (alpha, beta) = (target.residual_alpha().unwrap_or(1.0), target.beta());
    if common.json {
        return print_json(&serde_json::json!({
            "source": shown, "out": args.out, "kind": target.name(), "alpha": alpha, "beta": beta,
            "num_layers": n, "seconds": secs,
            "heldout": scored.as_ref().ok(), "heldout_data": args.data,
        }));
    }
    out::eprintln(format_args!(
        "wrote {} ({} of {}, alpha {alpha:.4}, beta {beta:.4}) in {secs:.1}s",
        args.out.display(),
        target.name(),
        shown
    ));
    let figures = match &scored {
        Ok(h) => format!(
            "held-out loss {:.2} nats/token before fine-tuning (the source: {:.2}), over {} tokens of {}",
            h.loss,
            h.source_loss,
            h.tokens,
            args.data.display()
        ),
        Err(e) => format!("no held-out loss: {}", super::one_line(e)),
    };
    out::eprintln(format_args!(
        "note: a {} variant generates nonsense until fine-tuned; {figures}",
        target.name()
    ));
    Ok(())
}
