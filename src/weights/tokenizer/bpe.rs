//! A GGUF's byte-level BPE vocabulary (`tokenizer.ggml.model = gpt2`: SmolLM,
//! Qwen, Llama 3, OLMo, ...) as a `tokenizer.json` document: tokens and merges
//! as llama.cpp reads them, split first by the regexes llama.cpp's
//! `llm_tokenizer_bpe` uses for the file's `tokenizer.ggml.pre` (see
//! [`pre_tokenizer`]), with its per-name defaults for adding BOS and for
//! ignoring merges when a whole piece is a token.

use serde_json::{json, Value};

use super::{rstrips, string_array, token_types, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};
use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

/// GPT-2's split (also the second step of the StarCoder/SmolLM family).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's split, in llama.cpp's case-folded form of `(?i:'s|...)`.
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split: Llama 3's with one digit per piece.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen3.5's split: Qwen2's with combining marks kept inside words.
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How llama.cpp pre-tokenizes one family of `tokenizer.ggml.pre` names.
struct PreTokenizer {
    /// The regexes, applied one after the other (each splits every piece
    /// into its matches and the text between them).
    regexes: &'static [&'static str],
    /// llama.cpp adds BOS for this family unless `tokenizer.ggml.add_bos_token` says otherwise.
    add_bos: bool,
    /// A piece that is itself a token is not merged from its bytes.
    ignore_merges: bool,
}

/// The pre-tokenizer llama.cpp (`llama-vocab.cpp`) uses for `name`; `None`
/// for a name it does not know or a family normscope has no regexes for.
fn pre_tokenizer(name: &str) -> Option<PreTokenizer> {
    let plain = |regexes| PreTokenizer {
        regexes,
        add_bos: false,
        ignore_merges: false,
    };
    Some(match name {
        "default" => plain(&[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]),
        "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
        | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code"
        | "roberta-bpe" | "mpt" | "olmo" | "jais" | "trillion" | "granite-docling" => {
            plain(&[GPT2])
        }
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva" => {
            plain(&[r"\p{N}", GPT2])
        }
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" => PreTokenizer {
            regexes: &[LLAMA3],
            add_bos: true,
            ignore_merges: true,
        },
        "dbrx" | "smaug-bpe" | "chatglm-bpe" => plain(&[LLAMA3]),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "stablelm2" | "hunyuan"
        | "solar-open" => plain(&[QWEN2]),
        "qwen35" => plain(&[QWEN35]),
        _ => return None,
    })
}

/// The `tokenizer.ggml.pre` name llama.cpp gives the Split `regexes` of a
/// `tokenizer.json` (transformers' `(?i:'s|...)` written as llama.cpp writes
/// it), with `ignore_merges` telling Llama 3 (`llama-bpe`) from the other
/// users of its regex (`dbrx`: cl100k tokenizers such as OLMo 2's).
pub fn pre_name_of(regexes: &[String], ignore_merges: bool) -> Option<&'static str> {
    let fold = |r: &str| {
        r.replace(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)",
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
        )
    };
    let given: Vec<String> = regexes.iter().map(|r| fold(r)).collect();
    let names: &[&str] = if ignore_merges {
        &["llama-bpe"]
    } else {
        &["gpt-2", "smollm", "dbrx", "qwen2", "qwen35", "default"]
    };
    names.iter().copied().find(|n| {
        pre_tokenizer(n).is_some_and(|p| {
            p.regexes
                .iter()
                .copied()
                .eq(given.iter().map(String::as_str))
        })
    })
}

