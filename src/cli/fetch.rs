//! `normscope fetch [NAME]`.

use clap::Args;
use normscope::weights::fetch;

use super::{out, print_json, Common};

/// `normscope fetch`'s arguments.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Which model: `smollm2-135m` (the default model) or `gemma3-270m`.
    #[arg(default_value = "smollm2-135m")]
    pub name: String,
}

/// Fetches the model, then prints where it is (or, with `--json`, one object).
pub fn run(common: &Common, args: FetchArgs) -> anyhow::Result<()> {
    let model = fetch::known(&args.name)?;
    let paths = fetch::fetch(&model)?;
    if let Some(notice) = model.notice {
        out::eprintln(format_args!("note: {notice}"));
    }
    if common.json {
        print_json(&serde_json::json!({
            "name": model.name, "gguf": paths.gguf, "folder": paths.folder,
            "sha256": model.sha256, "notice": model.notice,
        }))
    } else {
        Ok(out::println(format_args!(
            "{}\n{}",
            paths.gguf.display(),
            paths.folder.display()
        ))?)
    }
}
