//! Norm-placement variants and fine-tuning: gradients against finite
//! differences, deepnorm(alpha = beta = 1) = post, the weight maps, training
//! loss falling on every placement, exact resume, and the default model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use normscope::model::placement::PLACEMENT_NAMES as PLACEMENTS;
use normscope::model::Placement;
use normscope::variants::metrics::{self, EvalRecord, Record, StepRecord};
use normscope::variants::{
    finetune, make_variant, model_tensors, Progress, Start, TrainSettings, Trainable,
};

use crate::common::{files_under, load, load_dense, max_abs_diff, normscope, Rng, Tiny};

fn tiny_folder(dir: &Path) -> PathBuf {
    Tiny::default().write_folder(&dir.join("tiny"))
}

fn run_ok(args: &[&str]) -> serde_json::Value {
    let out = normscope().args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// The tiny checkpoint as `placement`, ready to train.
fn trainable(folder: &Path, placement: &str) -> Trainable {
    let lm = load_dense(folder);
    let mut cfg = lm.model.cfg.clone();
    let mut tensors = model_tensors(&lm.model).unwrap();
    let target = Placement::from_name(placement, cfg.num_layers).unwrap();
    make_variant(&mut tensors, &mut cfg, target).unwrap();
    Trainable::new(tensors, cfg, |_| false, DType::F64, &Device::Cpu).unwrap()
}

fn batch(vocab: u32) -> (Tensor, Tensor) {
    let ids: Vec<u32> = (0..2 * 13).map(|i| (i * 37 + 11) % vocab).collect();
    let t = Tensor::from_vec(ids, (2, 13), &Device::Cpu).unwrap();
    (t.narrow(1, 0, 12).unwrap(), t.narrow(1, 1, 12).unwrap())
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

/// Autograd against central differences, one random unit direction per tensor:
/// (L(w + eps d) - L(w - eps d)) / 2 eps vs <grad, d>. The model runs in f64
/// (norms, softmax and logits stay in f64), so eps = 1e-4: the central
/// difference's truncation error is O(eps^2) ~ 1e-8 and f64 rounding of a loss
/// of about 6 divided by 2 eps is ~1e-11; tolerance 1e-4 relative + 1e-8 absolute.
#[test]
fn gradients_match_central_differences_for_every_placement() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny_folder(dir.path());
    let (x, y) = batch(300);
    let mut rng = Rng::new(11);
    for placement in PLACEMENTS {
        let net = trainable(&folder, placement);
        let grads = net.loss(&x, &y).unwrap().backward().unwrap();
        for (name, var) in &net.params {
            let w = var.as_tensor().copy().unwrap();
            let d = rng.tensor(w.dims(), 1.0).to_dtype(w.dtype()).unwrap();
            let d = (&d / scalar(&d.sqr().unwrap().sum_all().unwrap()).sqrt()).unwrap();
            let analytic = scalar(&(grads.get(var).unwrap() * &d).unwrap().sum_all().unwrap());
            let eps = 1e-4;
            let at = |sign: f64| {
                var.set(&(&w + (&d * (sign * eps)).unwrap()).unwrap())
                    .unwrap();
                scalar(&net.loss(&x, &y).unwrap())
            };
            let numeric = (at(1.0) - at(-1.0)) / (2.0 * eps);
            var.set(&w).unwrap();
            let tol = 1e-4 * analytic.abs().max(numeric.abs()) + 1e-8;
            assert!(
                (analytic - numeric).abs() <= tol,
                "{placement} {name}: autograd {analytic:.6}, finite differences {numeric:.6}"
            );
        }
    }
}

fn variant(source: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "--model",
        source.to_str().unwrap(),
        "variant",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

fn logits(folder: &Path) -> Tensor {
    let lm = load(folder);
    let ids: Vec<u32> = (0..20).map(|i| (i * 37 + 11) % 300).collect();
    let ids = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    lm.model.forward_all(&ids, None).unwrap()
}

#[test]
fn deepnorm_with_alpha_and_beta_one_computes_exactly_post() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_folder(dir.path());
    let (post, dn1, dn) = (
        dir.path().join("post"),
        dir.path().join("dn1"),
        dir.path().join("dn"),
    );
    variant(&src, &post, &["--kind", "post"]);
    variant(
        &src,
        &dn1,
        &["--kind", "deepnorm", "--alpha", "1", "--beta", "1"],
    );
    variant(&src, &dn, &["--kind", "deepnorm"]);
    assert_eq!(max_abs_diff(&logits(&post), &logits(&dn1)), 0.0);
    assert!(max_abs_diff(&logits(&post), &logits(&dn)) > 1e-3);
    assert!(
        max_abs_diff(&logits(&post), &logits(&src)) > 1e-3,
        "post is not the Pre-Norm function"
    );
}

fn read_tensors(folder: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(folder.join("model.safetensors"), &Device::Cpu).unwrap()
}

#[test]
fn variant_weights_and_config_map_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_folder(dir.path());
    let orig = read_tensors(&src);
    let (alpha, beta) = (4f64.powf(0.25), 16f64.powf(-0.25)); // N = 2 blocks
    for kind in ["post", "deepnorm", "lnscale"] {
        let out = dir.path().join(kind);
        variant(&src, &out, &["--kind", kind]);
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(cfg["normscope_norm_placement"], kind);
        assert_eq!(cfg["hidden_size"], 32);
        assert!(out.join("tokenizer.json").exists() && out.join("tokenizer_config.json").exists());
        let new = read_tensors(&out);
        assert_eq!(new.len(), orig.len());
        for (name, t) in &orig {
            let scaled = kind == "deepnorm"
                && ["v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
                    .iter()
                    .any(|p| name.contains(p));
            let want = if scaled {
                (t * beta).unwrap()
            } else {
                t.clone()
            };
            assert_eq!(max_abs_diff(&new[name], &want), 0.0, "{kind} {name}");
        }
        if kind == "deepnorm" {
            assert!((cfg["normscope_deepnorm_alpha"].as_f64().unwrap() - alpha).abs() < 1e-12);
            assert!((cfg["normscope_deepnorm_beta"].as_f64().unwrap() - beta).abs() < 1e-12);
        }
        // Every command loads it; the analysis reports every block.
        let a = run_ok(&[
            "--model",
            out.to_str().unwrap(),
            "analyze",
            "In the beginning God created",
        ]);
        let layers = a["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert!(layers
            .iter()
            .all(|l| l["excl0"]["rel_contrib"]["mean"].as_f64().unwrap() > 0.0));
    }
    let out = normscope()
        .args([
            "--model",
            dir.path().join("post").to_str().unwrap(),
            "variant",
            "--kind",
            "deepnorm",
        ])
        .args(["--out", dir.path().join("x").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Pre-Norm"));
}

fn repetitive_text(dir: &Path) -> PathBuf {
    let path = dir.join("text.txt");
    std::fs::write(
        &path,
        "the cat sat on the mat and the dog sat on the log. ".repeat(60),
    )
    .unwrap();
    path
}

fn settings(model: &Path, variant: &str, data: &Path, steps: usize) -> TrainSettings {
    TrainSettings {
        model: Some(model.to_string_lossy().into_owned()),
        variant: variant.into(),
        data: data.to_path_buf(),
        steps,
        seq_len: 32,
        batch: 4,
        lr: 3e-3,
        warmup: 3,
        min_lr_ratio: 0.1,
        weight_decay: 0.0,
        grad_clip: 1.0,
        seed: 5,
        freeze_embeddings: false,
        heldout: 0.1,
        eval_every: 10,
        eval_tokens: 256,
        save_every: 10,
    }
}

fn steps(run: &Path) -> Vec<StepRecord> {
    metrics::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Step(s) => Some(s),
            Record::Eval(_) => None,
        })
        .collect()
}

fn evals(run: &Path) -> Vec<EvalRecord> {
    metrics::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Eval(e) => Some(e),
            Record::Step(_) => None,
        })
        .collect()
}

