//! `normscope quantize IN --type T --out F.gguf`.

use std::path::PathBuf;

use clap::Args;
use normscope::output::{check_output, OutputKind};
use normscope::quantize::{self, Target};

use super::{out, print_json, Common};

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The GGUF file or Hugging Face folder to quantize.
    pub input: PathBuf,
    /// File type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m or q5_k_m
    /// (llama.cpp's recipes; q4_k and q5_k put every quantizable weight in that one type).
    #[arg(long = "type", value_name = "T")]
    pub kind: String,
    /// The .gguf file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// CPU threads, at least 1 (default: all cores).
    #[arg(long, value_parser = super::parse_threads)]
    pub threads: Option<usize>,
}

pub fn run(common: &Common, args: QuantizeArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.kind).map_err(normscope::Error::usage)?;
    check_output("out", &args.out, OutputKind::File, args.force)?;
    let task = std::cell::RefCell::new(None::<normscope::progress::Task>);
    let report = |done: usize, total: usize, _name: &str| {
        let mut task = task.borrow_mut();
        let t = task.get_or_insert_with(|| {
            normscope::progress::task(
                &format!("quantize {}", target.name()),
                total as u64,
                "tensors",
            )
        });
        t.inc((done as u64).saturating_sub(t.done()));
    };
    let summary = quantize::quantize(&args.input, &args.out, target, args.force, &report);
    drop(task);
    let s = summary?;
    if common.json {
        return print_json(&s);
    }
    let counts: Vec<String> = s.tensors.iter().map(|(t, n)| format!("{n} {t}")).collect();
    out::eprintln(format_args!(
        "wrote {} ({}, {:.1} MB from {:.1} MB; tensors: {}) in {:.1}s",
        s.output.display(),
        s.target,
        s.output_bytes as f64 / 1e6,
        s.input_bytes as f64 / 1e6,
        counts.join(", "),
        s.seconds
    ));
    Ok(())
}
