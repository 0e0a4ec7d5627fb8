//! What a new user trips over in the first hour: which flags each command
//! shows, messages that name the flag or say what is wrong with the file,
//! paths that are never taken for hub repo ids, and progress on stderr only
//! when it is a terminal or `--progress` asks for it.

use std::path::Path;

use candle_core::quantized::GgmlDType;

use normscope::generate::prefill;

use crate::common::{normscope, Tiny};

/// `normscope ARGS` run in `cwd`: (success, stdout, stderr).
fn run_in(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = normscope().current_dir(cwd).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The help text of `command`.
fn help(command: &str) -> String {
    let (ok, stdout, _) = run_in(Path::new("."), &[command, "--help"]);
    assert!(ok, "{command} --help failed");
    stdout
}

/// The flags a help text lists.
fn flags(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches([',', '.']).to_string())
        .collect()
}

#[test]
fn each_command_shows_only_the_flags_it_uses() {
    let model_flags = ["--model", "--device", "--threads"];
    for command in ["fetch", "convert", "compare"] {
        let f = flags(&help(command));
        for flag in model_flags {
            assert!(
                !f.contains(&flag.to_string()),
                "{command} lists {flag}: {f:?}"
            );
        }
    }
    for command in ["fetch", "compare", "quantize"] {
        let f = flags(&help(command));
        for flag in ["--dtype", "--check-weights"] {
            assert!(
                !f.contains(&flag.to_string()),
                "{command} lists {flag}: {f:?}"
            );
        }
    }
    for command in ["generate", "analyze", "perplexity", "bench", "variant"] {
        let f = flags(&help(command));
        for flag in model_flags.iter().chain(&["--dtype", "--check-weights"]) {
            assert!(
                f.contains(&flag.to_string()),
                "{command} lacks {flag}: {f:?}"
            );
        }
    }
    for command in ["generate", "perplexity", "bench", "variant", "finetune"] {
        assert!(
            !help(command).contains("several"),
            "{command}'s --model help says several"
        );
    }
    assert!(help("analyze").contains("several"));
    let convert = help("convert");
    let dtype = convert.lines().find(|l| l.contains("--dtype")).unwrap();
    assert!(dtype.contains("written"), "convert --dtype: {dtype}");
    assert!(!dtype.contains("ompute"), "convert --dtype: {dtype}");
    // Every global flag still applies everywhere.
    for command in ["fetch", "generate", "compare"] {
        let f = flags(&help(command));
        for flag in ["--json", "--verbose", "--progress"] {
            assert!(
                f.contains(&flag.to_string()),
                "{command} lacks {flag}: {f:?}"
            );
        }
    }
}

#[test]
fn numeric_flags_name_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let m = m.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["generate", "hi", "--model", m, "--max-tokens", "-1"],
            "--max-tokens",
        ),
        (vec!["analyze", "hi", "--model", m, "--ctx", "-5"], "--ctx"),
        (vec!["bench", "--model", m, "-r", "-2"], "-r"),
        (
            vec!["generate", "hi", "--model", m, "--threads", "0"],
            "--threads",
        ),
    ] {
        let (ok, stdout, stderr) = run_in(dir.path(), &args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stdout.is_empty());
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("unexpected argument"),
            "{args:?}: {stderr}"
        );
    }
    let (_, _, stderr) = run_in(dir.path(), &["generate", "hi", "--threads", "0"]);
    assert!(stderr.contains("at least 1"), "{stderr}");
    // A missing required argument is named on the one line.
    let (ok, _, stderr) = run_in(dir.path(), &["quantize", m]);
    assert!(!ok, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--type") && stderr.contains("--out"),
        "{stderr}"
    );
    // --model before the command still works, and is refused where it means nothing.
    let (ok, _, stderr) = run_in(
        dir.path(),
        &["--model", m, "generate", "hi", "--max-tokens", "1"],
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run_in(dir.path(), &["--model", m, "fetch"]);
    assert!(!ok && stderr.contains("--model does not apply"), "{stderr}");
}