#[test]
fn every_placement_lowers_the_training_loss_in_30_steps() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_folder(dir.path());
    let text = repetitive_text(dir.path());
    for placement in PLACEMENTS {
        let run = dir.path().join(format!("run-{placement}"));
        finetune(
            &run,
            Start::Fresh(settings(&src, placement, &text, 30), false),
            &Device::Cpu,
            &mut (),
        )
        .unwrap();
        let s = steps(&run);
        assert_eq!(s.len(), 30);
        let mean = |r: &[StepRecord]| r.iter().map(|x| x.loss).sum::<f64>() / r.len() as f64;
        let (first, last) = (mean(&s[..3]), mean(&s[27..]));
        assert!(
            last < 0.7 * first,
            "{placement}: loss {first:.3} -> {last:.3}"
        );
        assert!(
            s.iter()
                .all(|r| r.layer_grad_norm.len() == 2
                    && r.layer_update_ratio.iter().all(|u| *u > 0.0))
        );
        let e = evals(&run);
        assert_eq!(
            e.iter().map(|e| e.step).collect::<Vec<_>>(),
            vec![0, 10, 20, 30]
        );
        assert!(e
            .iter()
            .all(|e| e.rel_contrib.len() == 2 && e.heldout_loss.is_finite()));
        // The checkpoint is an ordinary model folder with the placement recorded.
        assert_eq!(
            load(&run.join("checkpoint")).model.cfg.placement.name(),
            placement
        );
    }
}

