//! The GGUF metadata of a Hugging Face folder, as llama.cpp's
//! `convert_hf_to_gguf.py` writes it: `<arch>.*` hyperparameters and the
//! byte-level BPE tokenizer (`tokenizer.ggml.model = gpt2`: tokens, token
//! types, merges, special ids, chat template, and `tokenizer.ggml.pre` named
//! after the split regexes the tokenizer uses).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::gguf_out::Kv;
use super::spm_model;
use crate::error::{Error, Result};
use crate::model::config::Architecture;
use crate::model::Config;

/// llama.cpp's token types.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    crate::weights::validate::json::parse_strict(&bytes)
        .map(Some)
        .map_err(|e| Error::format(path, e))
}

/// Metadata for the GGUF of the folder `dir` whose config is `cfg`.
pub fn metadata(dir: &Path, cfg: &Config) -> Result<Vec<Kv>> {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    let u = |v: usize| v as u32;
    let arch = cfg.architecture.gguf_name();
    let key = |k: &str| format!("{arch}.{k}");
    let mut kvs = vec![
        Kv::str("general.architecture", arch),
        Kv::str("general.type", "model"),
        Kv::str("general.name", &name),
        Kv::u32(&key("block_count"), u(cfg.num_layers)),
        Kv::u32(&key("context_length"), u(cfg.max_position_embeddings)),
        Kv::u32(&key("embedding_length"), u(cfg.hidden_size)),
        Kv::u32(&key("feed_forward_length"), u(cfg.intermediate_size)),
        Kv::u32(&key("attention.head_count"), u(cfg.num_heads)),
        Kv::u32(&key("attention.head_count_kv"), u(cfg.num_kv_heads)),
        Kv::f32(&key("rope.freq_base"), cfg.rope_theta as f32),
        Kv::f32(
            &key("attention.layer_norm_rms_epsilon"),
            cfg.rms_norm_eps as f32,
        ),
    ];
    if cfg.head_dim * cfg.num_heads != cfg.hidden_size {
        kvs.push(Kv::u32(&key("attention.key_length"), u(cfg.head_dim)));
        kvs.push(Kv::u32(&key("attention.value_length"), u(cfg.head_dim)));
    }
    kvs.push(Kv::u32(&key("vocab_size"), u(cfg.vocab_size)));
    kvs.push(Kv::u32(&key("rope.dimension_count"), u(cfg.head_dim)));
    if cfg.architecture == Architecture::Phi3 {
        // As the converter writes them; llama.cpp reads the window and disables it.
        kvs.push(Kv::u32(
            &key("rope.scaling.original_context_length"),
            u(cfg.max_position_embeddings),
        ));
        if cfg.has_sliding_layers() {
            kvs.push(Kv::u32(
                &key("attention.sliding_window"),
                u(cfg.sliding_window),
            ));
        }
    }
    kvs.extend(tokenizer(dir, cfg)?);
    Ok(kvs)
}

/// `tokenizer.*` keys from tokenizer.json (or, for a SentencePiece model,
/// tokenizer.model), tokenizer_config.json and chat_template.jinja.
fn tokenizer(dir: &Path, cfg: &Config) -> Result<Vec<Kv>> {
    let tok_cfg = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or_default();
    let path = dir.join("tokenizer.json");
    let tok = read_json(&path)?;
    let spm = dir.join("tokenizer.model");
    let byte_fallback = tok
        .as_ref()
        .is_some_and(|t| t["model"]["byte_fallback"] == true);
    let (mut kvs, tokens) = if spm.exists() && (byte_fallback || tok.is_none()) {
        sentencepiece_vocab(&spm, dir, cfg, &tok_cfg)?
    } else {
        let tok = tok.ok_or_else(|| Error::format(&path, "tokenizer.json is missing"))?;
        if byte_fallback {
            return Err(Error::format(
                &path,
                "a SentencePiece tokenizer (BPE with byte_fallback) needs its tokenizer.model beside it",
            ));
        }
        bpe_vocab(&tok, &path, cfg)?
    };
    let id_of = |key: &str| -> Option<u32> {
        let content = match &tok_cfg[key] {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("content")?.as_str()?.to_string(),
            _ => return None,
        };
        tokens.iter().position(|t| *t == content).map(|i| i as u32)
    };
    let bos = id_of("bos_token").or(cfg.bos_token_id);
    let eos = id_of("eos_token").or(cfg.eos_token_ids.first().copied());
    if let Some(id) = bos {
        kvs.push(Kv::u32("tokenizer.ggml.bos_token_id", id));
    }
    if let Some(id) = eos {
        kvs.push(Kv::u32("tokenizer.ggml.eos_token_id", id));
    }
    if let Some(id) = id_of("unk_token") {
        kvs.push(Kv::u32("tokenizer.ggml.unknown_token_id", id));
    }
    let config = read_json(&dir.join("config.json"))?.unwrap_or_default();
    let pad = id_of("pad_token").or(config["pad_token_id"].as_u64().map(|i| i as u32));
    if let Some(id) = pad.filter(|&i| (i as usize) < tokens.len()) {
        kvs.push(Kv::u32("tokenizer.ggml.padding_token_id", id));
    }
    // The converter's LlamaModel (the families whose q/k rows it permutes)
    // carries the tokenizer's add_prefix_space over.
    if let Some(b) = tok_cfg["add_prefix_space"].as_bool() {
        if cfg.architecture.gguf_permutes_qk() {
            kvs.push(Kv::bool("tokenizer.ggml.add_space_prefix", b));
        }
    }
    if let Some(b) = tok_cfg["add_bos_token"].as_bool() {
        kvs.push(Kv::bool("tokenizer.ggml.add_bos_token", b));
    }
    if let Some(b) = tok_cfg["add_eos_token"].as_bool() {
        kvs.push(Kv::bool("tokenizer.ggml.add_eos_token", b));
    }
    if let Some(t) = chat_template(dir, &tok_cfg)? {
        kvs.push(Kv::str("tokenizer.chat_template", &t));
    }
    Ok(kvs)
}

