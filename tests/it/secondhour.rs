//! What a new user meets in the second hour: output paths checked before
//! any work, a late write failure that still shows the figures, generation
//! that says why it stopped, fine-tuning progress on a redirected stderr,
//! flag values listed, the names `fetch` knows taken as models, paths shown
//! as given, and the command list when no command is given.

use std::path::Path;

use crate::common::{normscope, Tiny};
use crate::svg::Svg;

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

/// Text to fine-tune and analyse the tiny models on.
fn text_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("text.txt");
    std::fs::write(
        &path,
        "the cat sat on the mat and the dog sat on the log. ".repeat(60),
    )
    .unwrap();
    path
}

/// The SVG inside an HTML report.
fn svg_of(html: &str) -> Svg {
    let start = html.find("<svg").expect("an SVG plot");
    let end = html[start..].find("</svg>").unwrap() + start;
    Svg::parse(&html[start..end])
}

/// True when `label` is a round number: two significant digits at most
/// (`0.25`, `5`, `200`; not `15.85` or `3.98`).
fn round(label: &str) -> bool {
    let v: f64 = label.parse().unwrap();
    let m = v.abs() / 10f64.powf(v.abs().log10().floor() - 1.0);
    (m - m.round()).abs() < 1e-6
}

#[test]
fn compare_plots_of_three_step_runs_tick_whole_steps_show_dashes_and_short_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let m = Tiny::default().write_folder(&cwd.join("m"));
    let text = text_file(cwd);
    for v in ["pre", "deepnorm"] {
        let (code, _, stderr) = run_in(
            cwd,
            &[
                "finetune",
                "--model",
                m.to_str().unwrap(),
                "--variant",
                v,
                "--data",
                text.to_str().unwrap(),
                "--out",
                v,
                "--steps",
                "3",
                "--seq-len",
                "16",
                "--batch",
                "2",
                "--warmup",
                "1",
                "--eval-every",
                "3",
                "--eval-tokens",
                "64",
                "--save-every",
                "3",
            ],
        );
        assert_eq!(code, Some(0), "{stderr}");
    }
    // A held-out perplexity as large as a fresh deepnorm variant's can be.
    let metrics = cwd.join("deepnorm/metrics.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["kind"] == "eval" && v["step"] == 0 {
                v["heldout_ppl"] = serde_json::json!(538737909909.123);
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&metrics, lines.join("\n") + "\n").unwrap();
    let (code, _, stderr) = run_in(cwd, &["compare", "pre", "deepnorm", "--report", "c.html"]);
    assert_eq!(code, Some(0), "{stderr}");
    let html = std::fs::read_to_string(cwd.join("c.html")).unwrap();
    assert!(html.contains("<td>5.4e11</td>"), "no short form");
    assert!(!html.contains("538737909909"), "the long form is shown");
    let svg = svg_of(&html);
    let train = svg.panel("Training loss (moving average of 5 steps)");
    assert_eq!(train.x_ticks(), ["1", "2", "3"]);
    let heldout = svg.panel("Held-out loss");
    assert_eq!(heldout.x_ticks(), ["0", "1", "2", "3"]);
    for p in [&train, &heldout] {
        let y = p.y_ticks();
        assert!(y.len() >= 2 && y.iter().all(|l| l != "-0"), "{y:?}");
    }
    let contrib =
        svg.panel("Relative contribution ||h_out - h_in|| / ||h_in|| per block (dashed: before)");
    assert_eq!(contrib.x_ticks(), ["0", "1"]);
    let y = contrib.y_ticks();
    assert!(y.len() >= 2 && y.iter().all(|l| round(l)), "{y:?}");
    for run in ["pre", "deepnorm"] {
        let (before, dashes) = contrib.legend_sample(&format!("{run} before"));
        let (after, solid) = contrib.legend_sample(&format!("{run} after"));
        assert!(dashes >= 2, "{run} before: its sample is not dashed");
        assert_eq!(solid, 1, "{run} after: its sample is not solid");
        assert_eq!(before, after, "{run}: one colour per run");
    }
    assert_ne!(
        contrib.legend_sample("pre after").0,
        contrib.legend_sample("deepnorm after").0
    );
}

/// Okabe & Ito's palette.
const OKABE_ITO: [&str; 8] = [
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000",
];

