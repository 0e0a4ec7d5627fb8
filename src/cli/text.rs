//! Reading the text a command works on: a prompt argument or a UTF-8 file
//! (`-` for standard input), tokenized without special tokens (windows add
//! the model's BOS themselves).

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use normscope::generate;
use normscope::weights::LoadedModel;

/// The contents of a UTF-8 text file (`-`: standard input), or an error naming it.
pub fn read_utf8(path: &Path) -> anyhow::Result<String> {
    let (bytes, name) = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("standard input")?;
        (bytes, "standard input".to_string())
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        (bytes, path.display().to_string())
    };
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{name}: the text is not UTF-8"))
}

/// Token ids of `text`, at most `limit` of them.
pub fn token_ids(lm: &LoadedModel, text: &str, limit: Option<usize>) -> anyhow::Result<Vec<u32>> {
    if text.is_empty() {
        anyhow::bail!("the text is empty");
    }
    let mut ids = generate::encode_plain(lm, text)?;
    if let Some(n) = limit {
        ids.truncate(n);
    }
    if ids.len() < 2 {
        anyhow::bail!("the text has {} token(s); at least 2 are needed", ids.len());
    }
    Ok(ids)
}

/// The window length: `requested`, or 512 capped at the model's context.
pub fn window_len(requested: Option<usize>, model_ctx: usize) -> anyhow::Result<usize> {
    match requested {
        Some(n) if n > model_ctx => {
            anyhow::bail!("--ctx {n} exceeds the model's context of {model_ctx} tokens")
        }
        Some(n) => Ok(n),
        None => Ok(512.min(model_ctx)),
    }
}
