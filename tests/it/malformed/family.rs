//! Malformed checkpoints of the LLaMA-style family: the committed fixtures
//! (`tests/fixtures/family/`) edited into files that lack what their
//! architecture needs, carry what normscope does not compute with, or
//! configure what it does not support.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::files::{gguf_string, Gguf, STRING};
use super::{case, generate, Case};

fn fixture(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/family")
        .join(arch)
}

/// The fixture GGUF of `arch`, edited by `edit`, written into `dir`.
fn gguf(dir: &Path, arch: &str, edit: impl Fn(&mut Gguf)) -> PathBuf {
    let bytes = std::fs::read(fixture(arch).join("model-f32.gguf")).unwrap();
    let mut g = Gguf::read(&bytes);
    edit(&mut g);
    let p = dir.join(format!("{arch}.gguf"));
    std::fs::write(&p, g.bytes()).unwrap();
    p
}

/// The fixture folder of `arch` copied into `dir`, its config.json edited by `edit`.
fn folder(dir: &Path, arch: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let to = dir.join(arch);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(fixture(arch).join("hf")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let path = to.join("config.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&path, cfg.to_string()).unwrap();
    to
}

fn gguf_case(
    name: &'static str,
    arch: &'static str,
    needle: &'static str,
    edit: impl Fn(&mut Gguf) + 'static,
) -> Case {
    case(name, needle, move |d| generate(&gguf(d, arch, &edit), &[]))
}

fn folder_case(
    name: &'static str,
    arch: &'static str,
    needle: &'static str,
    edit: impl Fn(&mut Value) + 'static,
) -> Case {
    case(name, needle, move |d| {
        generate(&folder(d, arch, &edit), &[])
    })
}

/// The family cases of the malformed-input table.
pub fn cases() -> Vec<Case> {
    vec![
        gguf_case(
            "Qwen2 GGUF without its query bias",
            "qwen2",
            "tensor `blk.0.attn_q.bias`: tensor is missing (expected shape [64])",
            |g| g.remove("blk.0.attn_q.bias"),
        ),
        gguf_case(
            "Qwen3 GGUF with a q-norm of the wrong width",
            "qwen3",
            "tensor `blk.1.attn_q_norm.weight`: has shape [16], expected [32]",
            |g| {
                let t = g.tensor("blk.1.attn_q_norm.weight");
                t.ne = vec![16];
                t.data.truncate(16 * 4);
            },
        ),
        gguf_case(
            "OLMo 2 GGUF without a post-attention norm",
            "olmo2",
            "tensor `blk.1.post_attention_norm.weight`: tensor is missing",
            |g| g.remove("blk.1.post_attention_norm.weight"),
        ),
        gguf_case(
            "OLMo 2 GGUF with pre-sublayer norms it does not use",
            "olmo2",
            "tensor `blk.0.attn_norm.weight` is not part of a `olmo2` checkpoint",
            |g| {
                let mut extra = g.tensor("blk.0.post_attention_norm.weight").data.clone();
                extra.truncate(64 * 4);
                g.tensors.push(super::files::GgufTensor {
                    name: "blk.0.attn_norm.weight".into(),
                    ne: vec![64],
                    ggml_type: 0,
                    offset: None,
                    data: extra,
                });
            },
        ),
        gguf_case(
            "Phi-3 GGUF whose fused qkv lacks the value rows",
            "phi3",
            "tensor `blk.0.attn_qkv.weight`: has shape [96, 64], expected [128, 64]",
            |g| {
                let t = g.tensor("blk.0.attn_qkv.weight");
                t.ne = vec![64, 96];
                t.data.truncate(64 * 96 * 4);
            },
        ),
        gguf_case(
            "Phi-3 GGUF with LongRoPE factors",
            "phi3",
            "tensor `rope_factors_long.weight` is not part of a `phi3` checkpoint",
            |g| {
                g.tensors.push(super::files::GgufTensor {
                    name: "rope_factors_long.weight".into(),
                    ne: vec![8],
                    ggml_type: 0,
                    offset: None,
                    data: [1f32; 8].iter().flat_map(|x| x.to_le_bytes()).collect(),
                });
            },
        ),
        gguf_case(
            "Llama 3 GGUF with rope_freqs of the wrong length",
            "llama3",
            "tensor `rope_freqs.weight`: has 4 factors; head_dim 16 needs 8",
            |g| {
                let t = g.tensor("rope_freqs.weight");
                t.ne = vec![4];
                t.data.truncate(16);
            },
        ),
        gguf_case(
            "Llama 3 GGUF with a zero RoPE factor",
            "llama3",
            "tensor `rope_freqs.weight`: holds 0; factors must be positive",
            |g| g.tensor("rope_freqs.weight").data[..4].copy_from_slice(&0f32.to_le_bytes()),
        ),
        gguf_case(
            "Qwen2 GGUF with a RoPE-factor tensor",
            "qwen2",
            "per-frequency RoPE factors are not used by qwen2 models",
            |g| {
                g.tensors.push(super::files::GgufTensor {
                    name: "rope_freqs.weight".into(),
                    ne: vec![8],
                    ggml_type: 0,
                    offset: None,
                    data: [1f32; 8].iter().flat_map(|x| x.to_le_bytes()).collect(),
                });
            },
        ),
        gguf_case(
            "GGUF with a pre-tokenizer normscope does not know",
            "qwen2",
            "tokenizer.ggml.pre `no-such-regex` is not a pre-tokenizer normscope knows",
            |g| g.set("tokenizer.ggml.pre", STRING, gguf_string("no-such-regex")),
        ),
        gguf_case(
            "GGUF of an architecture normscope does not run",
            "qwen2",
            "general.architecture is `qwen2moe`; supported: llama, qwen2, qwen3, phi3, olmo2, smollm3, gemma3",
            |g| g.set("general.architecture", STRING, gguf_string("qwen2moe")),
        ),
        folder_case(
            "Phi-3 folder with LongRoPE scaling",
            "phi3",
            "rope type `longrope` (LongRoPE, Phi-3's 128k-context variants) is not supported",
            |c| {
                c["rope_parameters"]["rope_type"] = "longrope".into();
            },
        ),
        folder_case(
            "Phi-3 folder rotating part of each head",
            "phi3",
            "partial_rotary_factor 0.5: RoPE on part of each head is not supported",
            |c| {
                c["rope_parameters"]["partial_rotary_factor"] = 0.5.into();
            },
        ),
        folder_case(
            "OLMo 2 folder asking for a variant placement",
            "olmo2",
            "normscope_norm_placement: olmo2 keeps its own (reordered) placement",
            |c| c["normscope_norm_placement"] = "deepnorm".into(),
        ),
        folder_case(
            "folder of an unknown model_type",
            "qwen3",
            "model_type `qwen3_moe` is not supported (supported: llama, mistral, qwen2, qwen3, phi3, olmo2, smollm3, gemma3_text)",
            |c| c["model_type"] = "qwen3_moe".into(),
        ),
        folder_case(
            "SmolLM3 folder whose no_rope_layers has the wrong length",
            "smollm3",
            "no_rope_layers has 3 entries for 4 blocks",
            |c| c["no_rope_layers"] = serde_json::json!([1, 1, 1]),
        ),
    ]
}
