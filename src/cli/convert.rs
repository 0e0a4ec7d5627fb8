//! `normscope convert IN.gguf --out DIR`.

use std::path::PathBuf;

use clap::Args;
use normscope::device::parse_dtype;
use normscope::output::{check_output, OutputKind};
use normscope::weights::gguf::GgufFile;
use normscope::weights::{check, convert};

use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The GGUF file to convert.
    pub input: PathBuf,
    /// The Hugging Face folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a non-empty output folder.
    #[arg(long)]
    pub force: bool,
    /// The dtype of the written safetensors: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Scan every tensor for NaN and Inf first (by default only norms and the embedding).
    #[arg(long)]
    pub check_weights: bool,
}

pub fn run(common: &Common, args: ConvertArgs) -> anyhow::Result<()> {
    let dtype = parse_dtype(&args.dtype)?;
    check_output("out", &args.out, OutputKind::Folder, args.force)?;
    let started = std::time::Instant::now();
    let gguf = GgufFile::open(&args.input)?;
    check::scan_gguf(
        &gguf,
        if args.check_weights {
            check::WeightCheck::All
        } else {
            check::WeightCheck::Cheap
        },
    )?;
    drop(gguf);
    convert::convert_gguf(&args.input, &args.out, dtype, args.force)?;
    let secs = started.elapsed().as_secs_f64();
    if common.json {
        print_json(&serde_json::json!({
            "input": args.input, "out": args.out, "dtype": convert::dtype_name(dtype)?, "seconds": secs,
        }))
    } else {
        out::eprintln(format_args!("wrote {} in {secs:.1}s", args.out.display()));
        Ok(())
    }
}
