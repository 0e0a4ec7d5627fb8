//! Loaders and the model on tiny random checkpoints written by the tests.

use candle_core::quantized::GgmlDType;
use candle_core::{Device, IndexOp, Tensor};

use crate::common::{load, max_abs_diff, Tiny};

fn ids(n: usize, vocab: usize) -> Tensor {
    let v: Vec<u32> = (0..n as u32)
        .map(|i| (i * 37 + 11) % vocab as u32)
        .collect();
    Tensor::new(v.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
}

fn full_logits(path: &std::path::Path, n: usize) -> Tensor {
    let lm = load(path);
    lm.model
        .forward_all(&ids(n, lm.model.cfg.vocab_size), None)
        .unwrap()
}

#[test]
fn sharded_and_single_file_give_identical_logits() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let t = tiny.tensors();
    let single = tiny.write_folder_with(&dir.path().join("single"), &t, 1);
    let sharded = tiny.write_folder_with(&dir.path().join("sharded"), &t, 3);
    assert!(sharded.join("model.safetensors.index.json").exists());
    let a = full_logits(&single, 9);
    let b = full_logits(&sharded, 9);
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

#[test]
fn tied_head_equals_an_explicit_copy_of_the_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let tied = Tiny::default();
    let t = tied.tensors();
    let a = full_logits(&tied.write_folder_with(&dir.path().join("tied"), &t, 1), 6);

    // transformers writes untied checkpoints with lm_head.weight; same values, same logits.
    let untied = Tiny {
        tied: false,
        ..Tiny::default()
    };
    let mut t2 = t.clone();
    t2.insert(
        "lm_head.weight".into(),
        t["model.embed_tokens.weight"].clone(),
    );
    let b = full_logits(
        &untied.write_folder_with(&dir.path().join("copy"), &t2, 1),
        6,
    );
    assert_eq!(max_abs_diff(&a, &b), 0.0);

    // A different head gives different logits: the head is really read.
    let c = full_logits(&untied.write_folder(&dir.path().join("untied")), 6);
    assert!(max_abs_diff(&a, &c) > 1e-2);
}

#[test]
fn tied_config_with_lm_head_present_uses_the_stored_head() {
    // save_pretrained may keep lm_head.weight even when tied; both must load.
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let mut t = tiny.tensors();
    t.insert(
        "lm_head.weight".into(),
        t["model.embed_tokens.weight"].clone(),
    );
    let with_head = full_logits(&tiny.write_folder_with(&dir.path().join("a"), &t, 1), 5);
    let without = full_logits(&tiny.write_folder(&dir.path().join("b")), 5);
    assert_eq!(max_abs_diff(&with_head, &without), 0.0);
}

#[test]
fn kv_cache_decoding_matches_full_forward_for_gqa_shapes() {
    for (heads, kv_heads) in [(4, 4), (4, 2), (4, 1), (8, 2)] {
        let dir = tempfile::tempdir().unwrap();
        let tiny = Tiny {
            heads,
            kv_heads,
            hidden: 64,
            ..Tiny::default()
        };
        let lm = load(&tiny.write_folder(dir.path()));
        let seq = ids(12, tiny.vocab);
        let full = lm.model.forward_all(&seq, None).unwrap(); // (1, 12, vocab)
        let mut cache = lm.model.new_cache();
        // A 4-token prefill, then one token at a time.
        let pre = lm
            .model
            .forward_all(&seq.i((.., ..4)).unwrap(), Some(&mut cache))
            .unwrap();
        assert!(max_abs_diff(&pre, &full.i((.., ..4)).unwrap()) < 1e-4);
        for p in 4..12 {
            let step = lm
                .model
                .forward_last(&seq.i((.., p..p + 1)).unwrap(), Some(&mut cache))
                .unwrap();
            let want = full.i((.., p)).unwrap();
            let d = max_abs_diff(&step, &want);
            assert!(
                d < 1e-4,
                "heads {heads}/{kv_heads}, position {p}: max diff {d}"
            );
        }
    }
}

