//! `normscope fetch`.

use clap::Args;
use normscope::weights::fetch;

use super::{print_json, Common};

#[derive(Debug, Args)]
pub struct FetchArgs {}

pub fn run(common: &Common, _args: FetchArgs) -> anyhow::Result<()> {
    let paths = fetch::fetch_default()?;
    if common.json {
        print_json(&serde_json::json!({
            "gguf": paths.gguf, "folder": paths.folder, "sha256": fetch::SHA256,
        }))
    } else {
        println!("{}\n{}", paths.gguf.display(), paths.folder.display());
        Ok(())
    }
}
