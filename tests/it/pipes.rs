//! A standard output that goes away or fills up: every command that prints
//! ends quietly when its reader has gone (`| head`), says so on one line when
//! the disk is full (`> /dev/full`), never panics, and leaves no partial output
//! behind; and no source file prints with a macro that panics on such a stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use candle_core::quantized::GgmlDType;

use crate::common::Tiny;

/// Where a command's standard output goes.
#[derive(Clone, Copy, Debug)]
enum Stdout {
    /// A pipe whose reader is already closed.
    Closed,
    /// `/dev/full`: every write fails with "No space left on device".
    Full,
}

/// Runs `normscope ARGS` in `cwd` with its stdout sent to `stdout`.
fn run(cwd: &Path, models: &Path, args: &[String], stdout: Stdout) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_normscope"));
    cmd.current_dir(cwd)
        .env("NORMSCOPE_MODELS", models)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    match stdout {
        Stdout::Closed => {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            cmd.stdout(writer);
        }
        Stdout::Full => {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            cmd.stdout(full);
        }
    }
    cmd.output().unwrap()
}

/// Names of entries under `dir` (recursively) left by an unfinished output.
fn partial_outputs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains(".partial-") || name.contains(".part-") {
                found.push(path.clone());
            }
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    found
}

/// A models folder in which `fetch` finds the default model complete: its
/// GGUF (a sparse file of the right size) and a tiny folder under its name.
pub fn fake_models_dir(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    Tiny::default().write_folder(&models.join("SmolLM2-135M-Instruct"));
    let gguf = std::fs::File::create(models.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    gguf.set_len(98_362_432).unwrap();
    models
}

/// Text long enough to fine-tune and score the tiny model on.
fn text_file(dir: &Path) -> PathBuf {
    let path = dir.join("text.txt");
    std::fs::write(
        &path,
        "the cat sat on the mat and the dog sat on the log. ".repeat(60),
    )
    .unwrap();
    path
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Fine-tuning arguments small enough for a test (one step).
fn finetune_args(model: &str, text: &str, out: &str) -> Vec<String> {
    strings(&[
        "finetune",
        "--model",
        model,
        "--variant",
        "pre",
        "--data",
        text,
        "--out",
        out,
        "--steps",
        "1",
        "--seq-len",
        "16",
        "--batch",
        "2",
        "--eval-every",
        "1",
        "--eval-tokens",
        "32",
        "--save-every",
        "1",
        "--force",
    ])
}

#[test]
fn every_printing_command_survives_a_closed_or_full_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let m = Tiny::default().write_folder(&root.join("m"));
    let m = m.to_str().unwrap();
    let gguf = root.join("m.gguf");
    Tiny::default().write_gguf(&gguf, GgmlDType::F32);
    let gguf = gguf.to_str().unwrap();
    let text = text_file(root);
    let text = text.to_str().unwrap();
    let models = fake_models_dir(root);
    let run_dir = root.join("run");
    let made = Command::new(env!("CARGO_BIN_EXE_normscope"))
        .args(finetune_args(m, text, run_dir.to_str().unwrap()))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = |name: &str| root.join("out").join(name).to_string_lossy().into_owned();

    // Commands whose plain output goes to stdout, then those that print only
    // their --json object there.
    let plain: Vec<Vec<String>> = vec![
        strings(&["fetch"]),
        strings(&[
            "generate",
            "hello",
            "--model",
            m,
            "--max-tokens",
            "3",
            "--temperature",
            "0",
        ]),
        strings(&["analyze", "the cat sat on the mat", "--model", m]),
        strings(&["perplexity", "--file", text, "--model", m, "--ctx", "16"]),
        strings(&[
            "bench",
            "--model",
            m,
            "-p",
            "8",
            "-n",
            "2",
            "-r",
            "1",
            "--threads",
            "1",
        ]),
        strings(&["compare", run_dir.to_str().unwrap()]),
    ];
    let json_only: Vec<Vec<String>> = vec![
        strings(&[
            "variant",
            "--kind",
            "post",
            "--model",
            m,
            "--data",
            text,
            "--out",
            &out("variant"),
            "--force",
        ]),
        strings(&["convert", gguf, "--out", &out("converted"), "--force"]),
        strings(&[
            "quantize",
            m,
            "--type",
            "q8_0",
            "--out",
            &out("q8.gguf"),
            "--force",
        ]),
        finetune_args(m, text, &out("run")),
    ];
    let mut cases: Vec<Vec<String>> = Vec::new();
    for args in plain {
        cases.push([args.clone(), strings(&["--json"])].concat());
        cases.push(args);
    }
    for args in json_only {
        cases.push([args, strings(&["--json"])].concat());
    }
    for args in &cases {
        for stdout in [Stdout::Closed, Stdout::Full] {
            let o = run(root, &models, args, stdout);
            let stderr = String::from_utf8_lossy(&o.stderr);
            let what = format!("{args:?} into {stdout:?}");
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
            match stdout {
                Stdout::Closed => {
                    use std::os::unix::process::ExitStatusExt;
                    assert!(
                        o.status.success() || o.status.signal() == Some(13),
                        "{what}: {:?} {stderr}",
                        o.status
                    );
                    assert!(errors.is_empty(), "{what}: {stderr}");
                }
                Stdout::Full => {
                    assert_eq!(o.status.code(), Some(1), "{what}: {stderr}");
                    assert_eq!(errors.len(), 1, "{what}: {stderr}");
                    assert!(
                        errors[0].contains("standard output: No space left on device"),
                        "{what}: {stderr}"
                    );
                }
            }
            let left = partial_outputs(root);
            assert!(left.is_empty(), "{what} left {left:?}");
        }
    }
}

#[test]
fn a_closed_stderr_is_no_panic_either() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let generate = |model: &str| {
        Command::new(env!("CARGO_BIN_EXE_normscope"))
            .args(["generate", "hello", "--max-tokens", "3", "--progress"])
            .args(["--model", model])
            .stdin(Stdio::null())
            .stderr(closed())
            .output()
            .unwrap()
    };
    let ok = generate(m.to_str().unwrap());
    assert!(ok.status.success(), "{:?}", ok.status);
    assert!(!ok.stdout.is_empty());
    // An error with nowhere to say it: still a plain failure, not a panic (101).
    let bad = generate(dir.path().join("missing").to_str().unwrap());
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn no_source_file_prints_with_a_macro_that_panics_on_a_closed_stdout() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut todo = vec![src.clone()];
    let mut offenders = Vec::new();
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            // The one module that prints, handling every write error.
            if path.ends_with("cli/out.rs") || path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap();
            for (i, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                if ["println!(", "print!(", "eprintln!(", "eprint!(", "dbg!("]
                    .iter()
                    .any(|m| line.contains(m))
                {
                    offenders.push(format!("{}:{}: {line}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "print through cli::out instead:\n{}",
        offenders.join("\n")
    );
}
