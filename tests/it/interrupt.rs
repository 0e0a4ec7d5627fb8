//! SIGINT during `convert` and `finetune` leaves no partial output: no
//! destination where none was, the previous destination untouched where one
//! was, a fine-tuning run's last checkpoint complete, and no `.partial-`
//! folder beside any of them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use normscope::weights::fetch::fetch_default;

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
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

#[test]
fn interrupted_convert_leaves_nothing_half_written() {
    let gguf = fetch_default().unwrap().gguf;
    let dir = tempfile::tempdir().unwrap();

    let fresh = dir.path().join("fresh");
    let out = interrupt_convert(&gguf, &fresh, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!fresh.exists(), "a partial destination was left");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());

    let previous = dir.path().join("previous");
    std::fs::create_dir_all(&previous).unwrap();
    std::fs::write(previous.join("marker"), "old").unwrap();
    let out = interrupt_convert(&gguf, &previous, true);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

#[test]
fn interrupted_finetune_keeps_its_last_complete_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let model = crate::common::Tiny::default().write_folder(&dir.path().join("m"));
    let data = dir.path().join("text.txt");
    std::fs::write(&data, "the cat sat on the mat. ".repeat(400)).unwrap();
    let run = dir.path().join("run");
    let child = Command::new(assert_cmd::cargo::cargo_bin("normscope"))
        .args([
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
        .args([
            "--steps",
            "1000000",
            "--seq-len",
            "16",
            "--batch",
            "2",
            "--save-every",
            "2",
        ])
        .args(["--eval-every", "1000000", "--eval-tokens", "64"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
