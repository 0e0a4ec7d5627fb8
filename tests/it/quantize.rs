//! `normscope quantize`: blocks equal to ggml's reference quantizers, llama.cpp's
//! per-tensor recipe, round trips through the loader, and the command's
//! contract (staged output, --force, errors).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candle_core::quantized::GgmlDType;
use normscope::model::quantize::blocks;
use normscope::quantize::recipe::{self, ModelInfo, TensorDesc};
use normscope::quantize::Target;
use normscope::weights::gguf::GgufFile;

use crate::common::{normscope, python_with_numpy_gguf, Rng, Tiny};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ggml_ref")
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The first differing block of `got` against `want`, for the failure message.
fn first_difference(got: &[u8], want: &[u8], block_bytes: usize) -> Option<usize> {
    got.chunks(block_bytes)
        .zip(want.chunks(block_bytes))
        .position(|(a, b)| a != b)
}

/// tests/fixtures/ggml_ref holds rows of edge cases (all zero, one huge value,
/// negative only, ties at .5, a sub-block whose scale rounds to zero,
/// f16-subnormal scales, ...) and random rows, with the blocks libggml-base's
/// `ggml_quantize_chunk` made of them (scripts/ggml_quant_fixtures.py).
#[test]
fn blocks_equal_ggml_reference_quantizers_bit_for_bit() {
    let dir = fixtures();
    let x = f32s(&std::fs::read(dir.join("input.f32")).unwrap());
    assert_eq!(x.len(), 64 * 256);
    let mut failures = Vec::new();
    for (name, dtype) in [
        ("q4_0", GgmlDType::Q4_0),
        ("q4_1", GgmlDType::Q4_1),
        ("q5_0", GgmlDType::Q5_0),
        ("q5_1", GgmlDType::Q5_1),
        ("q8_0", GgmlDType::Q8_0),
        ("q4_K", GgmlDType::Q4K),
        ("q5_K", GgmlDType::Q5K),
        ("q6_K", GgmlDType::Q6K),
        ("f16", GgmlDType::F16),
        ("bf16", GgmlDType::BF16),
    ] {
        let want = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
        let got = blocks::quantize(dtype, &x, 256).unwrap();
        let blocks = x.len() / dtype.block_size();
        eprintln!("{name}: {blocks} blocks compared with ggml's");
        if got != want {
            failures.push(format!(
                "{name}: block {:?} of {blocks} differs",
                first_difference(&got, &want, dtype.type_size())
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// candle's own k-quant `from_float` (older ggml: `make_qkx1_quants`, no
/// per-value weights) gives other blocks than today's ggml; this is why
/// normscope ports `quantize_row_q{4,5,6}_K_ref` itself. Informational: it
/// prints how many super-blocks differ and asserts only that ours do not.
#[test]
fn candle_k_quants_differ_from_ggml_ours_do_not() {
    use candle_core::quantized::QTensor;
    let dir = fixtures();
    let x = f32s(&std::fs::read(dir.join("input.f32")).unwrap());
    let t = candle_core::Tensor::from_slice(&x, (64, 256), &candle_core::Device::Cpu).unwrap();
    for (name, dtype) in [
        ("q4_K", GgmlDType::Q4K),
        ("q5_K", GgmlDType::Q5K),
        ("q6_K", GgmlDType::Q6K),
    ] {
        let want = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
        let candle = QTensor::quantize(&t, dtype)
            .unwrap()
            .data()
            .unwrap()
            .to_vec();
        let ours = blocks::quantize(dtype, &x, 256).unwrap();
        let differ = |got: &[u8]| {
            got.chunks(dtype.type_size())
                .zip(want.chunks(dtype.type_size()))
                .filter(|(a, b)| a != b)
                .count()
        };
        eprintln!(
            "{name}: candle's from_float differs from ggml in {} of 64 super-blocks, ours in {}",
            differ(&candle),
            differ(&ours)
        );
        assert_eq!(differ(&ours), 0);
    }
}

/// Random tensors with the edge cases of 32-value blocks, rows of `cols`.
fn random_rows(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x: Vec<f32> = (0..rows * cols)
        .map(|_| (rng.uniform() * 2.0 - 1.0) * 0.05)
        .collect();
    let block = |b: usize| b * 32..b * 32 + 32;
    x[block(0)].fill(0.0); // all-zero block
    x[block(1)][5] = 1e4; // one huge value
    for v in &mut x[block(2)] {
        *v = -v.abs() - 0.01; // negative only
    }
    for (i, v) in x[block(3)].iter_mut().enumerate() {
        *v = [127.0, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 3.5][i % 8]; // ties at .5 for Q8_0
    }
    for (i, v) in x[block(4)].iter_mut().enumerate() {
        *v = [-8.0, 0.5, 1.5, -0.5, 2.5, 4.5, -3.5, 7.0][i % 8]; // ties for 4-bit types
    }
    x[block(5)].fill(0.3); // constant
    for v in &mut x[block(6)] {
        *v *= 1e-6; // tiny: f16-subnormal scales
    }
    x
}

/// The non-k types against the gguf Python package's numpy quantizers (an
/// implementation independent of both candle and ggml's C): `python3` with the
/// `gguf` and `numpy` packages (see `python_with_numpy_gguf`).
#[test]
fn non_k_blocks_match_the_gguf_python_package() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = [(8usize, 256usize), (5, 96), (3, 4096), (64, 32)];
    let mut inputs = Vec::new();
    for (i, &(rows, cols)) in shapes.iter().enumerate() {
        let x = random_rows(rows, cols, 100 + i as u64);
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join(format!("x{i}.f32")), bytes).unwrap();
        inputs.push((x, cols));
    }
    let script = r#"
import sys, numpy as np, gguf
from gguf import quants
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    cols = int(sys.argv[3 + i])
    x = np.fromfile(f"{d}/x{i}.f32", dtype=np.float32).reshape(-1, cols)
    for t in ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16"]:
        q = quants.quantize(x, gguf.GGMLQuantizationType[t])
        open(f"{d}/x{i}.{t}", "wb").write(q.tobytes())
    open(f"{d}/x{i}.F16", "wb").write(x.astype(np.float16).tobytes())
"#;
    let mut cmd = python_with_numpy_gguf();
    cmd.args(["-c", script, dir.path().to_str().unwrap()])
        .arg(shapes.len().to_string());
    for &(_, cols) in &shapes {
        cmd.arg(cols.to_string());
    }
    let out = cmd.output().expect("python3 must be installed");
    assert!(
        out.status.success(),
        "the gguf reference quantizers failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut compared = 0;
    for (i, (x, cols)) in inputs.iter().enumerate() {
        for (t, dtype) in [
            ("Q4_0", GgmlDType::Q4_0),
            ("Q4_1", GgmlDType::Q4_1),
            ("Q5_0", GgmlDType::Q5_0),
            ("Q5_1", GgmlDType::Q5_1),
            ("Q8_0", GgmlDType::Q8_0),
            ("BF16", GgmlDType::BF16),
            ("F16", GgmlDType::F16),
        ] {
            let want = std::fs::read(dir.path().join(format!("x{i}.{t}"))).unwrap();
            let got = blocks::quantize(dtype, x, *cols).unwrap();
            assert!(
                got == want,
                "{t} on a {cols}-wide tensor: block {:?} differs from gguf-py's",
                first_difference(&got, &want, dtype.type_size())
            );
            compared += x.len() / dtype.block_size();
        }
    }
    eprintln!("{compared} blocks equal gguf-py's");
}

/// The ggml type table the validator uses: ggml's ids, block sizes and block bytes.
#[test]
fn the_validator_knows_every_type_quantize_writes() {
    use normscope::weights::validate::ggml_types::{byte_size, ggml_type};
    for (id, block, bytes) in [
        (0u32, 1usize, 4usize), // F32
        (1, 1, 2),              // F16
        (2, 32, 18),            // Q4_0
        (3, 32, 20),            // Q4_1
        (6, 32, 22),            // Q5_0
        (7, 32, 24),            // Q5_1
        (8, 32, 34),            // Q8_0
        (10, 256, 84),          // Q2_K
        (11, 256, 110),         // Q3_K
        (12, 256, 144),         // Q4_K
        (13, 256, 176),         // Q5_K
        (14, 256, 210),         // Q6_K
        (30, 1, 2),             // BF16
    ] {
        let t = ggml_type(id).unwrap_or_else(|| panic!("type {id} unknown"));
        assert_eq!(normscope::quantize::target::ggml_id(t), id);
        assert_eq!(byte_size(t, block, block * 3), Ok(3 * bytes), "type {id}");
        if block > 1 {
            assert!(byte_size(t, block / 2, block).is_err(), "type {id}");
        }
    }
}

/// A LLaMA tensor list in llama.cpp's order (ggml dims: `ne[0]` is the row length).
fn llama_tensors(
    hidden: usize,
    ffn: usize,
    kv: usize,
    layers: usize,
    tied: bool,
) -> Vec<TensorDesc> {
    let d = |name: &str, ne: &[usize]| TensorDesc {
        name: name.into(),
        ne: ne.to_vec(),
        dtype: GgmlDType::F32,
    };
    let mut t = vec![
        d("output_norm.weight", &[hidden]),
        d("token_embd.weight", &[hidden, 300]),
    ];
    if !tied {
        t.push(d("output.weight", &[hidden, 300]));
    }
    for l in 0..layers {
        let p = |s: &str| format!("blk.{l}.{s}.weight");
        t.push(d(&p("attn_k"), &[hidden, kv]));
        t.push(d(&p("attn_norm"), &[hidden]));
        t.push(d(&p("attn_output"), &[hidden, hidden]));
        t.push(d(&p("attn_q"), &[hidden, hidden]));
        t.push(d(&p("attn_v"), &[hidden, kv]));
        t.push(d(&p("ffn_down"), &[ffn, hidden]));
        t.push(d(&p("ffn_gate"), &[hidden, ffn]));
        t.push(d(&p("ffn_norm"), &[hidden]));
        t.push(d(&p("ffn_up"), &[hidden, ffn]));
    }
    t.sort_by(|a, b| recipe::llama_order(&a.name, &b.name));
    t
}

fn llama_info(layers: usize) -> ModelInfo {
    ModelInfo {
        arch: "llama".into(),
        n_layer: layers,
        n_head: 4,
        n_head_kv: 2,
        n_expert: 0,
    }
}

/// Types by tensor name.
fn planned(
    tensors: &[TensorDesc],
    info: &ModelInfo,
    target: Target,
) -> BTreeMap<String, GgmlDType> {
    let plan = recipe::plan(tensors, info, target).unwrap();
    tensors
        .iter()
        .map(|t| t.name.clone())
        .zip(plan.types)
        .collect()
}

/// llama.cpp's `use_more_bits` picks, for 8 layers: the first and last
/// eighth (0, 7) and every third from n/8 (3, 6).
const MORE_BITS_OF_8: [usize; 4] = [0, 3, 6, 7];

#[test]
fn k_m_mixes_follow_llama_cpp_on_a_256_wide_model() {
    use GgmlDType as G;
    let t = llama_tensors(256, 512, 128, 8, true);
    for (target, base) in [(Target::Q4KM, G::Q4K), (Target::Q5KM, G::Q5K)] {
        let types = planned(&t, &llama_info(8), target);
        for (name, &ty) in &types {
            let layer = recipe::layer_of(name);
            let more = MORE_BITS_OF_8.contains(&(layer as usize));
            let want = if name.ends_with("norm.weight") {
                G::F32
            } else if name == "token_embd.weight" // tied: treated as the output
                || (name.contains("attn_v") || name.contains("ffn_down")) && more
            {
                G::Q6K
            } else {
                base
            };
            assert_eq!(ty, want, "{} {name}", target.name());
        }
    }
    // Untied: the head gets Q6_K, the embedding keeps the default type.
    let t = llama_tensors(256, 512, 128, 8, false);
    let types = planned(&t, &llama_info(8), Target::Q4KM);
    assert_eq!(types["output.weight"], G::Q6K);
    assert_eq!(types["token_embd.weight"], G::Q4K);
}

#[test]
fn single_type_targets_follow_llama_cpp() {
    use GgmlDType as G;
    let t = llama_tensors(256, 512, 128, 8, true);
    let info = llama_info(8);
    let check = |target: Target, weights: G, head: G| {
        for (name, ty) in planned(&t, &info, target) {
            let want = if name.ends_with("norm.weight") {
                G::F32
            } else if name == "token_embd.weight" {
                head
            } else {
                weights
            };
            assert_eq!(ty, want, "{} {name}", target.name());
        }
    };
    check(Target::Q4_0, G::Q4_0, G::Q6K);
    check(Target::Q4_1, G::Q4_1, G::Q6K);
    check(Target::Q5_0, G::Q5_0, G::Q6K);
    check(Target::Q5_1, G::Q5_1, G::Q6K);
    check(Target::Q8_0, G::Q8_0, G::Q8_0);
    check(Target::Q6K, G::Q6K, G::Q6K);
    check(Target::Q4K, G::Q4K, G::Q4K); // pure: no head rule
    check(Target::Q5K, G::Q5K, G::Q5K);
    check(Target::F16, G::F16, G::F16);
    check(Target::BF16, G::BF16, G::BF16);
    check(Target::F32, G::F32, G::F32);
}

/// Rows of 320 (a multiple of 32, not of 256, like SmolLM2's 576): the
/// k-quants fall back (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0) where a
/// tensor's rows are that wide; ffn_down's rows (512) keep the k-quant.
#[test]
fn rows_that_are_not_whole_super_blocks_fall_back_like_llama_cpp() {
    use GgmlDType as G;
    let t = llama_tensors(320, 512, 160, 8, true);
    let info = llama_info(8);
    for (target, base, fallback) in [
        (Target::Q4KM, G::Q4K, G::Q5_0),
        (Target::Q5KM, G::Q5K, G::Q5_1),
    ] {
        let plan = recipe::plan(&t, &info, target).unwrap();
        for (d, ty) in t.iter().zip(&plan.types) {
            let more = MORE_BITS_OF_8.contains(&(recipe::layer_of(&d.name) as usize));
            let want = if d.name.ends_with("norm.weight") {
                G::F32
            } else if d.name == "token_embd.weight" {
                G::Q8_0 // 320 % 256 != 0: the head rule picks Q8_0 itself
            } else if d.name.contains("ffn_down") {
                if more {
                    G::Q6K
                } else {
                    base
                }
            } else if d.name.contains("attn_v") && more {
                G::Q8_0 // Q6_K -> Q8_0
            } else {
                fallback
            };
            assert_eq!(*ty, want, "{} {}", target.name(), d.name);
        }
        // Every tensor with 320-wide rows but the head and the norms fell back.
        assert_eq!(plan.fallbacks, 8 * 6, "{}", target.name());
    }
    let q6 = planned(&t, &info, Target::Q6K);
    assert_eq!(q6["blk.0.attn_q.weight"], G::Q8_0);
    assert_eq!(q6["blk.0.ffn_down.weight"], G::Q6K);
    // Rows of 48: not even a multiple of 32, so F16.
    let t = llama_tensors(48, 64, 24, 2, true);
    let types = planned(&t, &llama_info(2), Target::Q4KM);
    assert_eq!(types["blk.0.attn_q.weight"], G::F16);
    assert_eq!(types["token_embd.weight"], G::F16);
    assert_eq!(types["blk.0.ffn_down.weight"], G::Q5_0); // 64 % 32 == 0
    assert_eq!(
        planned(&t, &llama_info(2), Target::Q8_0)["blk.1.ffn_up.weight"],
        G::F16
    );
}

/// llama.cpp's special cases: 80-layer LLaMA with GQA (its `LLM_TYPE_70B`)
/// bumps Q4_K attn_v to Q5_K; an 8-expert model puts attn_v and attn_k in
/// Q8_0 and attn_output in Q5_K.
#[test]
fn seventy_b_and_eight_expert_rules() {
    use GgmlDType as G;
    let t = llama_tensors(256, 512, 128, 80, true);
    let mut info = llama_info(80);
    let types = planned(&t, &info, Target::Q4KM);
    assert_eq!(types["blk.40.attn_v.weight"], G::Q5K);
    assert_eq!(types["blk.0.attn_v.weight"], G::Q6K);
    info.n_expert = 8;
    let types = planned(&t, &info, Target::Q4KM);
    assert_eq!(types["blk.40.attn_v.weight"], G::Q8_0);
    assert_eq!(types["blk.40.attn_k.weight"], G::Q8_0);
    assert_eq!(types["blk.40.attn_output.weight"], G::Q5K);
}

#[test]
fn tensors_go_in_llama_cpp_order() {
    let mut names = vec![
        "blk.10.attn_q.weight",
        "output_norm.weight",
        "blk.9.ffn_up.weight",
        "blk.9.attn_k.weight",
        "token_embd.weight",
        "blk.0.ffn_down.weight",
    ];
    names.sort_by(|a, b| recipe::llama_order(a, b));
    assert_eq!(
        names,
        [
            "output_norm.weight",
            "token_embd.weight",
            "blk.0.ffn_down.weight",
            "blk.9.attn_k.weight",
            "blk.9.ffn_up.weight",
            "blk.10.attn_q.weight",
        ]
    );
}

/// Runs `normscope quantize IN --type T --out OUT [extra] --json` and returns its JSON.
fn quantize(input: &Path, target: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let output = normscope()
        .args(["quantize", input.to_str().unwrap(), "--type", target])
        .args(["--out", out.to_str().unwrap(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "quantize {target}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

/// Each tensor's type in a GGUF written by quantize.
fn types_in(path: &Path) -> BTreeMap<String, GgmlDType> {
    let g = GgufFile::open(path).unwrap();
    g.layout
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.dtype))
        .collect()
}

/// The tensor data of a GGUF, by name.
fn data_in(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let g = GgufFile::open(path).unwrap();
    g.layout
        .tensors
        .iter()
        .map(|t| (t.name.clone(), g.bytes()[t.start..t.end].to_vec()))
        .collect()
}

fn last_logits(lm: &normscope::weights::LoadedModel, ids: &[u32]) -> candle_core::Tensor {
    let input = candle_core::Tensor::new(ids, &candle_core::Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    lm.model.forward_last(&input, None).unwrap()
}

/// A tiny 256-wide folder quantized as q4_k_m: the per-tensor types of
/// llama.cpp's recipe in the file, and a model normscope loads and runs.
#[test]
fn tiny_folder_to_q4_k_m_has_the_recipe_types_and_loads() {
    use GgmlDType as G;
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny {
        hidden: 256,
        ffn: 512,
        layers: 8,
        heads: 4,
        kv_heads: 2,
        ..Tiny::default()
    };
    let folder = tiny.write_folder(&dir.path().join("m"));
    let out = dir.path().join("m.q4_k_m.gguf");
    let s = quantize(&folder, "q4_k_m", &out, &[]);
    assert_eq!(s["file_type"], 15);
    assert_eq!(s["tensors"]["q6_K"], 2 * 4 + 1);
    for (name, ty) in types_in(&out) {
        let more = MORE_BITS_OF_8.contains(&(recipe::layer_of(&name) as usize));
        let want = if name.ends_with("norm.weight") {
            G::F32
        } else if name == "token_embd.weight"
            || (name.contains("attn_v") || name.contains("ffn_down")) && more
        {
            G::Q6K
        } else {
            G::Q4K
        };
        assert_eq!(ty, want, "{name}");
    }
    let g = GgufFile::open(&out).unwrap();
    assert_eq!(g.meta_str("general.architecture"), Some("llama"));
    assert_eq!(g.meta("general.file_type").unwrap().to_u32().unwrap(), 15);
    assert_eq!(
        g.meta("general.quantization_version")
            .unwrap()
            .to_u32()
            .unwrap(),
        2
    );
    let lm = crate::common::load(&out);
    let logits = last_logits(&lm, &[5, 6, 7]);
    assert!(logits
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

/// f32 output of a folder is the folder's own weights with q/k rows in
/// llama.cpp's order: loaded back (interleaved RoPE) it gives the folder's
/// logits, and the tokenizer, special ids and chat template come along.
#[test]
fn tiny_folder_to_f32_gguf_gives_the_folders_logits() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    let folder = tiny.write_folder(&dir.path().join("m"));
    let out = dir.path().join("m.f32.gguf");
    let s = quantize(&folder, "f32", &out, &[]);
    assert_eq!(s["tensors"]["f32"], 2 + 9 * 2);
    let a = crate::common::load(&folder);
    let b = crate::common::load(&out);
    let ids = [5u32, 6, 7, 100, 3];
    let d = crate::common::max_abs_diff(&last_logits(&a, &ids), &last_logits(&b, &ids));
    assert!(d < 1e-4, "max |logit diff| {d}");
    assert_eq!(b.eos_ids, vec![2]);
    assert_eq!(b.chat.source, a.chat.source);
    let text = "hello world";
    assert_eq!(
        a.tokenizer.encode(text, false).unwrap().get_ids(),
        b.tokenizer.encode(text, false).unwrap().get_ids()
    );
}

/// The same tiny model as a folder and as a llama.cpp-style f32 GGUF gives
/// byte-identical q8_0 tensors (q/k permutation, names and order agree).
#[test]
fn folder_and_gguf_inputs_give_the_same_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny {
        tied: false,
        ..Tiny::default()
    };
    let folder = tiny.write_folder(&dir.path().join("m"));
    let gguf = dir.path().join("m.gguf");
    tiny.write_gguf(&gguf, GgmlDType::F32);
    let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    quantize(&folder, "q8_0", &a, &[]);
    quantize(&gguf, "q8_0", &b, &[]);
    let (da, db) = (data_in(&a), data_in(&b));
    assert_eq!(da.keys().collect::<Vec<_>>(), db.keys().collect::<Vec<_>>());
    for (name, bytes) in &da {
        assert!(bytes == &db[name], "{name} differs");
    }
    // A GGUF input keeps its metadata, with file type and quantization version set.
    let g = GgufFile::open(&b).unwrap();
    assert_eq!(g.meta_str("tokenizer.ggml.pre"), Some("smollm"));
    assert_eq!(g.meta("general.file_type").unwrap().to_u32().unwrap(), 7);
    let keys: Vec<&str> = g.layout.metadata.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &keys[keys.len() - 2..],
        ["general.quantization_version", "general.file_type"]
    );
}

/// Requantizing: tensors already in the target type are copied as stored;
/// every other tensor is dequantized and quantized again.
#[test]
fn tensors_already_in_the_target_type_are_copied() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("m.gguf");
    Tiny::default().write_gguf(&gguf, GgmlDType::Q8_0);
    let out = dir.path().join("o.gguf");
    let s = quantize(&gguf, "q8_0", &out, &[]);
    assert_eq!(s["copied"], 2 + 9 * 2, "{s}");
    assert_eq!(data_in(&gguf), data_in(&out));
    let s = quantize(&gguf, "q4_0", &dir.path().join("p.gguf"), &[]);
    assert_eq!(s["tensors"]["q4_0"], 7 * 2, "{s}");
    assert_eq!(s["tensors"]["q8_0"], 1, "{s}"); // the tied head: Q6_K does not fit 32-wide rows
}

#[test]
fn existing_output_needs_force_and_bad_requests_get_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("m.gguf");
    Tiny::default().write_gguf(&gguf, GgmlDType::F32);
    let out = dir.path().join("o.gguf");
    std::fs::write(&out, b"old").unwrap();
    let run = |args: &[&str]| normscope().args(args).output().unwrap();
    let (g, o) = (gguf.to_str().unwrap(), out.to_str().unwrap());
    let fails = |args: &[&str], needle: &str| {
        let r = run(args);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    };
    fails(
        &["quantize", g, "--type", "q4_0", "--out", o],
        "pass --force",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    fails(
        &["quantize", g, "--type", "q3_k_x", "--out", o],
        "--type `q3_k_x` is not known; valid types: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m",
    );
    fails(
        &["quantize", g, "--type", "q8_0", "--out", g, "--force"],
        "same file",
    );
    fails(
        &[
            "quantize",
            g,
            "--type",
            "q8_0",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        "is a folder",
    );
    let missing = dir.path().join("nope.gguf");
    fails(
        &[
            "quantize",
            missing.to_str().unwrap(),
            "--type",
            "q8_0",
            "--out",
            &format!("{o}2.gguf"),
        ],
        "nope.gguf: no such file",
    );
    let r = run(&["quantize", g, "--type", "q4_0", "--out", o, "--force"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(types_in(&out)["blk.0.attn_q.weight"], GgmlDType::Q4_0);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn default_model() -> normscope::weights::fetch::FetchedModel {
    normscope::weights::fetch::fetch_default().expect("the default model must be fetchable")
}

/// The default model (Q4_1 GGUF) to q8_0 and q4_k_m: the per-type counts
/// llama.cpp's own quantizer gives for SmolLM2 (hidden 576 is not a multiple
/// of 256, so Q4_K falls back to Q5_0 and Q6_K to Q8_0 where rows are 576
/// wide; ffn_down's 1536-wide rows keep Q4_K / Q6_K), and the reference's
/// first greedy token from the loaded result.
#[test]
fn default_model_round_trips_through_q8_0_and_q4_k_m() {
    let p = default_model();
    let r = crate::common::read_ref("hf/p1.json");
    let prompt = crate::common::ids(&r["token_ids"]);
    let want = crate::common::ids(&r["greedy"]["new_ids"])[0];
    let dir = tempfile::tempdir().unwrap();
    let expected: [(&str, serde_json::Value); 2] = [
        ("q8_0", serde_json::json!({"f32": 61, "q8_0": 211})),
        (
            "q4_k_m",
            serde_json::json!({"f32": 61, "q4_K": 16, "q5_0": 166, "q6_K": 14, "q8_0": 15}),
        ),
    ];
    for (target, counts) in expected {
        let out = dir.path().join(format!("smollm2.{target}.gguf"));
        let s = quantize(&p.gguf, target, &out, &[]);
        eprintln!(
            "{target}: {} bytes in {:.1}s, {}",
            s["output_bytes"],
            s["seconds"].as_f64().unwrap(),
            s["tensors"]
        );
        assert_eq!(s["tensors"], counts, "{target}");
        let lm = crate::common::load(&out);
        let logits = last_logits(&lm, &prompt).squeeze(0).unwrap();
        let first = normscope::generate::argmax(&logits).unwrap();
        assert_eq!(first, want, "{target}: first greedy token");
    }
}

/// The default model's float32 folder (converted from the GGUF) and the GGUF
/// itself quantize to the same q8_0 tensors, byte for byte.
#[test]
fn default_folder_and_gguf_quantize_to_the_same_q8_0_tensors() {
    let p = default_model();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    quantize(&p.folder, "q8_0", &a, &[]);
    quantize(&p.gguf, "q8_0", &b, &[]);
    let (da, db) = (data_in(&a), data_in(&b));
    assert_eq!(da.len(), 272);
    assert_eq!(da.keys().collect::<Vec<_>>(), db.keys().collect::<Vec<_>>());
    let differ: Vec<&String> = da.keys().filter(|k| da[*k] != db[*k]).collect();
    assert!(differ.is_empty(), "tensors differ: {differ:?}");
    let ga = GgufFile::open(&a).unwrap();
    assert_eq!(ga.meta_str("tokenizer.ggml.pre"), Some("smollm"));
    assert!(ga
        .meta_str("tokenizer.chat_template")
        .unwrap()
        .contains("<|im_start|>"));
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-"))
        .collect()
}

/// SIGINT while quantize writes its staged file: status 130, no partial file,
/// a previous output (replaced with --force) untouched.
#[test]
fn interrupted_quantize_leaves_nothing_behind() {
    let gguf = default_model().gguf;
    let dir = tempfile::tempdir().unwrap();
    for previous in [false, true] {
        let out = dir.path().join("out.gguf");
        if previous {
            std::fs::write(&out, b"previous").unwrap();
        }
        let child = Command::new(assert_cmd::cargo::cargo_bin("normscope"))
            .args(["quantize", gguf.to_str().unwrap(), "--type", "q4_k_m"])
            .args(["--out", out.to_str().unwrap(), "--force"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while leftovers(dir.path()).is_empty() {
            assert!(
                started.elapsed().as_secs() < 60,
                "quantize never started writing"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let killed = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let r = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
        if previous {
            assert_eq!(std::fs::read(&out).unwrap(), b"previous");
        } else {
            assert!(!out.exists(), "a partial output was left");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any f32 bit patterns (NaN, Inf, subnormals, huge values): every type
    /// quantize writes takes them without panicking and gives whole blocks.
    /// (quantize itself refuses non-finite inputs; the GGUF fuzz target
    /// drives the same code with values dequantized from arbitrary bytes.)
    #[test]
    fn quantizers_take_any_bit_pattern(bits in proptest::collection::vec(proptest::prelude::any::<u32>(), 256..=1024)) {
        use normscope::weights::validate::ggml_types::byte_size;
        let n = bits.len() / 256 * 256;
        let x: Vec<f32> = bits[..n].iter().map(|&b| f32::from_bits(b)).collect();
        for dtype in [
            GgmlDType::F16, GgmlDType::BF16, GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q5_0,
            GgmlDType::Q5_1, GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K,
        ] {
            let q = blocks::quantize(dtype, &x, 256).unwrap();
            proptest::prop_assert_eq!(Ok(q.len()), byte_size(dtype, 256, n));
        }
    }
}

/// Folders a GGUF cannot describe are refused with one line naming the
/// file: a norm-placement variant, a SentencePiece tokenizer without its
/// tokenizer.model, a tokenizer that is neither.
#[test]
fn folders_without_a_gguf_counterpart_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Tiny::default();
    type Edit = Box<dyn Fn(&Path)>;
    let cases: [(&str, Edit, &str); 3] = [
        (
            "deepnorm",
            Box::new(|m: &Path| {
                let mut c = Tiny::default().config();
                c["normscope_norm_placement"] = serde_json::json!("deepnorm");
                crate::common::write_json(&m.join("config.json"), &c);
            }),
            "config.json: a norm-placement variant has no GGUF counterpart llama.cpp runs",
        ),
        (
            "sentencepiece",
            Box::new(|m: &Path| {
                let p = m.join("tokenizer.json");
                let mut t: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                t["model"]["byte_fallback"] = serde_json::json!(true);
                crate::common::write_json(&p, &t);
            }),
            "tokenizer.json: a SentencePiece tokenizer (BPE with byte_fallback) needs its tokenizer.model beside it",
        ),
        (
            "metaspace",
            Box::new(|m: &Path| {
                let p = m.join("tokenizer.json");
                let mut t: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                t["pre_tokenizer"] = serde_json::json!({"type": "Metaspace", "replacement": "▁"});
                crate::common::write_json(&p, &t);
            }),
            "tokenizer.json: pre-tokenizer",
        ),
    ];
    for (name, edit, needle) in cases {
        let m = tiny.write_folder(&dir.path().join(name));
        edit(&m);
        let out = dir.path().join(format!("{name}.gguf"));
        let r = normscope()
            .args(["quantize", m.to_str().unwrap(), "--type", "q8_0", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(!out.exists());
    }
}
