//! Text generation: prefill, then one token at a time through the KV cache,
//! streaming decoded text as it comes.

pub mod chat;
mod detok;
pub mod sampling;

use std::time::Instant;

use candle_core::{Tensor, D};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{KvState, Model};
use crate::progress;
use crate::weights::LoadedModel;
pub use sampling::SamplingConfig;

/// Wall-clock figures of one generation.
#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    /// Prompt length.
    pub prompt_tokens: usize,
    /// Prompt tokens per second during prefill.
    pub prompt_tokens_per_sec: f64,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Tokens per second after the first (decode only).
    pub generation_tokens_per_sec: f64,
    /// Seconds from start to the first generated token.
    pub time_to_first_token_s: f64,
    /// Seconds for the whole generation.
    pub total_s: f64,
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-sequence token.
    Eos,
    /// As many tokens as were asked for.
    MaxTokens,
    /// The model's context is full: the prompt and the tokens generated
    /// take every position.
    Context,
}

/// The result of one generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The generated ids, including the EOS that ended generation.
    pub generated_ids: Vec<u32>,
    /// The generated text (without the final EOS token's text).
    pub text: String,
    /// True when an EOS token ended generation.
    pub stopped_at_eos: bool,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Timing figures.
    pub timings: Timings,
}

/// Tokenizes a prompt the way the model's tokenizer does by default: with
/// the special tokens its post-processor adds (Gemma's BOS; nothing for
/// SmolLM2, which uses no BOS).
pub fn encode(lm: &LoadedModel, text: &str) -> Result<Vec<u32>> {
    encode_with(lm, text, true)
}

/// Tokenizes `text` without adding special tokens (a rendered chat template,
/// which writes its own, or text to be cut into windows).
pub fn encode_plain(lm: &LoadedModel, text: &str) -> Result<Vec<u32>> {
    encode_with(lm, text, false)
}

fn encode_with(lm: &LoadedModel, text: &str, special: bool) -> Result<Vec<u32>> {
    let enc = lm
        .tokenizer
        .encode(text, special)
        .map_err(|e| Error::usage(format!("cannot tokenize the text: {e}")))?;
    Ok(enc.get_ids().to_vec())
}

/// The token the model's tokenizer puts in front of every text (its BOS),
/// when it adds one.
pub fn leading_token(lm: &LoadedModel) -> Option<u32> {
    let with = encode(lm, "a").ok()?;
    let without = encode_plain(lm, "a").ok()?;
    (with.len() == without.len() + 1 && with[1..] == without[..]).then(|| with[0])
}

/// Prompt tokens per prefill step: long prompts go through the KV cache in
/// chunks of this many, so that progress can be reported between them.
pub const PREFILL_CHUNK: usize = 512;

/// Runs `ids` through `model` into `cache`, `chunk` tokens at a time
/// (reporting progress in tokens), and returns the last position's logits.
pub fn prefill(model: &Model, ids: &[u32], cache: &mut KvState, chunk: usize) -> Result<Tensor> {
    if ids.is_empty() || chunk == 0 {
        return Err(Error::usage(
            "prefill needs at least one token, in chunks of at least one",
        ));
    }
    let device = model.device();
    let mut task = progress::task("prefill", ids.len() as u64, "tokens");
    let mut logits = None;
    for part in ids.chunks(chunk) {
        let input = Tensor::new(part, device)?.unsqueeze(0)?;
        logits = Some(model.forward_last(&input, Some(cache))?);
        task.inc(part.len() as u64);
    }
    Ok(logits.expect("at least one chunk"))
}

/// Generates up to `max_tokens` tokens after `prompt_ids`, calling `on_text` with
/// each piece of decoded text as soon as it is complete.
pub fn generate(
    lm: &LoadedModel,
    prompt_ids: &[u32],
    max_tokens: usize,
    sampling: &SamplingConfig,
    on_text: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Generation> {
    sampling.validate()?;
    if prompt_ids.is_empty() {
        return Err(Error::usage("the prompt is empty"));
    }
    if max_tokens == 0 {
        return Err(Error::setting("max_tokens", "must be at least 1"));
    }
    let ctx = lm.model.cfg.max_position_embeddings;
    if prompt_ids.len() >= ctx {
        return Err(Error::usage(format!(
            "the prompt has {} tokens; the model's context is {ctx} tokens",
            prompt_ids.len()
        )));
    }
    let room = ctx - prompt_ids.len();
    let device = lm.model.device();
    let mut processor = sampling.processor();
    let mut cache = lm.model.new_cache();
    let mut stream = detok::TextStream::new(&lm.tokenizer);
    let mut all: Vec<u32> = prompt_ids.to_vec();
    let mut generated = Vec::new();
    let mut text = String::new();
    let mut stopped_at_eos = false;

    let start = Instant::now();
    let mut input = None;
    let mut prefill_s = 0.0;
    let mut first_token_s = 0.0;
    for step in 0..max_tokens.min(room) {
        let logits = match &input {
            None => prefill(&lm.model, prompt_ids, &mut cache, PREFILL_CHUNK)?,
            Some(input) => lm.model.forward_last(input, Some(&mut cache))?,
        }
        .squeeze(0)?;
        if step == 0 {
            prefill_s = start.elapsed().as_secs_f64();
        }
        let logits = if sampling.repeat_penalty != 1.0 {
            let from = all.len().saturating_sub(sampling.repeat_last_n);
            candle_transformers::utils::apply_repeat_penalty(
                &logits,
                sampling.repeat_penalty,
                &all[from..],
            )?
        } else {
            logits
        };
        let next = processor.sample(&logits)?;
        if step == 0 {
            first_token_s = start.elapsed().as_secs_f64();
        }
        generated.push(next);
        all.push(next);
        if lm.eos_ids.contains(&next) {
            stopped_at_eos = true;
            break;
        }
        if let Some(piece) = stream.step(next)? {
            text.push_str(&piece);
            on_text(&piece)?;
        }
        input = Some(Tensor::new(&[next], device)?.unsqueeze(0)?);
    }
    let total_s = start.elapsed().as_secs_f64();
    let stop_reason = if stopped_at_eos {
        StopReason::Eos
    } else if generated.len() < max_tokens {
        StopReason::Context
    } else {
        StopReason::MaxTokens
    };
    let decode_tokens = generated.len().saturating_sub(1);
    let decode_s = total_s - first_token_s;
    Ok(Generation {
        prompt_ids: prompt_ids.to_vec(),
        timings: Timings {
            prompt_tokens: prompt_ids.len(),
            prompt_tokens_per_sec: prompt_ids.len() as f64 / prefill_s.max(1e-9),
            generated_tokens: generated.len(),
            generation_tokens_per_sec: if decode_tokens > 0 {
                decode_tokens as f64 / decode_s.max(1e-9)
            } else {
                0.0
            },
            time_to_first_token_s: first_token_s,
            total_s,
        },
        generated_ids: generated,
        text,
        stopped_at_eos,
        stop_reason,
    })
}

/// The greedy pick: the id of the largest logit of one row of logits,
/// `(vocab,)` or `(1, vocab)`.
pub fn argmax(logits: &Tensor) -> Result<u32> {
    let row = if logits.rank() == 2 {
        logits.squeeze(0)?
    } else {
        logits.clone()
    };
    Ok(row.argmax(D::Minus1)?.to_scalar::<u32>()?)
}