/// Stops the run after `at` steps, as an interrupt would between checkpoints.
struct StopAt(usize);

impl Progress for StopAt {
    fn step(&mut self, r: &StepRecord) -> bool {
        r.step < self.0
    }
}

#[test]
fn same_seed_same_run_and_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_folder(dir.path());
    let text = repetitive_text(dir.path());
    let s = TrainSettings {
        save_every: 4,
        eval_every: 4,
        ..settings(&src, "deepnorm", &text, 8)
    };
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    finetune(&a, Start::Fresh(s.clone(), false), &Device::Cpu, &mut ()).unwrap();
    finetune(&b, Start::Fresh(s.clone(), false), &Device::Cpu, &mut ()).unwrap();
    finetune(
        &c,
        Start::Fresh(s.clone(), false),
        &Device::Cpu,
        &mut StopAt(5),
    )
    .unwrap();
    assert_eq!(steps(&c).len(), 5);
    finetune(&c, Start::Resume(None), &Device::Cpu, &mut ()).unwrap();
    let losses = |r: &Path| steps(r).iter().map(|s| s.loss).collect::<Vec<_>>();
    assert_eq!(losses(&a), losses(&b), "same seed, same losses");
    assert_eq!(
        losses(&a),
        losses(&c),
        "a resumed run redoes nothing and skips nothing"
    );
    assert_eq!(evals(&a), evals(&c));
    let (ta, tc) = (
        read_tensors(&a.join("checkpoint")),
        read_tensors(&c.join("checkpoint")),
    );
    assert!(ta.iter().all(|(n, t)| max_abs_diff(t, &tc[n]) == 0.0));
    let other = TrainSettings { seed: 6, ..s };
    let d = dir.path().join("d");
    finetune(&d, Start::Fresh(other, false), &Device::Cpu, &mut ()).unwrap();
    assert_ne!(losses(&a), losses(&d), "another seed, another data order");
    assert!(finetune(
        &d,
        Start::Fresh(settings(&src, "pre", &text, 2), false),
        &Device::Cpu,
        &mut ()
    )
    .is_err());
}

/// Checks the run folder at every step of a `force` run: the previous run
/// whole until the new run's first checkpoint (step `first_save`), the new
/// run in its place after it.
struct WatchPrevious {
    run: PathBuf,
    before: Vec<(PathBuf, Vec<u8>)>,
    first_save: usize,
}

