//! The CPU against another device on synthetic checkpoints: logits of one
//! forward pass (f32 and f16 folders, a Q8_0 GGUF), greedy ids from
//! `generate --json --temperature 0`, and every figure of `analyze --json`.
//! The CUDA test runs in builds with `--features cuda` (scripts/cuda_check.sh);
//! the CPU-against-CPU run keeps the harness itself tested everywhere.

use std::path::Path;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::common::{max_abs_diff, normscope, Tiny};

/// Largest |logit| difference allowed, as a fraction of the largest |logit|.
const F32_TOL: f32 = 1e-3;
const F16_TOL: f32 = 3e-2;
const Q8_TOL: f32 = 5e-2;

fn logits(path: &Path, device: &Device, dtype: DType, ids: &[u32]) -> Tensor {
    let lm = normscope::weights::load(Some(path.to_str().unwrap()), device, dtype).unwrap();
    let ids = Tensor::new(ids, device).unwrap().unsqueeze(0).unwrap();
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

/// Checks `device` (`cpu`, `cuda`, `cuda:1`, ...) against the CPU.
fn parity(device: &str) {
    let dev = normscope::device::parse_device(device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let folder = tiny.write_folder(&dir.path().join("m"));
    let gguf = dir.path().join("m.gguf");
    tiny.write_gguf(&gguf, GgmlDType::Q8_0);
    let ids: Vec<u32> = (0..24u32)
        .map(|i| (i * 37 + 5) % tiny.vocab as u32)
        .collect();
    let cases = [
        (folder.as_path(), DType::F32, F32_TOL),
        (folder.as_path(), DType::F16, F16_TOL),
        (gguf.as_path(), DType::F32, Q8_TOL),
    ];
    for (path, dtype, tol) in cases {
        let cpu = logits(path, &Device::Cpu, DType::F32, &ids);
        let other = logits(path, &dev, dtype, &ids);
        let diff = max_abs_diff(&cpu, &other);
        let scale = cpu
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
    let m = folder.to_str().unwrap();
    let gen = [
        "generate",
        "The quick brown fox",
        "--model",
        m,
        "--temperature",
        "0",
        "--max-tokens",
        "16",
    ];
    let (a, b) = (json(&gen, "cpu"), json(&gen, device));
    assert_eq!(
        a["generated_ids"], b["generated_ids"],
        "greedy ids on {device}"
    );
    let ana = [
        "analyze",
        "The quick brown fox jumps over the lazy dog",
        "--model",
        m,
    ];
    same_figures(&json(&ana, "cpu"), &json(&ana, device), 5e-3, "analyze");
    println!("{device}: parity OK (logits, greedy ids, analyze figures)");
}

#[test]
fn parity_harness_on_cpu() {
    parity("cpu");
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_cpu() {
    parity(&std::env::var("NORMSCOPE_CUDA_DEVICE").unwrap_or_else(|_| "cuda".into()));
}