#[test]
fn a_missing_path_is_no_such_file_and_only_owner_name_goes_to_the_hub() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("models")).unwrap();
    let hub = tempfile::tempdir().unwrap();
    for spec in [
        "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "models/SmolLM2-135M-Instruct",
        "./SmolLM2",
        "~/models/x",
        "a/b/c",
        "nothing.safetensors",
    ] {
        let out = normscope()
            .current_dir(cwd.path())
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HUB_CACHE", hub.path())
            .args(["generate", "hi", "--model", spec])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("no such file"), "{spec}: {stderr}");
        assert!(stderr.contains(spec), "{spec}: {stderr}");
        assert!(
            !stderr.contains("hub") && !stderr.contains("HF_HUB"),
            "{spec}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{spec}: {stderr}");
    }
    let out = normscope()
        .current_dir(cwd.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", hub.path())
        .args(["generate", "hi", "--model", "nobody/nothing"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("HF_HUB_OFFLINE"), "{stderr}");
}

#[test]
fn a_truncated_gguf_says_it_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.gguf");
    Tiny::default().write_gguf(&whole, GgmlDType::F32);
    let bytes = std::fs::read(&whole).unwrap();
    // Cut in the tensor data, and cut in the header's metadata.
    for keep in [bytes.len() - 100, 200] {
        let cut = dir.path().join(format!("cut{keep}.gguf"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let (ok, _, stderr) = run_in(
            dir.path(),
            &["generate", "hi", "--model", cut.to_str().unwrap()],
        );
        assert!(!ok);
        let expect = format!("truncated: the file is {keep} bytes, its header needs at least ");
        assert!(stderr.contains(&expect), "{keep}: {stderr}");
        assert!(
            stderr.contains(&format!("cut{keep}.gguf")),
            "{keep}: {stderr}"
        );
        let needs: u64 = stderr[stderr.find(&expect).unwrap() + expect.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(needs > keep as u64, "{keep}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn progress_only_on_a_terminal_or_when_asked_and_no_colour_in_redirected_logs() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let m = m.to_str().unwrap();
    let text = "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(2);
    let gen = ["generate", text.as_str(), "--model", m, "--max-tokens", "2"];
    // stderr is a pipe here: nothing on it.
    let (ok, _, stderr) = run_in(dir.path(), &gen);
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains("prefill") && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    // --progress: plain lines, without ANSI codes.
    let (ok, _, stderr) = run_in(dir.path(), &[&gen[..], &["--progress"]].concat());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("loading: 2/2 blocks"), "{stderr:?}");
    assert!(stderr.contains("prefill: "), "{stderr:?}");
    assert!(stderr.contains(" tokens ("), "{stderr:?}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    let ppl = [
        "perplexity",
        "--file",
        "t.txt",
        "--model",
        m,
        "--ctx",
        "16",
        "--progress",
    ];
    let (ok, _, stderr) = run_in(dir.path(), &ppl);
    assert!(!ok, "no t.txt yet: {stderr}");
    std::fs::write(dir.path().join("t.txt"), &text).unwrap();
    let (ok, _, stderr) = run_in(dir.path(), &ppl);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("perplexity: "), "{stderr:?}");
    assert!(stderr.contains(" windows ("), "{stderr:?}");
    // -vv logs without colour when stderr is not a terminal.
    let (ok, _, stderr) = run_in(dir.path(), &[&gen[..], &["-vv"]].concat());
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("DEBUG") || stderr.contains("INFO"),
        "{stderr:?}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn chunked_prefill_gives_the_logits_of_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let lm = crate::common::load(&Tiny::default().write_folder(&dir.path().join("m")));
    let ids: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 300).collect();
    let whole = prefill(&lm.model, &ids, &mut lm.model.new_cache(), ids.len()).unwrap();
    for chunk in [1, 7, 16] {
        let parts = prefill(&lm.model, &ids, &mut lm.model.new_cache(), chunk).unwrap();
        let d = crate::common::max_abs_diff(&whole, &parts);
        assert!(d < 1e-5, "chunks of {chunk}: {d}");
    }
}

#[test]
fn variant_says_it_needs_fine_tuning_and_writes_readable_weights() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let text = dir.path().join("text.txt");
    std::fs::write(
        &text,
        "In the beginning God created the heaven and the earth. ".repeat(40),
    )
    .unwrap();
    let out = dir.path().join("post");
    let (ok, _, stderr) = run_in(
        dir.path(),
        &[
            "variant",
            "--kind",
            "post",
            "--model",
            m.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--data",
            text.to_str().unwrap(),
        ],
    );
    assert!(ok, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("generates nonsense until fine-tuned"))
        .unwrap_or_else(|| panic!("no fine-tuning note: {stderr}"));
    assert!(line.contains("held-out loss "), "{line}");
    assert!(line.contains("(the source: "), "{line}");
    assert!(line.contains("tokens of"), "{line}");
    #[cfg(unix)]
    for name in ["model.safetensors", "config.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode & 0o044,
            0o044,
            "{name} is {mode:o}, not readable by all"
        );
    }
}

