//! Malformed Gemma 3 GGUF files: a tiny f32 model with Gemma's metadata,
//! tensors (QK-norms, post-sublayer norms) and a SentencePiece vocabulary
//! with scores, then made to lie in one place. Each case runs `generate`.

use std::path::{Path, PathBuf};

use super::files::{gguf_string, Gguf, GgufTensor, ARRAY, F32, I32, STRING, U32};
use super::{case, generate, Case};
use crate::common::{Rng, Tiny};

/// Head width of the tiny Gemma (independent of hidden / heads, as in Gemma).
const HEAD_DIM: usize = 16;

/// A SentencePiece vocabulary of `n` tokens: specials, the 256 byte tokens,
/// then single characters; with scores and token types.
fn vocab(n: usize) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens: Vec<String> = ["<pad>", "<eos>", "<bos>", "<unk>"]
        .map(String::from)
        .to_vec();
    let mut types = vec![3, 3, 3, 2];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let chars = "▁abcdefghijklmnopqrstuvwxyzTHE.,";
    for c in chars.chars().take(n.saturating_sub(tokens.len())) {
        tokens.push(c.to_string());
        types.push(1);
    }
    let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
    (tokens, scores, types)
}

fn array<T>(ty: u32, items: &[T], each: impl Fn(&T) -> Vec<u8>) -> Vec<u8> {
    let mut v = ty.to_le_bytes().to_vec();
    v.extend((items.len() as u64).to_le_bytes());
    for x in items {
        v.extend(each(x));
    }
    v
}

fn f32_tensor(name: &str, shape: &[usize], rng: &mut Rng, ones: bool) -> GgufTensor {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .flat_map(|_| {
            let v = if ones {
                1.0
            } else {
                (rng.uniform() * 2.0 - 1.0) * 0.1
            };
            v.to_le_bytes()
        })
        .collect();
    GgufTensor {
        name: name.into(),
        ne: shape.iter().rev().map(|&d| d as u64).collect(),
        ggml_type: 0,
        offset: None,
        data,
    }
}

