//! The default model (SmolLM2-135M-Instruct) against Hugging Face transformers'
//! float32 figures in ../shared/refs. The model comes through the same fetch the
//! CLI uses; when it cannot be fetched these tests fail, they never skip.

use std::sync::OnceLock;

use candle_core::{DType, Device, IndexOp, Tensor};
use normscope::weights::{self, fetch, LoadedModel};

use crate::common::{ids, max_abs_diff, normscope, read_ref, refs_dir};

fn default_model() -> &'static fetch::FetchedModel {
    static PATHS: OnceLock<fetch::FetchedModel> = OnceLock::new();
    PATHS.get_or_init(|| fetch::fetch_default().expect("the default model must be fetchable"))
}

fn load_f32() -> LoadedModel {
    let p = default_model();
    weights::load(Some(p.folder.to_str().unwrap()), &Device::Cpu, DType::F32).unwrap()
}

fn load_gguf() -> LoadedModel {
    let p = default_model();
    weights::load(Some(p.gguf.to_str().unwrap()), &Device::Cpu, DType::F32).unwrap()
}

fn prompt_tensor(ids: &[u32]) -> Tensor {
    Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
}

fn top_k(logits: &[f32], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    idx.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    idx.truncate(k);
    idx
}

#[test]
fn cli_greedy_generation_reproduces_transformers_token_ids() {
    default_model();
    let r = read_ref("hf/p1.json");
    let out = normscope()
        .args([
            "generate",
            "The capital of France is",
            "--max-tokens",
            "32",
            "--temperature",
            "0",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("stdout is one JSON object");
    assert_eq!(ids(&v["prompt_ids"]), ids(&r["token_ids"]));
    assert_eq!(ids(&v["generated_ids"]), ids(&r["greedy"]["new_ids"]));
    assert_eq!(v["stopped_at_eos"], true);
    assert!(v["timings"]["generation_tokens_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn last_logits_match_the_reference_top20_and_full_vector() {
    let lm = load_f32();
    let r = read_ref("hf/p1.json");
    let logits = lm
        .model
        .forward_last(&prompt_tensor(&ids(&r["token_ids"])), None)
        .unwrap();
    let logits: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
    let want_ids = ids(&r["last_logits"]["top20_ids"]);
    assert_eq!(top_k(&logits, 20), want_ids);
    let mut worst = 0f32;
    for (i, v) in want_ids
        .iter()
        .zip(r["last_logits"]["top20_values"].as_array().unwrap())
    {
        worst = worst.max((logits[*i as usize] - v.as_f64().unwrap() as f32).abs());
    }
    assert!(worst < 1e-2, "top-20 max abs diff {worst}");
    // The whole vector against the dumped reference (same 1e-2 bound, measured ~1e-4).
    let full = Tensor::read_npy(refs_dir().join("hf/p1.logits.npy")).unwrap();
    let ours = Tensor::new(logits.as_slice(), &Device::Cpu).unwrap();
    let d = max_abs_diff(&ours, &full);
    eprintln!("p1 last-position logits: max |ours - transformers| = {d:.2e} over 49152");
    assert!(d < 1e-2, "full logits max abs diff {d}");
}

#[test]
fn residual_stream_matches_the_reference_layer_by_layer() {
    struct Capture(Vec<Tensor>);
    impl normscope::model::Observer for Capture {
        fn resid_post(&mut self, _l: usize, x: &Tensor) -> normscope::Result<()> {
            let t = x.dim(1)?;
            self.0.push(x.i((0, t - 1))?);
            Ok(())
        }
    }
    let lm = load_f32();
    let r = read_ref("hf/p1.json");
    let mut cap = Capture(Vec::new());
    lm.model
        .hidden(&prompt_tensor(&ids(&r["token_ids"])), None, &mut cap)
        .unwrap();
    let want = Tensor::read_npy(refs_dir().join("hf/p1.hidden_last.npy")).unwrap(); // (31, 576)
    assert_eq!(cap.0.len(), 30);
    for (l, got) in cap.0.iter().enumerate() {
        let w = want.i(l + 1).unwrap();
        let scale = w
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let d = max_abs_diff(got, &w);
        assert!(
            d / scale < 1e-4,
            "layer {l}: max diff {d} against norm {scale}"
        );
    }
}

#[test]
fn greedy_without_cache_matches_48_reference_steps() {
    // Full recompute each step, EOS not special: includes near-ties (margin 0.05).
    let lm = load_f32();
    let r = read_ref("hf/p1.json");
    let mut seq = ids(&r["token_ids"]);
    let want = ids(&r["greedy_ignore_eos_nocache"]["new_ids"]);
    for (step, w) in want.iter().enumerate() {
        let logits = lm
            .model
            .forward_last(&prompt_tensor(&seq), None)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let next = normscope::generate::argmax(&logits).unwrap();
        assert_eq!(next, *w, "step {step}");
        seq.push(next);
    }
}

#[test]
fn tokenizers_reproduce_reference_ids_and_text() {
    let from_gguf = load_gguf().tokenizer;
    let from_folder = load_f32().tokenizer;
    let cases = read_ref("tokenizer.json");
    let p1 = read_ref("hf/p1.json");
    let mut checks: Vec<(String, Vec<u32>)> = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["text"].as_str().unwrap().to_string(), ids(&c["ids"])))
        .collect();
    checks.push((
        p1["prompt"].as_str().unwrap().to_string(),
        ids(&p1["token_ids"]),
    ));
    for tok in [&from_gguf, &from_folder] {
        for (text, want) in &checks {
            let got = tok.encode(text.as_str(), false).unwrap().get_ids().to_vec();
            assert_eq!(&got, want, "encoding {text:?}");
        }
        let text = tok.decode(&ids(&p1["greedy"]["new_ids"]), false).unwrap();
        assert_eq!(text, p1["greedy"]["text"].as_str().unwrap());
    }
}

#[test]
fn gguf_quantized_path_agrees_with_the_float32_folder() {
    let r = read_ref("hf/p1.json");
    let input = prompt_tensor(&ids(&r["token_ids"]));
    let a = load_f32().model.forward_last(&input, None).unwrap();
    let b = load_gguf().model.forward_last(&input, None).unwrap();
    assert_eq!(
        normscope::generate::argmax(&a.squeeze(0).unwrap()).unwrap(),
        normscope::generate::argmax(&b.squeeze(0).unwrap()).unwrap()
    );
    // Q4_1 weights with 8-bit activations: measured max diff about 0.5 on this prompt.
    let d = max_abs_diff(&a, &b);
    eprintln!("GGUF (Q4_1 x Q8_1) vs float32 folder: max |logit diff| = {d:.3}");
    assert!(d < 1.5, "max abs logit diff {d}");
}

/// `bench --quantize`'s in-situ quantization on the reference prompt: q8_0,
/// q4_1 and q4k keep transformers' first greedy token (" Paris"); q4_0 does
/// not (measured: it ranks " Paris" 9th), so for it the test only requires
/// " Paris" among its top 20.
#[test]
fn in_situ_quantized_models_keep_the_reference_first_token() {
    use candle_core::quantized::GgmlDType;
    let r = read_ref("hf/p1.json");
    let input = prompt_tensor(&ids(&r["token_ids"]));
    let want = ids(&r["greedy"]["new_ids"])[0];
    for dtype in [
        GgmlDType::Q8_0,
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q4K,
    ] {
        let opts = normscope::model::LoadOptions {
            quantize: Some(dtype),
            ..normscope::model::LoadOptions::inference(DType::F32, &Device::Cpu)
        };
        let spec = default_model().folder.to_string_lossy().into_owned();
        let lm = weights::load_with(Some(&spec), &opts, weights::WeightCheck::Cheap).unwrap();
        let logits: Vec<f32> = lm
            .model
            .forward_last(&input, None)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let order = top_k(&logits, logits.len());
        let rank = order.iter().position(|&t| t == want).unwrap();
        eprintln!(
            "--quantize {dtype:?}: first greedy token {} (reference {want}, ranked {})",
            order[0],
            rank + 1
        );
        if dtype == GgmlDType::Q4_0 {
            assert!(
                rank < 20,
                "--quantize q4_0 ranks the reference token {}",
                rank + 1
            );
        } else {
            assert_eq!(
                order[0], want,
                "--quantize {dtype:?} changed the first greedy token"
            );
        }
    }
}

#[test]
fn chat_template_renders_chatml_from_both_formats() {
    use normscope::generate::chat::{render, Message};
    let msgs = [Message {
        role: "user".into(),
        content: "Hi".into(),
    }];
    for lm in [load_f32(), load_gguf()] {
        let text = render(&lm.chat, &msgs).unwrap();
        assert!(text.starts_with("<|im_start|>system\n"), "{text}");
        assert!(
            text.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
            "{text}"
        );
        let ids = lm
            .tokenizer
            .encode(text.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(ids[0], 1, "<|im_start|> is one special token");
    }
}

/// `bench` without `--model` measures the default model's GGUF (not its
/// float32 folder) and names the file above its table.
#[test]
fn bench_defaults_to_the_gguf_and_names_it() {
    // Named as the user would type it: relative to the current folder.
    let cwd = std::env::current_dir().unwrap();
    let gguf = &default_model().gguf;
    let gguf = gguf
        .strip_prefix(&cwd)
        .unwrap_or(gguf)
        .display()
        .to_string();
    let args = ["bench", "-p", "8", "-n", "4", "-r", "1", "--threads", "1"];
    let out = normscope().args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in v["records"].as_array().unwrap() {
        assert_eq!(r["model_filename"], gguf.as_str());
        assert!(r["format"].as_str().unwrap().starts_with("Q4_1"), "{r}");
    }
    let out = normscope().args(args).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("model: {gguf} (gguf Q4_1")),
        "{stderr}"
    );
    assert!(table.starts_with("| model"), "{table}");
}