#[test]
fn convert_writes_model_safetensors_readable_by_all() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("m.gguf");
    Tiny::default().write_gguf(&gguf, GgmlDType::F32);
    let out = dir.path().join("hf");
    let (ok, _, stderr) = run_in(
        dir.path(),
        &[
            "convert",
            gguf.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |n: &str| std::fs::metadata(out.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("model.safetensors"), mode("config.json"));
        assert_eq!(mode("model.safetensors") & 0o044, 0o044);
    }
}

#[test]
fn the_report_command_is_shell_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let report = dir.path().join("my report.html");
    let args = [
        "analyze",
        "The capital of France is",
        "--model",
        m.to_str().unwrap(),
        "--no-lens",
        "--report",
        report.to_str().unwrap(),
    ];
    let (ok, _, stderr) = run_in(dir.path(), &args);
    assert!(ok, "{stderr}");
    let html = std::fs::read_to_string(&report).unwrap();
    let start = html.find("Made by <code>").unwrap() + "Made by <code>".len();
    let code = &html[start..start + html[start..].find("</code>").unwrap()];
    let command = code
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let argv = shlex::split(&command).unwrap_or_else(|| panic!("not shell words: {command}"));
    assert_eq!(&argv[1..], &args[..], "{command}");
}

#[test]
fn lens_agreement_follows_the_tables_token_set() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let args = [
        "analyze",
        "In the beginning God created",
        "--model",
        m.to_str().unwrap(),
    ];
    let (ok, stdout, stderr) = run_in(dir.path(), &[&args[..], &["--json"]].concat());
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let lens = v["lens"].as_array().unwrap();
    let excl0: Vec<f64> = lens
        .iter()
        .map(|l| {
            let all = l["top1_agreement"].as_f64().unwrap() * l["kl"]["n"].as_f64().unwrap();
            let later =
                l["top1_agreement_excl0"].as_f64().unwrap() * l["kl_excl0"]["n"].as_f64().unwrap();
            // One window: the two counts differ by position 0's hit or miss.
            let pos0 = all - later;
            assert!(pos0.abs() < 1e-9 || (pos0 - 1.0).abs() < 1e-9, "{l}");
            l["top1_agreement_excl0"].as_f64().unwrap()
        })
        .collect();
    let (ok, table, stderr) = run_in(dir.path(), &args);
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<usize>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), excl0.len(), "{table}");
    for (row, want) in rows.iter().zip(&excl0) {
        let agree = row.split_whitespace().nth(9).unwrap();
        assert_eq!(agree, format!("{want:.2}"), "{row}");
    }
}