/// The `tokenizer.json` document of a GGUF's byte-level BPE vocabulary
/// (`tokenizer.ggml.model = gpt2`): tokens and merges as llama.cpp reads them.
pub fn tokenizer_json(gguf: &GgufFile) -> Result<Value> {
    let path = &gguf.path;
    let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
    let merges = string_array(gguf, "tokenizer.ggml.merges")?;
    let types = token_types(gguf, tokens.len());
    let name = gguf.meta_str("tokenizer.ggml.pre").unwrap_or("default");
    let pre = pre_tokenizer(name).ok_or_else(|| {
        Error::format(
            path,
            format!(
                "tokenizer.ggml.pre `{name}` is not a pre-tokenizer normscope knows \
                 (known: default, gpt-2, smollm, starcoder, llama-bpe, qwen2, qwen35, dbrx, olmo, \
                 and their llama.cpp aliases)"
            ),
        )
    })?;
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let splits = pre.regexes.iter().map(|r| {
        json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false})
    });
    let pre_tokenizer = json!({"type": "Sequence",
        "pretokenizers": splits.chain([byte_level(false)]).collect::<Vec<_>>()});
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<Value> = tokens
        .iter()
        .zip(types.iter().chain(std::iter::repeat(&1)))
        .enumerate()
        .filter(|(_, (_, &ty))| ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(i, (t, &ty))| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": rstrips(gguf, t),
                   "normalized": false, "special": ty == TOKEN_TYPE_CONTROL})
        })
        .collect();
    let add_bos = gguf
        .content
        .metadata
        .get("tokenizer.ggml.add_bos_token")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(pre.add_bos);
    let byte_post = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true});
    let post_processor = match bos(gguf, &tokens).filter(|_| add_bos) {
        Some(bos) => {
            json!({"type": "Sequence", "processors": [byte_post, super::bos_template(&bos.0, bos.1)]})
        }
        None => byte_post,
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": byte_level(true),
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": pre.ignore_merges, "vocab": vocab, "merges": merges}
    }))
}

/// The BOS token and id, when the file names one inside its vocabulary.
fn bos(gguf: &GgufFile, tokens: &[String]) -> Option<(String, u32)> {
    let id = gguf.meta_usize("tokenizer.ggml.bos_token_id").ok()?;
    Some((tokens.get(id)?.clone(), id as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_regex_compiles_and_splits_as_llama_cpp_does() {
        let split = |name: &str, text: &str| -> Vec<String> {
            use tokenizers::{PreTokenizedString, PreTokenizer, PreTokenizerWrapper};
            let splits: Vec<Value> = pre_tokenizer(name)
                .unwrap()
                .regexes
                .iter()
                .map(|r| json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false}))
                .collect();
            let pre: PreTokenizerWrapper =
                serde_json::from_value(json!({"type": "Sequence", "pretokenizers": splits}))
                    .unwrap();
            let mut s = PreTokenizedString::from(text);
            pre.pre_tokenize(&mut s).unwrap();
            s.get_splits(
                tokenizers::OffsetReferential::Original,
                tokenizers::OffsetType::Byte,
            )
            .into_iter()
            .map(|(piece, _, _)| piece.to_string())
            .collect()
        };
        assert_eq!(
            split("qwen2", "I'LL 2024"),
            ["I", "'LL", " ", "2", "0", "2", "4"]
        );
        assert_eq!(
            split("llama-bpe", "I'LL 2024"),
            ["I", "'LL", " ", "202", "4"]
        );
        assert_eq!(split("smollm", "ab 12"), ["ab", " ", "1", "2"]);
        assert_eq!(split("gpt-2", "I'LL  x"), ["I", "'", "LL", " ", " x"]);
        assert!(pre_tokenizer("no-such-name").is_none());
    }

    #[test]
    fn transformers_regexes_are_named_as_llama_cpp_names_them() {
        let qwen = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        assert_eq!(pre_name_of(&[qwen.to_string()], false), Some("qwen2"));
        assert_eq!(pre_name_of(&[LLAMA3.to_string()], true), Some("llama-bpe"));
        assert_eq!(pre_name_of(&[LLAMA3.to_string()], false), Some("dbrx"));
        assert_eq!(pre_name_of(&["x+".to_string()], false), None);
    }
}
