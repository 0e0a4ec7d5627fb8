//! Layer-contribution analysis: figures against transformers' reference, a
//! block that does nothing, perplexity against an independent implementation,
//! and the output files.

use candle_core::{DType, Device, Tensor};

use crate::common::{normscope, read_ref, Tiny};

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = normscope().args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// Norms and ratios: 1e-3 relative. Cosine-like figures lie in [-1, 1] and
/// cross zero, so they get 1e-3 absolute.
fn close(name: &str, got: f64, want: f64) -> bool {
    let cosine_like = name.contains("cos") || name.contains("bi") || name.contains("angular");
    let tol = if cosine_like { 1e-3 } else { 1e-3 * want.abs() };
    (got - want).abs() <= tol
}

#[test]
fn p1_per_block_figures_and_lens_match_transformers() {
    normscope::weights::fetch::fetch_default().unwrap();
    let r = read_ref("hf/p1.json");
    let v = run_json(&["analyze", "The capital of France is"]);
    assert_eq!(v["default_view"], "excl0");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 30);
    let mut checked = 0;
    for (ours, theirs) in layers.iter().zip(r["layers"].as_array().unwrap()) {
        for name in [
            "norm_h_in",
            "norm_attn",
            "norm_h_mid",
            "norm_mlp",
            "norm_h_out",
            "norm_delta",
            "rel_contrib",
            "attn_ratio",
            "mlp_ratio",
            "cos",
            "attn_cos",
            "mlp_cos",
            "bi",
            "angular",
            "attn_angular",
            "mlp_angular",
        ] {
            for (view, suffix) in [("all", ""), ("excl0", "_excl0")] {
                let Some(want) = theirs
                    .get(format!("{name}{suffix}"))
                    .and_then(|x| x.as_f64())
                else {
                    continue;
                };
                let got = ours[view][name]["mean"].as_f64().unwrap();
                assert!(
                    close(name, got, want),
                    "layer {} {name}{suffix}: ours {got}, transformers {want}",
                    theirs["layer"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 30 * 30, "only {checked} figures compared");
    let final_norm = v["final_norm"]["all"]["mean"].as_f64().unwrap();
    assert!(close(
        "norm",
        final_norm,
        r["final_norm"]["mean_norm_over_tokens"].as_f64().unwrap()
    ));
    let lens = v["lens"].as_array().unwrap();
    for (ours, theirs) in lens
        .iter()
        .zip(r["logit_lens_last_position"].as_array().unwrap())
    {
        assert_eq!(
            ours["last_top1"], theirs["top1"],
            "lens top-1 at block {}",
            theirs["layer"]
        );
        let (a, b) = (
            ours["last_kl"].as_f64().unwrap(),
            theirs["kl_final_lens"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-3 * b.max(1.0),
            "lens KL at block {}: {a} vs {b}",
            theirs["layer"]
        );
    }
}

#[test]
fn perplexity_matches_an_independent_numpy_implementation() {
    // scripts/reference_ppl.py (numpy forward pass + the `tokenizers` package,
    // self-checked against transformers' p1 logits to 4.8e-5) printed
    // perplexity 5.640247 for these settings on the converted float32 folder.
    const NUMPY_PPL: f64 = 5.640247;
    normscope::weights::fetch::fetch_default().unwrap();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/data/genesis-kjv.txt");
    let v = run_json(&[
        "perplexity",
        "--file",
        file,
        "--ctx",
        "512",
        "--limit",
        "2048",
    ]);
    assert_eq!(v["predicted_tokens"], 2044);
    let ppl = v["perplexity"].as_f64().unwrap();
    assert!(
        (ppl / NUMPY_PPL - 1.0).abs() < 0.005,
        "perplexity {ppl} vs numpy {NUMPY_PPL}"
    );
}

#[test]
fn a_block_with_zero_output_weights_contributes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny {
        layers: 3,
        ..Tiny::default()
    };
    let mut t = tiny.tensors();
    for name in ["self_attn.o_proj", "mlp.down_proj"] {
        let key = format!("model.layers.1.{name}.weight");
        t.insert(key.clone(), t[&key].zeros_like().unwrap());
    }
    let m = tiny.write_folder_with(&dir.path().join("m"), &t, 1);
    let m = m.to_str().unwrap();
    let text = "the quick brown fox jumps over the lazy dog, again and again and again";
    let v = run_json(&["analyze", text, "--model", m, "--ablate"]);
    let block = &v["layers"][1];
    for view in ["all", "excl0"] {
        assert_eq!(block[view]["rel_contrib"]["mean"].as_f64().unwrap(), 0.0);
        assert!(block[view]["bi"]["mean"].as_f64().unwrap().abs() < 1e-6);
    }
    assert!(
        v["layers"][0]["all"]["rel_contrib"]["mean"]
            .as_f64()
            .unwrap()
            > 0.01
    );
    let base = v["perplexity"].as_f64().unwrap();
    let abl = &v["ablation"][1];
    assert_eq!(abl["layer"], 1);
    assert!((abl["perplexity"].as_f64().unwrap() / base - 1.0).abs() < 1e-5);
    // --skip-layers on perplexity agrees.
    let file = dir.path().join("t.txt");
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    let full = run_json(&["perplexity", "--file", f, "--model", m])["perplexity"]
        .as_f64()
        .unwrap();
    let skip = run_json(&[
        "perplexity",
        "--file",
        f,
        "--model",
        m,
        "--skip-layers",
        "1",
    ])["perplexity"]
        .as_f64()
        .unwrap();
    assert!((full / skip - 1.0).abs() < 1e-5, "{full} vs {skip}");
    assert!((full / base - 1.0).abs() < 1e-5);
    let other = run_json(&[
        "perplexity",
        "--file",
        f,
        "--model",
        m,
        "--skip-layers",
        "0",
    ])["perplexity"]
        .as_f64()
        .unwrap();
    assert!(
        (other / full - 1.0).abs() > 1e-3,
        "removing a working block changes perplexity"
    );
}

#[test]
fn perplexity_is_exp_mean_nll_over_windows() {
    // Checked against the library's logits directly, window by window.
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let lm = crate::common::load(&m);
    let text = "abcdefghijklmnopqrstuvwxyz0123456789";
    let ids = normscope::generate::encode(&lm, text).unwrap();
    let mut nll = 0.0f64;
    let mut count = 0;
    for w in ids.chunks(10).filter(|w| w.len() > 1) {
        let x = Tensor::new(w, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logits = lm
            .model
            .forward_all(&x, None)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        let rows: Vec<Vec<f64>> = logits.to_vec2().unwrap();
        for j in 0..w.len() - 1 {
            let lse = rows[j].iter().map(|v| v.exp()).sum::<f64>().ln();
            nll += lse - rows[j][w[j + 1] as usize];
            count += 1;
        }
    }
    let file = dir.path().join("t.txt");
    std::fs::write(&file, text).unwrap();
    let v = run_json(&[
        "perplexity",
        "--file",
        file.to_str().unwrap(),
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        "10",
    ]);
    assert_eq!(v["predicted_tokens"].as_u64().unwrap() as usize, count);
    let want = (nll / count as f64).exp();
    assert!((v["perplexity"].as_f64().unwrap() / want - 1.0).abs() < 1e-4);
}

#[test]
fn outputs_are_written_whole_and_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let a = Tiny::default().write_folder(&dir.path().join("a"));
    let b = Tiny {
        seed: 99,
        ..Tiny::default()
    }
    .write_folder(&dir.path().join("b"));
    let (csv, svg, html) = (
        dir.path().join("f.csv"),
        dir.path().join("f.svg"),
        dir.path().join("f.html"),
    );
    let args = |force: bool| {
        let mut v: Vec<String> = ["analyze", "some text to look at, twice over", "--ablate"]
            .map(String::from)
            .to_vec();
        for (flag, p) in [
            ("--model", &a),
            ("--model", &b),
            ("--csv", &csv),
            ("--plot", &svg),
            ("--report", &html),
        ] {
            v.push(flag.into());
            v.push(p.to_str().unwrap().into());
        }
        if force {
            v.push("--force".into());
        }
        v
    };
    let out = normscope().args(args(false)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        csv_text.contains("rel_contrib_excl0_mean") && csv_text.contains("ablation_perplexity")
    );
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.contains("polyline"));
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(
        html_text.contains("<svg")
            && html_text.contains("Pre-Norm hypothesis")
            && html_text.contains("--report")
    );
    // Two models overlay in one plot: both labels appear.
    assert!(svg_text.contains(a.to_str().unwrap()) && svg_text.contains(b.to_str().unwrap()));

    let again = normscope().args(args(false)).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(normscope()
        .args(args(true))
        .output()
        .unwrap()
        .status
        .success());
}
