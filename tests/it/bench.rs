//! `normscope bench --json` on every weight format, with tiny settings: the
//! documented fields exist with sane types (no timing assertions).

use std::path::Path;

use candle_core::quantized::GgmlDType;
use serde_json::Value;

use crate::common::{normscope, write_json, Tiny};

/// Runs `bench --json -p 8 -n 4 -r 2` with `extra` and returns its records.
fn records(extra: &[&str]) -> Vec<Value> {
    let out = normscope()
        .args([
            "bench",
            "--json",
            "-p",
            "8",
            "-n",
            "4",
            "-r",
            "2",
            "--threads",
            "1",
        ])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{extra:?} failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{extra:?}: stdout is not one JSON object ({e})"));
    let recs = v["records"].as_array().expect("a `records` array").clone();
    assert_eq!(recs.len(), 2, "{extra:?}: one pp8 and one tg4 record");
    recs
}

/// Checks one record's fields and returns its `format`.
fn check(r: &Value, what: &str) -> String {
    let s = |k: &str| {
        r[k].as_str()
            .unwrap_or_else(|| panic!("{what}: `{k}` is not a string: {r}"))
            .to_string()
    };
    let u = |k: &str| {
        r[k].as_u64()
            .unwrap_or_else(|| panic!("{what}: `{k}` is not a count: {r}"))
    };
    let f = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{what}: `{k}` is not a number: {r}"))
    };
    for k in [
        "model_filename",
        "model_type",
        "backends",
        "test_time",
        "device",
        "dtype",
        "source",
    ] {
        assert!(!s(k).is_empty(), "{what}: `{k}` is empty");
    }
    assert!(u("model_size") > 0 && u("model_n_params") > 0 && u("n_threads") == 1);
    assert!(u("bytes_per_token") > 0 && u("avg_ns") > 0 && u("kv_cache_bytes") > 0);
    u("stddev_ns");
    assert!(f("avg_ts") > 0.0 && f("stddev_ts") >= 0.0 && f("load_ms") > 0.0);
    assert_eq!(r["samples_ns"].as_array().unwrap().len(), 2, "{what}");
    assert_eq!(r["samples_ts"].as_array().unwrap().len(), 2, "{what}");
    assert_eq!(s("backends"), "CPU");
    assert_eq!(s("device"), "cpu");
    assert!(r["quantize"].is_null() || r["quantize"].is_string());
    assert!(r["mem_read_gb_per_s"].is_null());
    if cfg!(target_os = "linux") {
        assert!(u("peak_rss_bytes") > 1 << 20 && u("load_peak_rss_bytes") > 1 << 20);
    }
    let test = s("test");
    match test.as_str() {
        "pp8" => {
            assert_eq!((u("n_prompt"), u("n_gen")), (8, 0));
            assert!(f("ttft_ms") > 0.0 && r["gb_per_s"].is_null(), "{what}: {r}");
        }
        "tg4" => {
            assert_eq!((u("n_prompt"), u("n_gen")), (0, 4));
            assert!(f("gb_per_s") > 0.0 && r["ttft_ms"].is_null(), "{what}: {r}");
        }
        other => panic!("{what}: unexpected test {other}"),
    }
    assert!(s("model_type").ends_with(s("format").split('+').next().unwrap()));
    s("format")
}

/// Runs one format and checks both records; returns (format, source, n_params).
fn run_format(what: &str, extra: &[&str]) -> (String, String, u64) {
    let recs = records(extra);
    let format = check(&recs[0], what);
    assert_eq!(check(&recs[1], what), format);
    let source = recs[0]["source"].as_str().unwrap().to_string();
    (format, source, recs[0]["model_n_params"].as_u64().unwrap())
}

