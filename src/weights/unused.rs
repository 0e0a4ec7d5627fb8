//! Tensors a checkpoint holds that the model would not read. None is ignored
//! in silence: a tensor normscope knows to be redundant is named in a
//! warning, any other is an error that names it (a file that carries
//! something the model does not compute with would otherwise run wrongly).

use std::collections::HashSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::layout;
use crate::model::Config;

/// Which naming convention the checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Hugging Face names (`model.layers.N....`).
    HuggingFace,
    /// llama.cpp's GGUF names (`blk.N....`).
    Gguf,
}

/// Tensors that carry nothing a model of `cfg` needs: RoPE frequencies that
/// old transformers checkpoints saved (recomputed from the config).
fn redundant(name: &str, naming: Naming) -> bool {
    naming == Naming::HuggingFace && name.ends_with("rotary_emb.inv_freq")
}

/// Checks that every tensor in `names` (held by `file`) is one a model of
/// `cfg` reads, or one of `understood` (read elsewhere, such as a GGUF's
/// `rope_freqs.weight`); returns the redundant ones, for a warning.
pub fn check<'a>(
    cfg: &Config,
    names: impl IntoIterator<Item = &'a str>,
    understood: &[&str],
    naming: Naming,
    file: &Path,
) -> Result<Vec<String>> {
    let used: HashSet<String> = layout::tensors(cfg)
        .into_iter()
        .chain([layout::spec(cfg, layout::Site::Head)])
        .map(|s| match naming {
            Naming::HuggingFace => s.hf_name,
            Naming::Gguf => s.gguf_name,
        })
        .collect();
    let mut unknown: Vec<&str> = Vec::new();
    let mut ignored = Vec::new();
    for name in names {
        if used.contains(name) || understood.contains(&name) {
            continue;
        }
        if redundant(name, naming) {
            ignored.push(name.to_string());
        } else {
            unknown.push(name);
        }
    }
    unknown.sort_unstable();
    match unknown.as_slice() {
        [] => Ok(ignored),
        [first, rest @ ..] => Err(Error::format(
            file,
            format!(
                "tensor `{first}`{} is not part of a `{}` checkpoint as configured; \
                 normscope does not know what it computes, so it will not run without it",
                match rest.len() {
                    0 => String::new(),
                    n => format!(" (and {n} more)"),
                },
                cfg.architecture.model_type()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::tests::tiny_config;

    #[test]
    fn unknown_tensors_are_named_and_redundant_ones_returned() {
        let cfg = tiny_config();
        let names: Vec<String> = layout::tensors(&cfg)
            .into_iter()
            .map(|s| s.gguf_name)
            .collect();
        let file = Path::new("m.gguf");
        let ok = check(
            &cfg,
            names.iter().map(String::as_str),
            &[],
            Naming::Gguf,
            file,
        );
        assert!(ok.unwrap().is_empty());
        let mut more = names.clone();
        more.push("rope_freqs.weight".into());
        let err = check(
            &cfg,
            more.iter().map(String::as_str),
            &[],
            Naming::Gguf,
            file,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`rope_freqs.weight` is not part of a `llama` checkpoint"),
            "{err}"
        );
        let understood = check(
            &cfg,
            more.iter().map(String::as_str),
            &["rope_freqs.weight"],
            Naming::Gguf,
            file,
        );
        assert!(understood.is_ok());
        let hf: Vec<String> = layout::tensors(&cfg)
            .into_iter()
            .map(|s| s.hf_name)
            .chain(["model.layers.0.self_attn.rotary_emb.inv_freq".to_string()])
            .collect();
        let warned = check(
            &cfg,
            hf.iter().map(String::as_str),
            &[],
            Naming::HuggingFace,
            file,
        );
        assert_eq!(warned.unwrap().len(), 1);
    }
}