#[test]
fn gguf_layout_with_interleaved_rope_matches_the_folder() {
    // The GGUF stores q/k rows permuted for interleaved RoPE; loading it must
    // compute what the Hugging Face folder computes.
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let folder = tiny.write_folder(&dir.path().join("hf"));
    let gguf = dir.path().join("tiny.gguf");
    tiny.write_gguf(&gguf, GgmlDType::F32);
    let a = full_logits(&folder, 10);
    let b = full_logits(&gguf, 10);
    let d = max_abs_diff(&a, &b);
    assert!(d < 1e-4, "max diff {d}");
}

#[test]
fn convert_round_trips_a_gguf_to_the_original_folder() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let gguf = dir.path().join("tiny.gguf");
    tiny.write_gguf(&gguf, GgmlDType::F32);
    let out = dir.path().join("converted");
    normscope::weights::convert::convert_gguf(&gguf, &out, candle_core::DType::F32, false).unwrap();
    let orig = tiny.tensors();
    let conv = candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(orig.len(), conv.len());
    for (name, t) in &orig {
        assert_eq!(max_abs_diff(t, &conv[name]), 0.0, "{name}");
    }
    let lm = load(&out);
    assert_eq!(lm.eos_ids, vec![2]);
    assert!(lm.chat.source.is_none());
    // Converting again into the same folder needs `force` (the CLI's --force).
    let again =
        normscope::weights::convert::convert_gguf(&gguf, &out, candle_core::DType::F32, false);
    assert!(matches!(again, Err(normscope::Error::Exists(p)) if p == out));
}

#[test]
fn quantized_gguf_stays_close_to_float() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny {
        hidden: 64,
        ffn: 128,
        ..Tiny::default()
    };
    let gguf = dir.path().join("q8.gguf");
    tiny.write_gguf(&gguf, GgmlDType::Q8_0);
    let a = full_logits(&tiny.write_folder(&dir.path().join("hf")), 8);
    let b = full_logits(&gguf, 8);
    let d = max_abs_diff(&a, &b);
    let scale = a
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    // 8-bit weights and activations: a few percent of the largest logit at most.
    assert!(
        d > 0.0 && d < 0.03 * scale,
        "Q8_0 vs f32 max diff {d}, largest logit {scale}"
    );
}

#[test]
fn missing_and_misshapen_tensors_are_named_with_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let mut t = tiny.tensors();
    t.insert(
        "model.layers.1.mlp.up_proj.weight".into(),
        Tensor::zeros((3, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let folder = tiny.write_folder_with(&dir.path().join("bad"), &t, 1);
    let err = normscope::weights::load(
        Some(folder.to_str().unwrap()),
        &Device::Cpu,
        candle_core::DType::F32,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("model.layers.1.mlp.up_proj.weight"), "{err}");
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("[64, 32]"), "{err}");

    let mut t = tiny.tensors();
    t.remove("model.norm.weight");
    let folder = tiny.write_folder_with(&dir.path().join("missing"), &t, 1);
    let err = normscope::weights::load(
        Some(folder.to_str().unwrap()),
        &Device::Cpu,
        candle_core::DType::F32,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("model.norm.weight") && err.contains("missing"),
        "{err}"
    );

    let untied = Tiny {
        tied: false,
        ..Tiny::default()
    };
    let mut t = untied.tensors();
    t.remove("lm_head.weight");
    let folder = untied.write_folder_with(&dir.path().join("nohead"), &t, 1);
    let err = normscope::weights::load(
        Some(folder.to_str().unwrap()),
        &Device::Cpu,
        candle_core::DType::F32,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("lm_head.weight") && err.contains("tie_word_embeddings"),
        "{err}"
    );
}

#[test]
fn context_overflow_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let lm = load(&tiny.write_folder(dir.path()));
    let err = lm
        .model
        .forward_all(&ids(129, tiny.vocab), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("context of 128"), "{err}");
}