/// The tiny Gemma 3 as an f32 GGUF, as llama.cpp's converter lays one out.
pub fn gemma_gguf() -> Gguf {
    let t = Tiny::default();
    let (tokens, scores, types) = vocab(t.vocab);
    let (q, kv) = (t.heads * HEAD_DIM, t.kv_heads * HEAD_DIM);
    let u32v = |x: usize| (x as u32).to_le_bytes().to_vec();
    let kv_pairs = vec![
        ("general.architecture".into(), STRING, gguf_string("gemma3")),
        ("gemma3.context_length".into(), U32, u32v(256)),
        ("gemma3.embedding_length".into(), U32, u32v(t.hidden)),
        ("gemma3.block_count".into(), U32, u32v(t.layers)),
        ("gemma3.feed_forward_length".into(), U32, u32v(t.ffn)),
        ("gemma3.attention.head_count".into(), U32, u32v(t.heads)),
        (
            "gemma3.attention.head_count_kv".into(),
            U32,
            u32v(t.kv_heads),
        ),
        ("gemma3.attention.key_length".into(), U32, u32v(HEAD_DIM)),
        ("gemma3.attention.value_length".into(), U32, u32v(HEAD_DIM)),
        (
            "gemma3.attention.layer_norm_rms_epsilon".into(),
            F32,
            1e-6f32.to_le_bytes().to_vec(),
        ),
        (
            "gemma3.rope.freq_base".into(),
            F32,
            1e6f32.to_le_bytes().to_vec(),
        ),
        ("gemma3.attention.sliding_window".into(), U32, u32v(4)),
        ("tokenizer.ggml.model".into(), STRING, gguf_string("llama")),
        (
            "tokenizer.ggml.tokens".into(),
            ARRAY,
            array(STRING, &tokens, |s| gguf_string(s)),
        ),
        (
            "tokenizer.ggml.scores".into(),
            ARRAY,
            array(F32, &scores, |s| s.to_le_bytes().to_vec()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            ARRAY,
            array(I32, &types, |s| s.to_le_bytes().to_vec()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), U32, u32v(2)),
        ("tokenizer.ggml.eos_token_id".into(), U32, u32v(1)),
        ("tokenizer.ggml.unknown_token_id".into(), U32, u32v(3)),
        ("tokenizer.ggml.add_bos_token".into(), 7, vec![1]),
        ("tokenizer.ggml.add_space_prefix".into(), 7, vec![0]),
    ];
    let mut rng = Rng::new(11);
    let mut tensors = vec![f32_tensor(
        "token_embd.weight",
        &[tokens.len(), t.hidden],
        &mut rng,
        false,
    )];
    for l in 0..t.layers {
        let b = |s: &str| format!("blk.{l}.{s}.weight");
        for (name, shape, ones) in [
            ("attn_norm", vec![t.hidden], true),
            ("attn_q", vec![q, t.hidden], false),
            ("attn_k", vec![kv, t.hidden], false),
            ("attn_v", vec![kv, t.hidden], false),
            ("attn_q_norm", vec![HEAD_DIM], true),
            ("attn_k_norm", vec![HEAD_DIM], true),
            ("attn_output", vec![t.hidden, q], false),
            ("post_attention_norm", vec![t.hidden], true),
            ("ffn_norm", vec![t.hidden], true),
            ("ffn_gate", vec![t.ffn, t.hidden], false),
            ("ffn_up", vec![t.ffn, t.hidden], false),
            ("ffn_down", vec![t.hidden, t.ffn], false),
            ("post_ffw_norm", vec![t.hidden], true),
        ] {
            tensors.push(f32_tensor(&b(name), &shape, &mut rng, ones));
        }
    }
    tensors.push(f32_tensor(
        "output_norm.weight",
        &[t.hidden],
        &mut rng,
        true,
    ));
    Gguf {
        version: 3,
        kv: kv_pairs,
        tensors,
        tensor_count: None,
        kv_count: None,
    }
}

fn write(dir: &Path, edit: impl Fn(&mut Gguf)) -> PathBuf {
    let mut g = gemma_gguf();
    edit(&mut g);
    let p = dir.join("gemma.gguf");
    std::fs::write(&p, g.bytes()).unwrap();
    p
}

fn gemma_case(
    name: &'static str,
    needle: &'static str,
    edit: impl Fn(&mut Gguf) + 'static,
) -> Case {
    case(name, needle, move |d| generate(&write(d, &edit), &[]))
}

/// The Gemma cases of the malformed-input table.
pub fn cases() -> Vec<Case> {
    vec![
        gemma_case(
            "Gemma GGUF without a post-attention norm",
            "tensor `blk.1.post_attention_norm.weight`: tensor is missing",
            |g| {
                g.tensors
                    .retain(|t| t.name != "blk.1.post_attention_norm.weight")
            },
        ),
        gemma_case(
            "Gemma GGUF with a misshapen post-MLP norm",
            "tensor `blk.0.post_ffw_norm.weight`: has shape [31], expected [32]",
            |g| {
                let t = g.tensor("blk.0.post_ffw_norm.weight");
                t.ne = vec![31];
                t.data.truncate(31 * 4);
            },
        ),
        gemma_case(
            "Gemma GGUF with a q-norm of the wrong width",
            "tensor `blk.0.attn_q_norm.weight`: has shape [32], expected [16]",
            |g| {
                let t = g.tensor("blk.0.attn_q_norm.weight");
                t.ne = vec![32];
                t.data = [1f32; 32].iter().flat_map(|v| v.to_le_bytes()).collect();
            },
        ),
        gemma_case(
            "Gemma GGUF with a sliding window of 0",
            "metadata `gemma3.attention.sliding_window` is 0",
            |g| {
                g.set(
                    "gemma3.attention.sliding_window",
                    U32,
                    0u32.to_le_bytes().to_vec(),
                )
            },
        ),
        gemma_case(
            "Gemma GGUF with a sliding-window pattern of 0",
            "metadata `gemma3.attention.sliding_window_pattern` is 0",
            |g| {
                g.set(
                    "gemma3.attention.sliding_window_pattern",
                    U32,
                    0u32.to_le_bytes().to_vec(),
                )
            },
        ),
        gemma_case(
            "Gemma GGUF whose vocabulary has no scores",
            "tokenizer.ggml.scores is missing",
            |g| g.kv.retain(|(k, _, _)| k != "tokenizer.ggml.scores"),
        ),
    ]
}

/// The untouched tiny Gemma loads and generates: each case above fails for its one lie.
#[test]
fn the_untouched_tiny_gemma_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), |_| {});
    let out = crate::common::normscope()
        .args(generate(&p, &["--check-weights"]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
