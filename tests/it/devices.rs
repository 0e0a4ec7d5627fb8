//! Parity on synthetic checkpoints: logits of one forward pass (f32 and f16
//! folders, a Q8_0 GGUF), greedy ids from `generate --json --temperature 0`,
//! and every figure of `analyze --json`, each checked against a different
//! implementation, so every case can fail:
//! - on another device (`cuda_matches_cpu`, in builds with `--features cuda`,
//!   run by scripts/cuda_check.sh), against the CPU as the CLI runs it;
//! - on the CPU (`cpu_matches_f64_reference`, always), against the same
//!   weights in f64 on candle's own CPU ops. normscope's CPU kernels (dense,
//!   Q8_0, attention over the flat KV cache) are f32-only, so the reference
//!   runs none of them; for the Q8_0 GGUF it is the f64 model of the GGUF's
//!   dequantized weights (half-split RoPE where the GGUF path uses the
//!   interleaved one), generation recomputes the whole sequence without a KV
//!   cache, and analyze runs through the library.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use normscope::analysis::perplexity::windows;
use normscope::analysis::{analyze, AnalyzeOptions};
use normscope::weights::LoadedModel;
use serde_json::Value;

use crate::common::{max_abs_diff, normscope, Tiny};

/// Largest |logit| difference allowed, as a fraction of the largest |logit|.
const F32_TOL: f32 = 1e-3;
const F16_TOL: f32 = 3e-2;
/// Q8_0 activations (the kernels and candle quantize them; the f64 reference
/// does not) add up to half a quantization step per value.
const Q8_TOL: f32 = 5e-2;

const PROMPT: &str = "The quick brown fox";
const TEXT: &str = "The quick brown fox jumps over the lazy dog";

fn load(path: &Path, device: &Device, dtype: DType) -> LoadedModel {
    normscope::weights::load(Some(path.to_str().unwrap()), device, dtype).unwrap()
}

/// The folder's model in f64 on the CPU, on candle's elementary ops (the
/// differentiable path: candle has no fused f64 RMSNorm or softmax).
fn reference_model(folder: &Path) -> LoadedModel {
    let mut lm = load(folder, &Device::Cpu, DType::F64);
    lm.model.differentiable = true;
    lm
}

