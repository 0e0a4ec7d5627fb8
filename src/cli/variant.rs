//! `normscope variant --kind post|deepnorm|lnscale --out DIR`.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::Args;
use normscope::device::parse_dtype;
use normscope::model::placement::{PlacementFields, PLACEMENT_NAMES};
use normscope::model::Placement;
use normscope::variants::checkpoint::write_variant;

use super::{print_json, Common};

#[derive(Debug, Args)]
pub struct VariantArgs {
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
}

pub fn run(common: &Common, args: VariantArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let lm = common.load_dense_model()?;
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
    let dtype = parse_dtype(&common.dtype)?;
    write_variant(&lm.model, &lm.path, target, &args.out, dtype, args.force)?;
    let secs = started.elapsed().as_secs_f64();
    let (alpha, beta) = (target.residual_alpha().unwrap_or(1.0), target.beta());
    if common.json {
        return print_json(&serde_json::json!({
            "source": lm.path, "out": args.out, "kind": target.name(), "alpha": alpha, "beta": beta,
            "num_layers": n, "seconds": secs,
        }));
    }
    eprintln!(
        "wrote {} ({} of {}, alpha {alpha:.4}, beta {beta:.4}) in {secs:.1}s",
        args.out.display(),
        target.name(),
        lm.path.display()
    );
    Ok(())
}
