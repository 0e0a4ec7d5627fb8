//! What a new user meets in the second hour: output paths checked before
//! any work, a late write failure that still shows the figures, generation
//! that says why it stopped, fine-tuning progress on a redirected stderr,
//! flag values listed, the names `fetch` knows taken as models, paths shown
//! as given, and the command list when no command is given.

use std::path::Path;

use crate::common::{normscope, Tiny};

/// `normscope ARGS` in `cwd`: (exit code, stdout, stderr).
fn run_in(cwd: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = normscope().current_dir(cwd).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `args`, which must fail with one line naming `needle`.
fn fails_with(cwd: &Path, args: &[&str], needle: &str) {
    let (code, stdout, stderr) = run_in(cwd, args);
    assert_eq!(code, Some(1), "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
}

#[test]
fn output_paths_are_checked_before_the_model_loads() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::create_dir(cwd.join("folder")).unwrap();
    std::fs::write(cwd.join("folder/inside"), "x").unwrap();
    std::fs::write(cwd.join("file.txt"), "x").unwrap();
    // The model does not exist: an error about it would mean the outputs
    // were not checked first.
    let model = ["--model", "no-such-model/here/at-all"];
    let is_folder = "is a folder; it takes the path of the file to write";
    let is_file = "is a file; it takes the path of the folder to write";
    for (flag, args) in [
        (
            "--report",
            vec!["analyze", "hi", "--report", "folder", "--force"],
        ),
        (
            "--plot",
            vec!["analyze", "hi", "--plot", "folder", "--force"],
        ),
        ("--csv", vec!["analyze", "hi", "--csv", "folder", "--force"]),
        (
            "--report",
            vec!["compare", "no-run", "--report", "folder", "--force"],
        ),
        (
            "--out",
            vec![
                "quantize", "m", "--type", "q8_0", "--out", "folder", "--force",
            ],
        ),
    ] {
        let with_model: Vec<&str> = if args[0] == "analyze" {
            [&args[..], &model[..]].concat()
        } else {
            args.clone()
        };
        fails_with(cwd, &with_model, &format!("{flag} folder {is_folder}"));
    }
    for args in [
        vec!["variant", "--kind", "post", "--out", "file.txt", "--force"],
        vec![
            "finetune",
            "--variant",
            "pre",
            "--out",
            "file.txt",
            "--force",
        ],
        vec!["convert", "none.gguf", "--out", "file.txt", "--force"],
    ] {
        let args = [
            &args[..],
            if args[0] == "convert" {
                &[]
            } else {
                &model[..]
            },
        ]
        .concat();
        fails_with(cwd, &args, &format!("--out file.txt {is_file}"));
    }
    let analyze = |out: &str| -> Vec<String> {
        ["analyze", "hi", model[0], model[1], "--report", out]
            .map(String::from)
            .to_vec()
    };
    let a = analyze("file.txt/x.html");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(cwd, &a, "file.txt is a file, not a folder");
    let a = analyze("/proc/nope/x.html");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(cwd, &a, "--report /proc/nope/x.html cannot be written");
    // An existing file still needs --force, before the model is loaded too.
    fails_with(
        cwd,
        &["analyze", "hi", model[0], model[1], "--csv", "file.txt"],
        "file.txt already exists; pass --force to replace it",
    );
}

#[test]
fn a_late_write_failure_still_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    // Both checks pass before the run; the CSV is written first, so the
    // plot then finds its path taken.
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "analyze",
            "the cat sat on the mat",
            "--model",
            m.to_str().unwrap(),
            "--csv",
            "same.out",
            "--plot",
            "same.out",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stdout.contains("layer") && stdout.contains("perplexity"),
        "{stdout}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("same.out already exists"), "{stderr}");
}
