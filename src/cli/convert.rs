//! `normscope convert IN.gguf --out DIR`.

use std::path::PathBuf;

use clap::Args;
use normscope::device::parse_dtype;
use normscope::weights::gguf::GgufFile;
use normscope::weights::{check, convert};

use super::{print_json, Common};

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
}

pub fn run(common: &Common, args: ConvertArgs) -> anyhow::Result<()> {
    let dtype = parse_dtype(&common.dtype)?;
    let started = std::time::Instant::now();
    let gguf = GgufFile::open(&args.input)?;
    check::scan_gguf(&gguf, common.weight_check())?;
    drop(gguf);
    convert::convert_gguf(&args.input, &args.out, dtype, args.force)?;
    let secs = started.elapsed().as_secs_f64();
    if common.json {
        print_json(&serde_json::json!({
            "input": args.input, "out": args.out, "dtype": convert::dtype_name(dtype)?, "seconds": secs,
        }))
    } else {
        eprintln!("wrote {} in {secs:.1}s", args.out.display());
        Ok(())
    }
}