/// Logits `(t, vocab)` of `ids` in one forward pass, as f32 on the CPU.
fn logits(lm: &LoadedModel, ids: &[u32]) -> Tensor {
    let ids = Tensor::new(ids, lm.model.device())
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let out = lm.model.forward_all(&ids, None).unwrap();
    out.to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

/// `normscope ARGS --json` on `device`, parsed.
fn json(args: &[&str], device: &str) -> Value {
    let out = normscope()
        .args(args)
        .args(["--json", "--device", device])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} on {device}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts `a` and `b` have the same shape and strings, and numbers within
/// `rtol` (relative) or 1e-4 (absolute: figures such as 1 - cos sit near 0,
/// and arccos near 1 amplifies rounding); `at` names the place for messages.
fn same_figures(a: &Value, b: &Value, rtol: f64, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-4 + rtol * x.abs().max(y.abs()),
                "{at}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths differ");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same_figures(x, y, rtol, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}: keys differ"
            );
            for (k, v) in x {
                same_figures(v, &y[k], rtol, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// The f64 reference model's greedy ids after `PROMPT`, as `generate` picks
/// them (stopping after an end-of-sequence id), recomputing the whole
/// sequence at every step instead of using a KV cache.
fn reference_greedy(folder: &Path, max_tokens: usize) -> Value {
    let lm = reference_model(folder);
    let mut ids = normscope::generate::encode(&lm, PROMPT).unwrap();
    let prompt_len = ids.len();
    while ids.len() < prompt_len + max_tokens {
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let next =
            normscope::generate::argmax(&lm.model.forward_last(&input, None).unwrap()).unwrap();
        ids.push(next);
        if lm.eos_ids.contains(&next) {
            break;
        }
    }
    serde_json::json!(ids[prompt_len..])
}

/// `analyze`'s figures (lens included, as the CLI's default) of the f64
/// reference model over `TEXT`, through the library.
fn reference_analysis(folder: &Path) -> Value {
    let mut lm = reference_model(folder);
    let ids = normscope::generate::encode_plain(&lm, TEXT).unwrap();
    let ctx = 512.min(lm.model.cfg.max_position_embeddings);
    let wins = windows(&ids, ctx, normscope::generate::leading_token(&lm)).unwrap();
    let tokenizer = lm.tokenizer.clone();
    let decode = move |id: u32| tokenizer.decode(&[id], false).unwrap_or_default();
    let opts = AnalyzeOptions {
        lens: true,
        ..AnalyzeOptions::default()
    };
    let figures = analyze(&mut lm.model, &wins, &opts, &decode, &mut || {}).unwrap();
    serde_json::to_value(figures).unwrap()
}

/// `tensors` with every matrix stored as Q8_0 and read back, as the GGUF holds them.
fn q8_0_round_trip(tensors: &HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    tensors
        .iter()
        .map(|(name, t)| {
            let t = if t.rank() == 2 {
                QTensor::quantize(t, GgmlDType::Q8_0)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap()
            } else {
                t.clone()
            };
            (name.clone(), t)
        })
        .collect()
}

/// Checks `device` (`cpu`, `cuda`, `cuda:1`, ...) against a different
/// implementation (see the module's doc).
fn parity(device: &str) {
    let dev = normscope::device::parse_device(device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let folder = tiny.write_folder(&dir.path().join("m"));
    let gguf = dir.path().join("m.gguf");
    tiny.write_gguf(&gguf, GgmlDType::Q8_0);
    let dequantized = tiny.write_folder_with(
        &dir.path().join("m-q8_0-dequantized"),
        &q8_0_round_trip(&tiny.tensors()),
        1,
    );
    let ids: Vec<u32> = (0..24u32)
        .map(|i| (i * 37 + 5) % tiny.vocab as u32)
        .collect();
    // (checkpoint, its f64 reference folder, dtype, tolerance)
    let cases = [
        (folder.as_path(), folder.as_path(), DType::F32, F32_TOL),
        (folder.as_path(), folder.as_path(), DType::F16, F16_TOL),
        (gguf.as_path(), dequantized.as_path(), DType::F32, Q8_TOL),
    ];
    for (path, f64_reference, dtype, tol) in cases {
        let reference = if dev.is_cpu() {
            logits(&reference_model(f64_reference), &ids)
        } else {
            logits(&load(path, &Device::Cpu, DType::F32), &ids)
        };
        let other = logits(&load(path, &dev, dtype), &ids);
        let diff = max_abs_diff(&reference, &other);
        let scale = reference
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        println!(
            "{device} {dtype:?} {}: max |logit diff| {diff:.3e} (largest |logit| {scale:.2})",
            path.display()
        );
        assert!(
            diff <= tol * scale.max(1.0),
            "{device} {dtype:?} {}: {diff} > {tol} x {scale}",
            path.display()
        );
    }
    // Untied: the tied tiny model repeats one token, whatever the decode does.
    let untied = Tiny {
        tied: false,
        ..Tiny::default()
    }
    .write_folder(&dir.path().join("untied"));
    let m = untied.to_str().unwrap();
    let gen = [
        "generate",
        PROMPT,
        "--model",
        m,
        "--temperature",
        "0",
        "--max-tokens",
        "16",
    ];
    let ana = ["analyze", TEXT, "--model", m];
    let got_ids = json(&gen, device)["generated_ids"].clone();
    let got_figures = json(&ana, device);
    let (want_ids, want_figures) = if dev.is_cpu() {
        (reference_greedy(&untied, 16), reference_analysis(&untied))
    } else {
        (
            json(&gen, "cpu")["generated_ids"].clone(),
            json(&ana, "cpu"),
        )
    };
    assert_eq!(got_ids, want_ids, "greedy ids on {device}");
    // The reference's keys: the figures (the CLI adds the model's description).
    for (key, want) in want_figures.as_object().unwrap() {
        same_figures(&got_figures[key], want, 5e-3, &format!("analyze.{key}"));
    }
    println!("{device}: parity OK (logits, greedy ids, analyze figures)");
}

#[test]
fn cpu_matches_f64_reference() {
    parity("cpu");
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_cpu() {
    parity(&std::env::var("NORMSCOPE_CUDA_DEVICE").unwrap_or_else(|_| "cuda".into()));
}