/// A byte-level BPE vocabulary (`tokenizer.ggml.model = gpt2`): tokens,
/// token types, merges and the pre-tokenizer's llama.cpp name; and the tokens.
fn bpe_vocab(tok: &Value, path: &Path, cfg: &Config) -> Result<(Vec<Kv>, Vec<String>)> {
    let bad = |m: String| Error::format(path, m);
    let model = &tok["model"];
    if model["type"] != "BPE" {
        return Err(bad(
            "only byte-level BPE and SentencePiece tokenizers can be written to GGUF (model.type must be BPE)".into(),
        ));
    }
    let ignore_merges = model["ignore_merges"] == true;
    let pre = pre_tokenizer(&tok["pre_tokenizer"], ignore_merges).map_err(bad)?;

    let mut by_id: HashMap<usize, String> = HashMap::new();
    let vocab = model["vocab"]
        .as_object()
        .ok_or_else(|| bad("model.vocab is not an object".into()))?;
    for (token, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| bad(format!("token `{token}` has a non-integer id")))?;
        by_id.insert(id as usize, token.clone());
    }
    let mut types: HashMap<usize, i32> = HashMap::new();
    for t in tok["added_tokens"].as_array().into_iter().flatten() {
        let (Some(id), Some(content)) = (t["id"].as_u64(), t["content"].as_str()) else {
            return Err(bad("an added token lacks its id or content".into()));
        };
        let (content, kind) = added_token(t, content);
        by_id.insert(id as usize, content);
        types.insert(id as usize, kind);
    }
    if let Some(&max) = by_id.keys().max() {
        if max >= cfg.vocab_size {
            return Err(bad(format!(
                "token id {max} is beyond the model's vocabulary of {} (config.json vocab_size)",
                cfg.vocab_size
            )));
        }
    }
    let mut tokens = Vec::with_capacity(cfg.vocab_size);
    let mut token_types = Vec::with_capacity(cfg.vocab_size);
    for id in 0..cfg.vocab_size {
        match by_id.get(&id) {
            Some(t) => {
                tokens.push(t.clone());
                token_types.push(types.get(&id).copied().unwrap_or(NORMAL));
            }
            None => {
                tokens.push(format!("[PAD{id}]"));
                token_types.push(UNUSED);
            }
        }
    }
    let merges: Vec<String> = model["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Array(pair) if pair.len() == 2 => match (pair[0].as_str(), pair[1].as_str()) {
                (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                _ => Err(bad("a merge is not a pair of strings".into())),
            },
            _ => Err(bad("a merge is neither a string nor a pair".into())),
        })
        .collect::<Result<_>>()?;
    let kvs = vec![
        Kv::str("tokenizer.ggml.model", "gpt2"),
        Kv::str("tokenizer.ggml.pre", pre),
        Kv::strings("tokenizer.ggml.tokens", &tokens),
        Kv::i32s("tokenizer.ggml.token_type", &token_types),
        Kv::strings("tokenizer.ggml.merges", &merges),
    ];
    Ok((kvs, tokens))
}

