//! SIGINT during `convert` and `finetune` leaves no partial output: no
//! destination where none was, the previous destination untouched where one
//! was (a `finetune --force` run included, until its first checkpoint), a
//! fine-tuning run's last checkpoint complete, and no `.partial-` folder
//! beside any of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use normscope::weights::fetch::fetch_default;

use crate::common::{files_under, Tiny};

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-") || n.contains(".old-"))
        .collect()
}

/// Starts `convert`, waits until it is writing its staged output, sends SIGINT.
fn interrupt_convert(gguf: &Path, out: &Path, force: bool) -> std::process::Output {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("normscope"));
    cmd.args([
        "convert",
        gguf.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    if force {
        cmd.arg("--force");
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let parent = out.parent().unwrap();
    let started = Instant::now();
    while leftovers(parent).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "convert never started writing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    interrupt(child)
}

#[test]
fn interrupted_convert_leaves_nothing_half_written() {
    let gguf = fetch_default().unwrap().gguf;
    let dir = tempfile::tempdir().unwrap();

    let fresh = dir.path().join("fresh");
    let out = interrupt_convert(&gguf, &fresh, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!fresh.exists(), "a partial destination was left");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());

    let previous = dir.path().join("previous");
    std::fs::create_dir_all(&previous).unwrap();
    std::fs::write(previous.join("marker"), "old").unwrap();
    interrupt_convert(&gguf, &previous, true);
    let kept: Vec<_> = std::fs::read_dir(&previous)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        kept,
        vec![std::ffi::OsString::from("marker")],
        "the previous output changed"
    );
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

/// A tiny model, a training text and the run folder to write, in `dir`.
fn finetune_inputs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let model = Tiny::default().write_folder(&dir.join("m"));
    let data = dir.join("text.txt");
    std::fs::write(&data, "the cat sat on the mat. ".repeat(400)).unwrap();
    (model, data, dir.join("run"))
}

/// `normscope finetune` of `model` on `data` into `run`: the pre variant,
/// 2 x 16 tokens a step, evaluating at step 0 only, then `extra`.
fn finetune(model: &Path, data: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("normscope"));
    cmd.args([
        "--model",
        model.to_str().unwrap(),
        "finetune",
        "--variant",
        "pre",
    ])
    .args([
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ])
    .args(["--seq-len", "16", "--batch", "2"])
    .args(["--eval-every", "1000000", "--eval-tokens", "64"])
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Sends SIGINT to `child` and checks it exits with status 130.
fn interrupt(child: std::process::Child) -> std::process::Output {
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    out
}

#[test]
fn interrupted_finetune_keeps_its_last_complete_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data, run) = finetune_inputs(dir.path());
    let child = finetune(
        &model,
        &data,
        &run,
        &["--steps", "1000000", "--save-every", "2"],
    )
    .spawn()
    .unwrap();
    let checkpoint = run.join("checkpoint");
    let started = Instant::now();
    while !checkpoint.join("model.safetensors").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "finetune never saved a checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Prefer to interrupt while the next checkpoint is being staged.
    let waiting = Instant::now();
    while leftovers(&run).is_empty() && waiting.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    interrupt(child);
    assert_eq!(
        leftovers(&run),
        Vec::<String>::new(),
        "a partial checkpoint was left"
    );
    // The checkpoint left in place is whole: it loads and runs.
    let lm = crate::common::load(&checkpoint);
    let ids = candle_core::Tensor::new(&[5u32, 6, 7], &candle_core::Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    lm.model.forward_last(&ids, None).unwrap();
}

/// The folder (the run itself or one staged beside it) where a run seeded
/// `seed` has recorded its settings and at least one training step.
fn run_written_with_seed(parent: &Path, seed: u64) -> Option<PathBuf> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| {
            let info = std::fs::read_to_string(d.join("run.json")).unwrap_or_default();
            let metrics = std::fs::read_to_string(d.join("metrics.jsonl")).unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(&info).is_ok_and(|v| v["seed"] == seed)
                && metrics.contains(r#""kind":"step""#)
        })
}

#[test]
fn interrupted_forced_finetune_keeps_the_previous_run() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data, run) = finetune_inputs(dir.path());
    let previous = finetune(&model, &data, &run, &["--steps", "2"])
        .output()
        .unwrap();
    assert!(
        previous.status.success(),
        "{}",
        String::from_utf8_lossy(&previous.stderr)
    );
    let before = files_under(&run);
    assert!(before.iter().any(|(p, _)| p.ends_with("model.safetensors")));
    // A --force run that never reaches its first checkpoint.
    let child = finetune(
        &model,
        &data,
        &run,
        &[
            "--steps",
            "1000000",
            "--save-every",
            "1000000",
            "--seed",
            "9",
            "--force",
        ],
    )
    .spawn()
    .unwrap();
    let started = Instant::now();
    while run_written_with_seed(dir.path(), 9).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the new run never wrote a step"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    interrupt(child);
    assert!(
        files_under(&run) == before,
        "the previous run changed before the new one had a checkpoint"
    );
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}