impl Progress for WatchPrevious {
    fn step(&mut self, r: &StepRecord) -> bool {
        if r.step <= self.first_save {
            assert!(
                files_under(&self.run) == self.before,
                "step {}: the previous run changed before the first checkpoint",
                r.step
            );
        } else {
            assert_eq!(steps(&self.run).last().unwrap().step, r.step);
        }
        true
    }
}

#[test]
fn force_replaces_the_previous_run_at_the_new_runs_first_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_folder(dir.path());
    let text = repetitive_text(dir.path());
    let run = dir.path().join("run");
    let old = settings(&src, "pre", &text, 2);
    finetune(&run, Start::Fresh(old, false), &Device::Cpu, &mut ()).unwrap();
    let new = TrainSettings {
        seed: 9,
        save_every: 3,
        eval_every: 3,
        ..settings(&src, "post", &text, 5)
    };
    let mut watch = WatchPrevious {
        before: files_under(&run),
        run: run.clone(),
        first_save: 3,
    };
    finetune(
        &run,
        Start::Fresh(new.clone(), true),
        &Device::Cpu,
        &mut watch,
    )
    .unwrap();
    assert_eq!(
        steps(&run).iter().map(|s| s.step).collect::<Vec<_>>(),
        (1..=5).collect::<Vec<_>>()
    );
    assert_eq!(
        evals(&run).iter().map(|e| e.step).collect::<Vec<_>>(),
        vec![0, 3, 5]
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["seed"], 9);
    assert_eq!(
        load(&run.join("checkpoint")).model.cfg.placement.name(),
        "post"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "leftovers: {names:?}"
    );
}

#[test]
fn finetune_and_compare_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_folder(dir.path());
    let text = repetitive_text(dir.path());
    let mut runs = Vec::new();
    for placement in ["pre", "deepnorm"] {
        let run = dir.path().join(placement);
        let v = run_ok(&[
            "--model",
            src.to_str().unwrap(),
            "finetune",
            "--variant",
            placement,
            "--data",
            text.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--steps",
            "6",
            "--seq-len",
            "16",
            "--batch",
            "2",
            "--lr",
            "1e-3",
            "--warmup",
            "2",
            "--eval-every",
            "3",
            "--eval-tokens",
            "64",
            "--freeze-embeddings",
        ]);
        assert_eq!(v["settings"]["variant"], placement);
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(info["freeze_embeddings"], true);
        // Everything but the 300 x 32 embedding (the head is tied to it).
        assert_eq!(info["trainable_params"], 28192 - 300 * 32);
        runs.push(run);
    }
    let report = dir.path().join("compare.html");
    let v = run_ok(&[
        "compare",
        runs[0].to_str().unwrap(),
        runs[1].to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let listed = v["runs"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["variant"], "deepnorm");
    assert_eq!(listed[0]["rel_contrib_before"].as_array().unwrap().len(), 2);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("deepnorm"));
}

/// 20 steps of Pre-Norm fine-tuning on Genesis lower the held-out loss of the
/// default model. Short sequences and a frozen embedding (the tied head's
/// gradient is the costliest one) keep it to about a minute on two cores.
#[test]
fn default_model_pre_finetuning_lowers_heldout_loss() {
    let model = normscope::weights::fetch::fetch_default().unwrap().folder;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/genesis-kjv.txt");
    let s = TrainSettings {
        seq_len: 32,
        batch: 2,
        lr: 5e-5,
        freeze_embeddings: true,
        eval_every: 20,
        eval_tokens: 512,
        save_every: 20,
        ..settings(&model, "pre", &data, 20)
    };
    finetune(&run, Start::Fresh(s, false), &Device::Cpu, &mut ()).unwrap();
    let e = evals(&run);
    assert_eq!(e.len(), 2);
    assert!(
        e[1].heldout_loss < e[0].heldout_loss,
        "held-out loss {:.4} -> {:.4}",
        e[0].heldout_loss,
        e[1].heldout_loss
    );
}