/// The hue of `#RRGGBB` in degrees.
fn hue(hex: &str) -> f64 {
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap() as f64 / 255.0;
    let (r, g, b) = (c(1), c(3), c(5));
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let d = max - min;
    if d == 0.0 {
        return 0.0;
    }
    let h = if max == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    h * 60.0
}

#[test]
fn overlaid_models_get_a_hue_each_and_a_dash_per_view() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    Tiny::default().write_folder(&cwd.join("a"));
    Tiny {
        layers: 3,
        seed: 9,
        ..Tiny::default()
    }
    .write_folder(&cwd.join("b"));
    let (code, _, stderr) = run_in(
        cwd,
        &[
            "analyze",
            "the cat sat on the mat and the dog sat on the log",
            "--model",
            "a",
            "--model",
            "b",
            "--no-lens",
            "--plot",
            "p.svg",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let svg = Svg::parse(&std::fs::read_to_string(cwd.join("p.svg")).unwrap());
    // The title names the models, their placement and the text.
    let texts = svg.texts();
    assert_eq!(texts[0], "a (pre) and b (pre)");
    assert_eq!(
        texts[1],
        "on \"the cat sat on the mat and the dog sat on the log\""
    );
    let mut colours = Vec::new();
    for caption in [
        "Relative contribution ||h_out - h_in|| / ||h_in||",
        "Residual norm ||h_in|| entering each block",
        "Block influence 1 - cos(h_in, h_out)",
    ] {
        let panel = svg.panel(caption);
        // Different depths: the x axis is the depth fraction.
        assert_eq!(panel.x_ticks(), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        let mut hues = Vec::new();
        for model in ["a", "b"] {
            let (c0, n0) = panel.legend_sample(&format!("{model} (pre), excl. pos 0"));
            let (c1, n1) = panel.legend_sample(&format!("{model} (pre), all tokens"));
            assert_eq!(c0, c1, "{caption}: {model} has two colours");
            assert_eq!(n0, 1, "{caption}: {model}'s excl. pos 0 is not solid");
            assert!(n1 >= 2, "{caption}: {model}'s all tokens is not dashed");
            assert!(OKABE_ITO.contains(&c0.as_str()), "{c0} is not Okabe-Ito");
            hues.push(hue(&c0));
            colours.push(c0);
        }
        let apart = (hues[0] - hues[1]).abs();
        assert!(
            apart.min(360.0 - apart) > 60.0,
            "{caption}: hues {hues:?} too close"
        );
    }
    let log = svg.panel("Relative contribution ||h_out - h_in|| / ||h_in||");
    let y = log.y_ticks();
    assert!(y.len() >= 2 && y.iter().all(|l| round(l)), "{y:?}");
}

#[test]
fn generate_says_why_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let m = m.to_str().unwrap();
    // The tiny model's context is 128 tokens; its byte tokenizer makes one
    // token of each character.
    let long = "abcdef".repeat(20);
    let generate = |prompt: &str, max: &str, json: bool| {
        let mut args = vec![
            "generate",
            prompt,
            "--model",
            m,
            "--max-tokens",
            max,
            "--temperature",
            "0",
        ];
        if json {
            args.push("--json");
        }
        run_in(dir.path(), &args)
    };
    let (code, stdout, stderr) = generate(&long, "20", true);
    assert_eq!(code, Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["prompt_ids"].as_array().unwrap().len(), 120);
    assert_eq!(v["generated_ids"].as_array().unwrap().len(), 8, "{v}");
    assert_eq!(v["stop_reason"], "context");
    assert_eq!(v["stopped_at_eos"], false);
    assert!(
        stderr.contains("stopped: the context of 128 tokens is full"),
        "{stderr}"
    );
    let (code, _, stderr) = generate(&long, "20", false);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("stopped: the context of 128 tokens is full"),
        "{stderr}"
    );
    let (_, stdout, stderr) = generate("hello", "3", true);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let n = v["generated_ids"].as_array().unwrap().len();
    let want = if v["stopped_at_eos"] == true {
        "eos"
    } else {
        "max_tokens"
    };
    assert_eq!(v["stop_reason"], want, "{v}");
    assert!(n == 3 || want == "eos", "{v}");
    assert!(!stderr.contains("context"), "{stderr}");
}