/// A SentencePiece vocabulary (`tokenizer.ggml.model = llama`) as
/// convert_hf_to_gguf.py's `_create_vocab_sentencepiece` writes it: the
/// pieces of tokenizer.model with their scores and types, then the added
/// tokens of tokenizer_config.json (control when special, user-defined
/// otherwise; for Phi-3 also tokenizer.json's, as its converter reads them),
/// ids up to the model's vocabulary padded as unused; and the tokens.
fn sentencepiece_vocab(
    spm: &Path,
    dir: &Path,
    cfg: &Config,
    tok_cfg: &Value,
) -> Result<(Vec<Kv>, Vec<String>)> {
    let bytes = std::fs::read(spm).map_err(|e| Error::io(spm, e))?;
    let pieces = spm_model::pieces(&bytes)
        .map_err(|m| Error::format(spm, format!("not a SentencePiece model: it {m}")))?;
    let n = cfg.vocab_size;
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000f32; n];
    let mut types = vec![UNUSED; n];
    for (id, p) in pieces.into_iter().enumerate().take(n) {
        tokens[id] = p.text;
        scores[id] = p.score;
        types[id] = p.kind;
    }
    let added = dir.join("added_tokens.json");
    if let Some(Value::Object(map)) = read_json(&added)? {
        for (token, id) in map {
            if let Some(id) = id.as_u64().map(|i| i as usize).filter(|&i| i < n) {
                tokens[id] = token;
                scores[id] = -1000.0;
                types[id] = USER_DEFINED;
            }
        }
    }
    // Added tokens as tokenizer_config.json lists them, and for Phi-3 (whose
    // converter reads both) as tokenizer.json does too.
    let listed = tok_cfg["added_tokens_decoder"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(id, t)| Some((id.parse::<usize>().ok()?, t)));
    let tok_json = match cfg.architecture {
        Architecture::Phi3 => read_json(&dir.join("tokenizer.json"))?.unwrap_or_default(),
        _ => Value::Null,
    };
    let in_json = tok_json["added_tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["id"].as_u64()? as usize, t)));
    for (id, t) in listed.chain(in_json).filter(|(id, _)| *id < n) {
        let Some(content) = t["content"].as_str() else {
            continue;
        };
        (tokens[id], types[id]) = added_token(t, content);
        scores[id] = -1000.0;
    }
    let kvs = vec![
        Kv::str("tokenizer.ggml.model", "llama"),
        Kv::str("tokenizer.ggml.pre", "default"),
        Kv::strings("tokenizer.ggml.tokens", &tokens),
        Kv::f32s("tokenizer.ggml.scores", &scores),
        Kv::i32s("tokenizer.ggml.token_type", &types),
    ];
    Ok((kvs, tokens))
}

/// An added token's text and type as the converter writes them: control
/// when marked special or when it looks special, otherwise user-defined with
/// its `▁` spaces pre-normalized to spaces.
fn added_token(t: &Value, content: &str) -> (String, i32) {
    if t["special"].as_bool().unwrap_or(false) || looks_special(content) {
        (content.to_string(), CONTROL)
    } else {
        (content.replace('\u{2581}', " "), USER_DEFINED)
    }
}

/// convert_hf_to_gguf.py's `does_token_look_special`: tokens some models
/// mark as not special but that ought to be control tokens.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// llama.cpp's name for the pre-tokenizer: plain ByteLevel (GPT-2's split),
/// Digits + ByteLevel (SmolLM's), or regex Splits + ByteLevel whose regexes
/// are those of a family llama.cpp names (see [`crate::weights::tokenizer::pre_name_of`]).
fn pre_tokenizer(p: &Value, ignore_merges: bool) -> std::result::Result<&'static str, String> {
    let byte_level = |v: &Value| v["type"] == "ByteLevel" && v["add_prefix_space"] != true;
    if byte_level(p) && p["use_regex"] != false && !ignore_merges {
        return Ok("gpt-2");
    }
    let steps = match p["type"].as_str() {
        Some("Sequence") => p["pretokenizers"].as_array().cloned().unwrap_or_default(),
        _ => vec![p.clone()],
    };
    if let [digits, bl] = steps.as_slice() {
        if digits["type"] == "Digits" && digits["individual_digits"] == true && byte_level(bl) {
            return Ok("smollm");
        }
    }
    let regexes: Option<Vec<String>> = match steps.split_last() {
        Some((last, splits)) if byte_level(last) && last["use_regex"] == false => splits
            .iter()
            .map(|s| {
                (s["type"] == "Split" && s["behavior"] == "Isolated" && s["invert"] != true)
                    .then(|| s["pattern"]["Regex"].as_str().map(String::from))
                    .flatten()
            })
            .collect(),
        _ => None,
    };
    regexes
        .and_then(|r| crate::weights::tokenizer::pre_name_of(&r, ignore_merges))
        .ok_or_else(|| {
            format!(
                "pre-tokenizer {p} has no GGUF counterpart normscope knows \
                 (ByteLevel, Digits + ByteLevel, or the Split regexes of a llama.cpp pre-tokenizer)"
            )
        })
}

/// The chat template: chat_template.jinja, or tokenizer_config.json's
/// `chat_template` (a string, or a list of named templates: `default` first).
fn chat_template(dir: &Path, tok_cfg: &Value) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(|e| Error::io(&jinja, e));
    }
    Ok(match &tok_cfg["chat_template"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t["name"] == "default")
            .or_else(|| list.first())
            .and_then(|t| t["template"].as_str())
            .map(String::from),
        _ => None,
    })
}