#[test]
fn bench_json_on_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let folder = tiny.write_folder(&dir.path().join("m"));
    let m = folder.to_str().unwrap();
    let gguf = dir.path().join("m.gguf");
    tiny.write_gguf(&gguf, GgmlDType::Q8_0);
    let cfg = dir.path().join("config.json");
    write_json(&cfg, &tiny.config());
    let g = gguf.to_str().unwrap();
    let c = cfg.to_str().unwrap();
    let cases: [(&str, Vec<&str>, &str, &str); 6] = [
        ("f32", vec!["--model", m], "F32", "safetensors"),
        (
            "f16",
            vec!["--model", m, "--dtype", "f16"],
            "F16",
            "safetensors",
        ),
        // bf16 has no CPU matmul: it computes in f32
        (
            "bf16",
            vec!["--model", m, "--dtype", "bf16"],
            "F32",
            "safetensors",
        ),
        ("gguf", vec!["--model", g], "Q8_0", "gguf"),
        (
            "isq",
            vec!["--model", m, "--quantize", "q8_0"],
            "Q8_0",
            "safetensors",
        ),
        ("random", vec!["--random-init", c], "F32", "random"),
    ];
    let mut params = Vec::new();
    for (what, args, format, source) in cases {
        let (f, s, n) = run_format(what, &args);
        assert_eq!((f.as_str(), s.as_str()), (format, source), "{what}");
        params.push(n);
    }
    assert!(
        params.windows(2).all(|w| w[0] == w[1]),
        "parameter counts differ: {params:?}"
    );
}

#[test]
fn bench_markdown_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let folder = Tiny::default().write_folder(&dir.path().join("m"));
    let m = folder.to_str().unwrap();
    let out = normscope()
        .args([
            "bench",
            "--model",
            m,
            "-p",
            "8",
            "-n",
            "2",
            "-r",
            "1",
            "--quantize",
            "q4_1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("| model"), "{table}");
    assert!(
        table.contains(" pp8 |") && table.contains(" tg2 |") && table.contains("Q4_1"),
        "{table}"
    );
    let gguf = dir.path().join("m.gguf");
    Tiny::default().write_gguf(&gguf, GgmlDType::Q8_0);
    let fails = |args: &[&str], needle: &str| {
        let out = normscope().arg("bench").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && out.stdout.is_empty(),
            "{args:?} should fail"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} lacks {needle:?}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    };
    fails(
        &["--model", gguf.to_str().unwrap(), "--quantize", "q8_0"],
        "already quantized",
    );
    fails(
        &["--model", m, "--quantize", "q3"],
        "--quantize `q3` is not known",
    );
    fails(
        &["--model", m, "--quantize", "q8_0", "--dtype", "f16"],
        "computes in f32",
    );
    fails(
        &[
            "--model",
            m,
            "--random-init",
            Path::new(m).join("config.json").to_str().unwrap(),
        ],
        "exclude each other",
    );
    fails(&["--model", m, "-r", "0"], "at least 1");
    fails(&["--model", m, "-p", "0", "-n", "0"], "no tests");
    fails(&["--model", m, "-p", "1000"], "context is 128 tokens");
}

#[test]
fn bench_takes_a_list_of_models() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let folder = tiny.write_folder(&dir.path().join("m"));
    let gguf = dir.path().join("m.gguf");
    tiny.write_gguf(&gguf, GgmlDType::Q8_0);
    let (m, g) = (folder.to_str().unwrap(), gguf.to_str().unwrap());
    let bench = |models: &[&str], json: bool| {
        let out = normscope()
            .args(["bench", "-p", "8", "-n", "2", "-r", "1", "--threads", "1"])
            .args(models)
            .args(if json { &["--json"][..] } else { &[] })
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{models:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let comma = format!("{m},{g}");
    for models in [vec!["--model", m, "--model", g], vec!["--model", &comma]] {
        let v: Value = serde_json::from_str(&bench(&models, true)).unwrap();
        let recs = v["records"].as_array().unwrap();
        let got: Vec<(&str, &str, &str)> = recs
            .iter()
            .map(|r| {
                (
                    r["model_filename"].as_str().unwrap(),
                    r["test"].as_str().unwrap(),
                    r["format"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(),
            [
                ("pp8", "F32"),
                ("tg2", "F32"),
                ("pp8", "Q8_0"),
                ("tg2", "Q8_0")
            ],
            "{models:?}"
        );
        assert!(
            got[0].0.ends_with("m") && got[2].0.ends_with("m.gguf"),
            "{got:?}"
        );
    }
    let table = bench(&["--model", m, "--model", g], false);
    assert!(table.starts_with("| file "), "{table}");
    let row = |file: &str, test: &str| {
        table
            .lines()
            .filter(|l| l.starts_with(&format!("| {file} ")) && l.contains(&format!(" {test} |")))
            .count()
    };
    for test in ["pp8", "tg2"] {
        assert_eq!((row("m", test), row("m.gguf", test)), (1, 1), "{table}");
    }
    assert!(table.contains("\nm.gguf: load: "), "{table}");
    // One model keeps the table without a file column.
    assert!(bench(&["--model", g], false).starts_with("| model"));
}