#[test]
fn finetune_progress_on_a_redirected_stderr_is_a_line_per_step_and_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let text = text_file(dir.path());
    let args = |out: &'static str| {
        [
            "finetune",
            "--model",
            m.to_str().unwrap(),
            "--variant",
            "pre",
            "--data",
            text.to_str().unwrap(),
            "--out",
            out,
            "--steps",
            "3",
            "--seq-len",
            "16",
            "--batch",
            "2",
            "--eval-every",
            "2",
            "--eval-tokens",
            "64",
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_in(dir.path(), &a)
    };
    let (code, _, stderr) = run([args("quiet"), vec![]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("step 1/3"), "{stderr}");
    let (code, _, stderr) = run([args("shown"), vec!["--progress".into()]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    for step in 1..=3 {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("step {step}/3: loss ")))
            .unwrap_or_else(|| panic!("no line for step {step}: {stderr}"));
        assert!(
            line.contains(", lr ") && line.ends_with(" tokens/s"),
            "{line}"
        );
    }
    for step in [0, 2, 3] {
        assert!(
            stderr.contains(&format!("step {step}: held-out loss ")),
            "no evaluation line for step {step}: {stderr}"
        );
    }
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// Runs `args`, which clap or the command must reject with one line that
/// names every one of `needles`.
fn rejects(cwd: &Path, args: &[&str], needles: &[&str]) {
    let (code, stdout, stderr) = run_in(cwd, args);
    assert!(matches!(code, Some(1 | 2)), "{args:?}: {code:?} {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: {stderr:?} lacks {n:?}");
    }
}

#[test]
fn every_enum_flag_lists_its_values_when_given_another() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let m = Tiny::default().write_folder(&cwd.join("m"));
    let m = m.to_str().unwrap();
    let placements = ["pre", "post", "deepnorm", "lnscale"];
    rejects(
        cwd,
        &["variant", "--kind", "prenorm", "--out", "x"],
        &["prenorm", "post", "deepnorm", "lnscale"],
    );
    rejects(
        cwd,
        &["finetune", "--variant", "prenorm", "--out", "x"],
        &placements,
    );
    rejects(
        cwd,
        &["generate", "hi", "--model", m, "--dtype", "f8"],
        &["f32", "f16", "bf16"],
    );
    rejects(
        cwd,
        &["convert", "x.gguf", "--out", "o", "--dtype", "f8"],
        &["f32", "f16", "bf16"],
    );
    rejects(
        cwd,
        &["analyze", "hi", "--model", m, "--device", "tpu"],
        &["cpu", "cuda", "metal"],
    );
    rejects(
        cwd,
        &["bench", "--model", m, "--quantize", "q3"],
        &["q8_0", "q4_0", "q4_1", "q4k"],
    );
    rejects(
        cwd,
        &["quantize", m, "--type", "q3", "--out", "o.gguf"],
        &["f32", "q8_0", "q4_k_m", "q5_k_m"],
    );
    rejects(cwd, &["fetch", "nope"], &["smollm2-135m", "gemma3-270m"]);
}

/// A models folder in which `fetch` finds both known models complete: tiny
/// GGUFs padded to the real files' sizes, and tiny folders.
fn fake_models(dir: &Path) -> std::path::PathBuf {
    let models = dir.join("models");
    for (folder, gguf, size) in [
        (
            "SmolLM2-135M-Instruct",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
        ),
        ("gemma-3-270m", "gemma-3-270m-q4_k_m.gguf", 253_113_024),
    ] {
        Tiny::default().write_folder(&models.join(folder));
        let path = models.join(gguf);
        Tiny::default().write_gguf(&path, candle_core::quantized::GgmlDType::Q8_0);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size)
            .unwrap();
    }
    models
}

