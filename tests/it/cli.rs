//! The command line on bad input: one line on stderr, non-zero exit, no panic.

use crate::common::{normscope, Tiny};

fn fails_with(args: &[&str], needle: &str) {
    let out = normscope()
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        stderr.contains(needle),
        "{args:?}: stderr {stderr:?} lacks {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let folder = Tiny::default().write_folder(&dir.path().join("m"));
    let m = folder.to_str().unwrap();
    fails_with(
        &["generate", "hi", "--model", "/nonexistent/model"],
        "no such file or folder",
    );
    fails_with(
        &["generate", "hi", "--model", m, "--dtype", "f8"],
        "--dtype `f8` is not known",
    );
    fails_with(
        &["generate", "hi", "--model", m, "--device", "tpu"],
        "--device `tpu` is not known",
    );
    fails_with(&["generate", "", "--model", m], "the prompt is empty");
    fails_with(
        &["generate", "hi", "--model", m, "--max-tokens", "0"],
        "--max-tokens must be at least 1",
    );
    fails_with(
        &["generate", "hi", "--model", m, "--temperature", "-1"],
        "--temperature",
    );
    fails_with(
        &["generate", "hi", "--model", m, "--top-p", "1.5"],
        "--top-p",
    );
    fails_with(
        &["generate", "hi", "--model", m, "--skip-layers", "7"],
        "layer 7 does not exist",
    );
    #[cfg(not(feature = "cuda"))]
    fails_with(
        &["generate", "hi", "--model", m, "--device", "cuda"],
        "--features cuda",
    );
    let long = "a".repeat(200);
    fails_with(&["generate", &long, "--model", m], "context is 128 tokens");
    let cfg = dir.path().join("m/config.json");
    std::fs::write(&cfg, "{ not json").unwrap();
    fails_with(&["generate", "hi", "--model", m], "config.json");
    let notmodel = dir.path().join("x.txt");
    std::fs::write(&notmodel, "x").unwrap();
    fails_with(
        &["generate", "hi", "--model", notmodel.to_str().unwrap()],
        "not a model",
    );
    let bad_prompt = dir.path().join("p.bin");
    std::fs::write(&bad_prompt, [0xff, 0xfe, 0x00]).unwrap();
    fails_with(
        &[
            "generate",
            "--prompt-file",
            bad_prompt.to_str().unwrap(),
            "--model",
            m,
        ],
        "not UTF-8",
    );
}

#[test]
fn generate_on_a_tiny_model_streams_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let folder = Tiny::default().write_folder(&dir.path().join("m"));
    let m = folder.to_str().unwrap();
    let out = normscope()
        .args([
            "generate",
            "hello",
            "--model",
            m,
            "--max-tokens",
            "5",
            "--temperature",
            "0.8",
            "--seed",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["prompt_ids"].as_array().unwrap().len(), 5);
    let n = v["generated_ids"].as_array().unwrap().len();
    assert!((1..=5).contains(&n));
    // The same seed gives the same tokens.
    let again = normscope()
        .args([
            "generate",
            "hello",
            "--model",
            m,
            "--max-tokens",
            "5",
            "--temperature",
            "0.8",
            "--seed",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["generated_ids"], w["generated_ids"]);
    // Chat mode renders the folder's template.
    let chat = normscope()
        .args([
            "generate",
            "hello",
            "--chat",
            "--model",
            m,
            "--max-tokens",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    let c: serde_json::Value = serde_json::from_slice(&chat.stdout).unwrap();
    assert_eq!(c["prompt"], "<|user|>hello<|assistant|>");
}
