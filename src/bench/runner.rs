//! The timed runs: prompt processing (one forward pass over `n` prompt tokens
//! into a fresh KV cache) and token generation (`n` single-token decode steps
//! through the KV cache, each fed the previous step's greedy token).

use std::time::{Instant, SystemTime};

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::generate::argmax;
use crate::model::Model;

/// One benchmark test, named as llama-bench names them (`pp512`, `tg128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Prompt processing of this many tokens.
    Prompt(usize),
    /// Generation of this many tokens.
    Generate(usize),
}

impl Test {
    /// `pp512` or `tg128`.
    pub fn name(&self) -> String {
        match self {
            Test::Prompt(n) => format!("pp{n}"),
            Test::Generate(n) => format!("tg{n}"),
        }
    }

    /// Tokens processed per run.
    pub fn tokens(&self) -> usize {
        match self {
            Test::Prompt(n) | Test::Generate(n) => *n,
        }
    }
}

/// Wall-clock samples of one test.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The test.
    pub test: Test,
    /// When the first timed run started.
    pub started: SystemTime,
    /// Nanoseconds of each timed run (the prefill alone for prompt tests).
    pub samples_ns: Vec<u64>,
    /// Prompt tests: nanoseconds from the start of prefill to the first
    /// sampled token id on the host, per run.
    pub first_token_ns: Vec<u64>,
    /// Bytes the KV cache held at the end of a run.
    pub kv_cache_bytes: u64,
}

/// Tokens decoded, untimed, before a generation test starts.
pub const TG_PREFILL: usize = 1;

/// Runs `test` once untimed (warm-up), then `repetitions` times timed.
pub fn measure(model: &Model, test: Test, repetitions: usize) -> Result<Measurement> {
    let ctx = model.cfg.max_position_embeddings;
    let needed = match test {
        Test::Prompt(n) => n,
        Test::Generate(n) => TG_PREFILL + n,
    };
    if test.tokens() == 0 || needed > ctx {
        return Err(Error::usage(format!(
            "{}: needs {needed} positions and at least one token; the model's context is {ctx} tokens",
            test.name()
        )));
    }
    let warmup = match test {
        Test::Prompt(_) => test,
        Test::Generate(n) => Test::Generate(n.min(16)),
    };
    let what = format!("bench {} (warm-up + repetitions)", test.name());
    let mut task = crate::progress::task(&what, repetitions as u64 + 1, "runs");
    run_once(model, warmup)?;
    task.inc(1);
    let started = SystemTime::now();
    let mut samples_ns = Vec::with_capacity(repetitions);
    let mut first_token_ns = Vec::new();
    let mut kv_cache_bytes = 0;
    for _ in 0..repetitions {
        let (run, first, kv) = run_once(model, test)?;
        task.inc(1);
        samples_ns.push(run);
        first_token_ns.extend(first);
        kv_cache_bytes = kv;
    }
    Ok(Measurement {
        test,
        started,
        samples_ns,
        first_token_ns,
        kv_cache_bytes,
    })
}

/// One run: `(timed nanoseconds, nanoseconds to the first token for prompt
/// tests, bytes of the KV cache at the end)`.
fn run_once(model: &Model, test: Test) -> Result<(u64, Option<u64>, u64)> {
    let device = model.device();
    let vocab = model.cfg.vocab_size as u64;
    let mut cache = model.new_cache();
    match test {
        Test::Prompt(n) => {
            let ids: Vec<u32> = (0..n as u64)
                .map(|i| ((i * 7919 + 13) % vocab) as u32)
                .collect();
            let ids = Tensor::new(ids.as_slice(), device)?.unsqueeze(0)?; // (1, n)
            device.synchronize()?;
            let t0 = Instant::now();
            let logits = model.forward_last(&ids, Some(&mut cache))?; // (1, vocab)
            device.synchronize()?;
            let prefill = t0.elapsed();
            std::hint::black_box(argmax(&logits)?);
            Ok((nanos(prefill), Some(nanos(t0.elapsed())), cache.bytes()))
        }
        Test::Generate(n) => {
            let mut next = 1;
            for _ in 0..TG_PREFILL {
                next = step(model, device, next, &mut cache)?;
            }
            let t0 = Instant::now();
            for _ in 0..n {
                next = step(model, device, next, &mut cache)?;
            }
            Ok((nanos(t0.elapsed()), None, cache.bytes()))
        }
    }
}

/// Decodes one token and returns the greedy next id (which waits for the device).
fn step(model: &Model, device: &Device, id: u32, cache: &mut crate::model::KvState) -> Result<u32> {
    let ids = Tensor::new(&[[id]], device)?; // (1, 1)
    argmax(&model.forward_last(&ids, Some(cache))?)
}

fn nanos(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}