/// `normscope ARGS` in `cwd` with the models folder `models`.
fn run_with_models(cwd: &Path, models: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = normscope()
        .current_dir(cwd)
        .env("NORMSCOPE_MODELS", models)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_names_fetch_knows_are_models_too() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let models = fake_models(dir.path());
    let json = |args: &[&str]| -> (serde_json::Value, String) {
        let (code, stdout, stderr) = run_with_models(&cwd, &models, args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        (serde_json::from_str(&stdout).unwrap(), stderr)
    };
    let (v, _) = json(&[
        "generate",
        "hi",
        "--model",
        "smollm2-135m",
        "--max-tokens",
        "2",
        "--json",
    ]);
    assert_eq!(v["model"], "smollm2-135m");
    let (v, stderr) = json(&["analyze", "hi there", "--model", "gemma3-270m", "--json"]);
    assert_eq!(v["model"], "gemma3-270m");
    assert!(stderr.contains("Gemma Terms of Use"), "{stderr}");
    // bench takes a known model's GGUF, as it takes the default model's.
    let (v, _) = json(&[
        "bench",
        "--model",
        "smollm2-135m",
        "-p",
        "4",
        "-n",
        "2",
        "-r",
        "1",
        "--json",
    ]);
    let file = v["records"][0]["model_filename"].as_str().unwrap();
    assert!(file.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"), "{v}");
}

#[test]
fn paths_are_shown_as_given_and_placements_named() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let models = fake_models(cwd);
    // The default model lives in the current folder's models/: it is shown
    // relative to it, as the user would type it.
    let (code, stdout, stderr) =
        run_with_models(cwd, &models, &["analyze", "hi there", "--report", "r.html"]);
    assert_eq!(code, Some(0), "{stderr}");
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("models/SmolLM2-135M-Instruct (pre placement; "),
        "{first}"
    );
    let html = std::fs::read_to_string(cwd.join("r.html"))
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(
        html.contains("Per-block figures: models/SmolLM2-135M-Instruct ("),
        "no relative heading"
    );
    let absolute = cwd.canonicalize().unwrap().display().to_string();
    assert!(!html.contains(&absolute) && !stdout.contains(&absolute));
    let (_, stdout, stderr) = run_with_models(
        cwd,
        &models,
        &[
            "analyze",
            "hi there",
            "--model",
            "./models/gemma-3-270m",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(v["model"], "./models/gemma-3-270m");
    assert_eq!(v["placement"], "pre");
    for command in [
        &["generate", "hi", "--max-tokens", "1", "--json"][..],
        &["perplexity", "--file", "t.txt", "--ctx", "8", "--json"],
    ] {
        std::fs::write(cwd.join("t.txt"), "the cat sat on the mat").unwrap();
        let (code, stdout, stderr) = run_with_models(cwd, &models, command);
        assert_eq!(code, Some(0), "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["model"], "models/SmolLM2-135M-Instruct", "{command:?}");
    }
}

#[test]
fn bench_names_a_gguf_by_its_file_type() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let m = Tiny::default().write_folder(&cwd.join("m"));
    let (code, _, stderr) = run_in(
        cwd,
        &[
            "quantize",
            m.to_str().unwrap(),
            "--type",
            "q4_k_m",
            "--out",
            "q.gguf",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = run_in(
        cwd,
        &[
            "bench", "--model", "q.gguf", "-p", "4", "-n", "2", "-r", "1",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let row = stdout.lines().nth(2).unwrap();
    assert!(row.starts_with("| llama 28K Q4_K - Medium "), "{stdout}");
}

#[test]
fn no_arguments_print_the_command_list() {
    let (code, stdout, stderr) = run_in(Path::new("."), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let help = stdout + &stderr;
    assert!(help.contains("Commands:"), "{help}");
    for command in [
        "fetch",
        "convert",
        "quantize",
        "generate",
        "analyze",
        "perplexity",
        "bench",
        "variant",
        "finetune",
        "compare",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing: {help}"
        );
    }
    assert!(!help.contains("(see --help)"), "{help}");
}

#[test]
fn a_prompt_can_come_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let m = Tiny::default().write_folder(&dir.path().join("m"));
    let m = m.to_str().unwrap();
    let generate = |args: &[&str], stdin: &[u8]| {
        let out = normscope()
            .args(["generate", "--model", m, "--max-tokens", "1", "--json"])
            .args(args)
            .write_stdin(stdin.to_vec())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for args in [&["--prompt-file", "-"][..], &[]] {
        let (code, stdout, stderr) = generate(args, b"hello\n");
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["prompt"], "hello", "{args:?}");
    }
    let (code, _, stderr) = generate(&["--prompt-file", "-"], &[0xff, 0xfe]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("standard input: the text is not UTF-8"),
        "{stderr}"
    );
    let (code, _, stderr) = generate(&[], b"");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("the prompt is empty"), "{stderr}");
}
