//! The table of malformed inputs: each case builds a broken file (or passes a
//! bad flag), runs the real binary, and expects a given exit status, an error
//! naming the problem, one line on stderr, and no panic or backtrace.

mod family;
mod files;
mod gemma;
mod kquants;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{normscope, write_json, Tiny};
use files::{gguf_string, safetensors_file, safetensors_parts, tiny_tensors, Gguf, U32};

/// Makes the inputs of one case in `dir` and returns the command's arguments.
type Make = Box<dyn Fn(&Path) -> Vec<String>>;

struct Case {
    name: &'static str,
    make: Make,
    status: i32,
    needle: &'static str,
}

fn case(
    name: &'static str,
    needle: &'static str,
    make: impl Fn(&Path) -> Vec<String> + 'static,
) -> Case {
    Case {
        name,
        make: Box::new(make),
        status: 1,
        needle,
    }
}

fn generate(model: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "generate",
        "x",
        "--model",
        model.to_str().unwrap(),
        "--max-tokens",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// A good Tiny folder in `dir/m`.
fn folder(dir: &Path) -> PathBuf {
    Tiny::default().write_folder(&dir.join("m"))
}

/// A folder whose model.safetensors is `bytes`.
fn folder_with_weights(dir: &Path, bytes: Vec<u8>) -> PathBuf {
    let m = folder(dir);
    std::fs::write(m.join("model.safetensors"), bytes).unwrap();
    m
}

/// A folder whose safetensors header JSON is edited by `edit` (data unchanged).
fn lying_header(dir: &Path, edit: impl Fn(&mut serde_json::Map<String, Value>)) -> PathBuf {
    let (mut header, data) = safetensors_parts(&tiny_tensors(&Tiny::default()));
    edit(header.as_object_mut().unwrap());
    folder_with_weights(dir, safetensors_file(&header.to_string(), &data))
}

/// A folder whose tensor `name` has its first element replaced by `value`.
fn poisoned(dir: &Path, name: &str, value: f32) -> PathBuf {
    let mut t = tiny_tensors(&Tiny::default());
    t.get_mut(name).unwrap().1[..4].copy_from_slice(&value.to_le_bytes());
    let (header, data) = safetensors_parts(&t);
    folder_with_weights(dir, safetensors_file(&header.to_string(), &data))
}

/// A folder whose config.json is edited by `edit`.
fn config(dir: &Path, edit: impl Fn(&mut Value)) -> PathBuf {
    let m = folder(dir);
    let mut c = Tiny::default().config();
    edit(&mut c);
    write_json(&m.join("config.json"), &c);
    m
}

/// A folder with 2 shards whose index is edited by `edit`.
fn sharded(dir: &Path, edit: impl Fn(&mut Value)) -> PathBuf {
    let tiny = Tiny::default();
    let m = tiny.write_folder_with(&dir.join("m"), &tiny.tensors(), 2);
    let p = m.join("model.safetensors.index.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut v);
    write_json(&p, &v);
    m
}

/// A GGUF file edited by `edit`, then written (and its bytes edited by `bytes`).
fn gguf(dir: &Path, edit: impl Fn(&mut Gguf), bytes: impl Fn(&mut Vec<u8>)) -> PathBuf {
    let mut g = Gguf::tiny(&Tiny::default());
    edit(&mut g);
    let mut b = g.bytes();
    bytes(&mut b);
    let p = dir.join("m.gguf");
    std::fs::write(&p, b).unwrap();
    p
}

fn gguf_case(name: &'static str, needle: &'static str, edit: impl Fn(&mut Gguf) + 'static) -> Case {
    case(name, needle, move |d| {
        generate(&gguf(d, &edit, |_| {}), &[])
    })
}

fn gguf_bytes_case(
    name: &'static str,
    needle: &'static str,
    bytes: impl Fn(&mut Vec<u8>) + 'static,
) -> Case {
    case(name, needle, move |d| {
        generate(&gguf(d, |_| {}, &bytes), &[])
    })
}

fn flag_case(
    name: &'static str,
    needle: &'static str,
    status: i32,
    extra: &'static [&'static str],
) -> Case {
    Case {
        name,
        make: Box::new(move |d| generate(&folder(d), extra)),
        status,
        needle,
    }
}

fn cases() -> Vec<Case> {
    let emb = "model.embed_tokens.weight";
    vec![
        // safetensors: lengths, JSON, dtypes, offsets, shapes.
        case(
            "safetensors shorter than its length prefix",
            "too short",
            |d| generate(&folder_with_weights(d, vec![1, 2, 3]), &[]),
        ),
        case(
            "safetensors header length past the end",
            "runs past the end",
            |d| {
                let mut b = safetensors_file("{}", &[]);
                b[..8].copy_from_slice(&1000u64.to_le_bytes());
                generate(&folder_with_weights(d, b), &[])
            },
        ),
        case(
            "safetensors header length over 100 MB",
            "exceeds the 100000000-byte limit",
            |d| {
                let mut b = safetensors_file("{}", &[]);
                b[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
                generate(&folder_with_weights(d, b), &[])
            },
        ),
        case("safetensors header is not JSON", "not valid JSON", |d| {
            generate(
                &folder_with_weights(d, safetensors_file("{\"a\": nope", &[])),
                &[],
            )
        }),
        case(
            "safetensors header is a JSON array",
            "not a JSON object",
            |d| {
                generate(
                    &folder_with_weights(d, safetensors_file("[1, 2]", &[])),
                    &[],
                )
            },
        ),
        case(
            "safetensors header with a duplicate key",
            "duplicate key `a`",
            |d| {
                let h = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
                generate(&folder_with_weights(d, safetensors_file(h, &[0; 4])), &[])
            },
        ),
        case(
            "safetensors unknown dtype",
            "unknown dtype `F7`",
            move |d| generate(&lying_header(d, |h| h[emb]["dtype"] = json!("F7")), &[]),
        ),
        case(
            "safetensors truncated mid-data",
            "past the end of the file",
            |d| {
                let (h, data) = safetensors_parts(&tiny_tensors(&Tiny::default()));
                let mut b = safetensors_file(&h.to_string(), &data);
                b.truncate(b.len() - 100);
                generate(&folder_with_weights(d, b), &[])
            },
        ),
        case("safetensors trailing bytes", "trailing bytes", |d| {
            let (h, data) = safetensors_parts(&tiny_tensors(&Tiny::default()));
            let mut b = safetensors_file(&h.to_string(), &data);
            b.extend([0; 16]);
            generate(&folder_with_weights(d, b), &[])
        }),
        case("safetensors overlapping offsets", "overlaps", |d| {
            generate(
                &lying_header(d, |h| {
                    let first = h.keys().next().unwrap().clone();
                    let second = h.keys().nth(1).unwrap().clone();
                    let off = h[&first]["data_offsets"].clone();
                    let n = h[&second]["data_offsets"][1].as_u64().unwrap()
                        - h[&second]["data_offsets"][0].as_u64().unwrap();
                    let s = off[0].as_u64().unwrap();
                    h[&second]["data_offsets"] = json!([s, s + n]);
                }),
                &[],
            )
        }),
        case(
            "safetensors offsets out of order",
            "out of order",
            move |d| {
                generate(
                    &lying_header(d, |h| {
                        let o = h[emb]["data_offsets"].clone();
                        h[emb]["data_offsets"] = json!([o[1], o[0]]);
                    }),
                    &[],
                )
            },
        ),
        case(
            "safetensors shape disagrees with byte range",
            "needs",
            move |d| {
                generate(
                    &lying_header(d, |h| h[emb]["shape"] = json!([300, 31])),
                    &[],
                )
            },
        ),
        case(
            "safetensors shape product overflows",
            "overflows",
            move |d| {
                generate(
                    &lying_header(d, |h| {
                        h[emb]["shape"] = json!([4294967296u64, 4294967296u64, 16])
                    }),
                    &[],
                )
            },
        ),
        case(
            "safetensors bit-flipped length prefix",
            "safetensors header",
            |d| {
                let (h, data) = safetensors_parts(&tiny_tensors(&Tiny::default()));
                let mut b = safetensors_file(&h.to_string(), &data);
                b[0] ^= 0x04;
                generate(&folder_with_weights(d, b), &[])
            },
        ),
        // Weights: NaN / Inf, wrong and missing tensors.
        case("NaN in a norm gain", "holds NaN", |d| {
            generate(
                &poisoned(d, "model.layers.1.input_layernorm.weight", f32::NAN),
                &[],
            )
        }),
        case("Inf in the embedding", "holds Inf", move |d| {
            generate(&poisoned(d, emb, f32::INFINITY), &[])
        }),
        case(
            "NaN in a projection with --check-weights",
            "model.layers.0.mlp.up_proj.weight` holds NaN",
            |d| {
                generate(
                    &poisoned(d, "model.layers.0.mlp.up_proj.weight", f32::NAN),
                    &["--check-weights"],
                )
            },
        ),
        case("tensor of the wrong shape", "expected [64, 32]", |d| {
            let mut t = tiny_tensors(&Tiny::default());
            t.insert(
                "model.layers.1.mlp.up_proj.weight".into(),
                (vec![2, 2], vec![0; 16]),
            );
            let (h, data) = safetensors_parts(&t);
            generate(
                &folder_with_weights(d, safetensors_file(&h.to_string(), &data)),
                &[],
            )
        }),
        case("missing tensor", "missing (expected shape [32])", |d| {
            let mut t = tiny_tensors(&Tiny::default());
            t.remove("model.norm.weight");
            let (h, data) = safetensors_parts(&t);
            generate(
                &folder_with_weights(d, safetensors_file(&h.to_string(), &data)),
                &[],
            )
        }),
        // config.json.
        case(
            "config vocab_size disagrees with the embedding",
            "expected [301, 32]",
            |d| generate(&config(d, |c| c["vocab_size"] = json!(301)), &[]),
        ),
        case("config.json is not JSON", "config.json", |d| {
            let m = folder(d);
            std::fs::write(m.join("config.json"), "{ nope").unwrap();
            generate(&m, &[])
        }),
        case(
            "config heads not a multiple of KV heads",
            "not a multiple",
            |d| generate(&config(d, |c| c["num_key_value_heads"] = json!(3)), &[]),
        ),
        case("config without hidden_size", "hidden_size", |d| {
            generate(
                &config(d, |c| {
                    c.as_object_mut().unwrap().remove("hidden_size");
                }),
                &[],
            )
        }),
        case(
            "config with zero layers",
            "num_hidden_layers must be positive",
            |d| generate(&config(d, |c| c["num_hidden_layers"] = json!(0)), &[]),
        ),
        case(
            "config with a huge context",
            "max_position_embeddings",
            |d| {
                generate(
                    &config(d, |c| c["max_position_embeddings"] = json!(1u64 << 40)),
                    &[],
                )
            },
        ),
        case(
            "config hidden size not divisible by heads",
            "not divisible",
            |d| generate(&config(d, |c| c["num_attention_heads"] = json!(6)), &[]),
        ),
        // Sharded checkpoints.
        case(
            "index names a shard that does not exist",
            "does not exist",
            |d| {
                generate(
                    &sharded(d, |v| {
                        v["weight_map"]["model.norm.weight"] =
                            json!("model-00009-of-00009.safetensors")
                    }),
                    &[],
                )
            },
        ),
        case("index disagrees with the shards", "weight_map puts", |d| {
            generate(
                &sharded(d, |v| {
                    let files: Vec<String> = v["weight_map"]
                        .as_object()
                        .unwrap()
                        .values()
                        .map(|f| f.as_str().unwrap().to_string())
                        .collect();
                    let other = files
                        .iter()
                        .find(|f| **f != v["weight_map"]["model.norm.weight"])
                        .unwrap()
                        .clone();
                    v["weight_map"]["model.norm.weight"] = json!(other);
                }),
                &[],
            )
        }),
        case("index with a duplicate key", "duplicate key", |d| {
            let m = sharded(d, |_| {});
            let p = m.join("model.safetensors.index.json");
            let text = std::fs::read_to_string(&p).unwrap();
            let dup = text.replacen(
                "\"weight_map\": {",
                "\"weight_map\": {\"model.norm.weight\": \"x.safetensors\",",
                1,
            );
            std::fs::write(&p, dup).unwrap();
            generate(&m, &[])
        }),
        // Tokenizer and chat template.
        case(
            "tokenizer.json is not a tokenizer",
            "cannot parse tokenizer",
            |d| {
                let m = folder(d);
                std::fs::write(m.join("tokenizer.json"), "{\"model\": 3}").unwrap();
                generate(&m, &[])
            },
        ),
        case(
            "chat template that does not parse",
            "tokenizer_config.json: the chat template does not parse",
            |d| {
                let m = folder(d);
                write_json(
                    &m.join("tokenizer_config.json"),
                    &json!({"chat_template": "{% for %}"}),
                );
                generate(&m, &["--chat"])
            },
        ),
        case(
            "chat template that fails to render",
            "tokenizer_config.json: the chat template failed to render",
            |d| {
                let m = folder(d);
                write_json(
                    &m.join("tokenizer_config.json"),
                    &json!({"chat_template": "{{ raise_exception('no') }}"}),
                );
                generate(&m, &["--chat"])
            },
        ),
        // GGUF headers.
        gguf_bytes_case("GGUF bad magic", "bad magic", |b| b[0] = b'X'),
        gguf_case("GGUF version 7", "GGUF version 7 is not supported", |g| {
            g.version = 7
        }),
        gguf_bytes_case("GGUF truncated", "past the end", |b| {
            b.truncate(b.len() / 2)
        }),
        gguf_case("GGUF huge tensor count", "cannot fit", |g| {
            g.tensor_count = Some(u64::MAX / 2)
        }),
        gguf_case("GGUF huge metadata count", "cannot fit", |g| {
            g.kv_count = Some(1 << 40)
        }),
        gguf_bytes_case("GGUF key length past the end", "string length", |b| {
            b[24..32].copy_from_slice(&(1u64 << 50).to_le_bytes())
        }),
        gguf_case("GGUF unknown value type", "unknown value type 77", |g| {
            g.kv[1].1 = 77
        }),
        gguf_case(
            "GGUF unknown tensor type",
            "unknown or unsupported tensor type 99",
            |g| g.tensors[0].ggml_type = 99,
        ),
        gguf_case(
            "GGUF tensor type candle cannot load (Q8_1)",
            "unsupported tensor type 9",
            |g| g.tensors[0].ggml_type = 9,
        ),
        gguf_case("GGUF five dimensions", "5 dimensions", |g| {
            g.tensors[0].ne = vec![1, 1, 1, 1, 1]
        }),
        gguf_case("GGUF dimension product overflows", "overflow", |g| {
            g.tensors[0].ne = vec![1 << 32, 1 << 32, 4]
        }),
        gguf_case(
            "GGUF rows not a multiple of the block",
            "block size 32",
            |g| {
                let t = g.tensor("output_norm.weight");
                t.ggml_type = 8; // Q8_0 over 32 f32 values: rows of 32 fit, so make them 16
                t.ne = vec![16, 2];
            },
        ),
        gguf_case("GGUF alignment 0", "general.alignment", |g| {
            g.set("general.alignment", U32, 0u32.to_le_bytes().to_vec())
        }),
        gguf_case(
            "GGUF alignment not a multiple of 8",
            "general.alignment",
            |g| g.set("general.alignment", U32, 12u32.to_le_bytes().to_vec()),
        ),
        gguf_case("GGUF unaligned tensor offset", "not aligned", |g| {
            g.tensors[1].offset = Some(4)
        }),
        gguf_case("GGUF tensor past the end", "run past the end", |g| {
            g.tensors[2].offset = Some(1 << 40)
        }),
        gguf_case("GGUF overlapping tensors", "overlaps", |g| {
            g.tensors[3].offset = Some(0)
        }),
        gguf_case(
            "GGUF duplicate metadata key",
            "duplicate metadata key",
            |g| g.kv[2].0 = g.kv[1].0.clone(),
        ),
        gguf_case("GGUF duplicate tensor name", "duplicate tensor name", |g| {
            g.tensors[1].name = g.tensors[0].name.clone()
        }),
        gguf_case(
            "GGUF block_count disagrees with the tensors",
            "llama.block_count is 5",
            |g| g.set("llama.block_count", U32, 5u32.to_le_bytes().to_vec()),
        ),
        gguf_case(
            "GGUF without embedding_length",
            "llama.embedding_length",
            |g| g.kv.retain(|(k, _, _)| k != "llama.embedding_length"),
        ),
        gguf_case(
            "GGUF of another architecture",
            "general.architecture is `gpt2`; supported: llama, qwen2, qwen3, phi3, olmo2, smollm3, gemma3",
            |g| g.set("general.architecture", files::STRING, gguf_string("gpt2")),
        ),
        gguf_case("GGUF array of arrays", "arrays of arrays", |g| {
            let mut p = files::ARRAY.to_le_bytes().to_vec();
            p.extend(1u64.to_le_bytes());
            g.set("x.nested", files::ARRAY, p)
        }),
        // Flags and prompts.
        case("--max-tokens 0", "--max-tokens must be at least 1", |d| {
            let mut args = generate(&folder(d), &[]);
            *args.last_mut().unwrap() = "0".into();
            args
        }),
        flag_case(
            "negative temperature",
            "--temperature",
            1,
            &["--temperature", "-1"],
        ),
        flag_case(
            "top-p of 0",
            "--top-p 0 must be in (0, 1]",
            1,
            &["--top-p", "0"],
        ),
        flag_case(
            "top-k of 0",
            "--top-k must be at least 1",
            1,
            &["--top-k", "0"],
        ),
        flag_case(
            "unknown device",
            "--device `tpu` is not known",
            1,
            &["--device", "tpu"],
        ),
        flag_case(
            "unknown dtype",
            "--dtype `f8` is not known",
            1,
            &["--dtype", "f8"],
        ),
        flag_case(
            "non-numeric temperature",
            "invalid value",
            2,
            &["--temperature", "warm"],
        ),
        case("empty prompt", "the prompt is empty", |d| {
            let m = folder(d);
            vec![
                "generate".into(),
                "".into(),
                "--model".into(),
                m.to_str().unwrap().into(),
            ]
        }),
        case(
            "prompt longer than the context",
            "context is 128 tokens",
            |d| {
                let m = folder(d);
                generate(&m, &[])
                    .into_iter()
                    .map(|a| if a == "x" { "y".repeat(300) } else { a })
                    .collect()
            },
        ),
        case("prompt file that is not UTF-8", "not UTF-8", |d| {
            let m = folder(d);
            let p = d.join("p.txt");
            std::fs::write(&p, [0xc3, 0x28, 0xff]).unwrap();
            vec![
                "generate".into(),
                "--prompt-file".into(),
                p.to_str().unwrap().into(),
                "--model".into(),
                m.to_str().unwrap().into(),
            ]
        }),
        case(
            "convert onto an existing folder without --force",
            "pass --force",
            |d| {
                let g = gguf(d, |_| {}, |_| {});
                let out = d.join("out");
                std::fs::create_dir_all(&out).unwrap();
                std::fs::write(out.join("keep"), "x").unwrap();
                vec![
                    "convert".into(),
                    g.to_str().unwrap().into(),
                    "--out".into(),
                    out.to_str().unwrap().into(),
                ]
            },
        ),
        case(
            "variant of a quantized GGUF",
            "is quantized; variants and fine-tuning need a float checkpoint",
            |d| {
                let g = gguf(d, |_| {}, |_| {});
                vec![
                    "variant".into(),
                    "--model".into(),
                    g.to_str().unwrap().into(),
                    "--kind".into(),
                    "deepnorm".into(),
                    "--out".into(),
                    d.join("v").to_str().unwrap().into(),
                ]
            },
        ),
    ]
}

#[cfg(not(feature = "cuda"))]
fn cuda_case() -> Case {
    flag_case(
        "CUDA in a build without it",
        "--features cuda",
        1,
        &["--device", "cuda"],
    )
}

#[test]
fn the_untouched_inputs_load_and_run() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        generate(&folder(&dir.path().join("a")), &["--check-weights"]),
        generate(&gguf(dir.path(), |_| {}, |_| {}), &["--check-weights"]),
        generate(&sharded(&dir.path().join("b"), |_| {}), &[]),
    ] {
        let out = normscope().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_malformed_input_fails_with_one_clear_line() {
    let mut all = cases();
    all.extend(kquants::cases());
    all.extend(gemma::cases());
    all.extend(family::cases());
    #[cfg(not(feature = "cuda"))]
    all.push(cuda_case());
    assert!(all.len() >= 30, "only {} cases", all.len());
    let root = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, c) in all.iter().enumerate() {
        let dir = root.path().join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let args = (c.make)(&dir);
        let out = normscope()
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let problems = [
            (
                out.status.code() != Some(c.status),
                format!("exit {:?}, expected {}", out.status.code(), c.status),
            ),
            (
                !stderr.contains(c.needle),
                format!("stderr lacks {:?}", c.needle),
            ),
            (
                stderr.contains("panicked") || stderr.contains("backtrace"),
                "panic".into(),
            ),
            (
                stderr.trim_end().lines().count() != 1,
                "not one line".into(),
            ),
        ];
        for (bad, what) in problems {
            if bad {
                failures.push(format!("{}: {what}: {stderr:?}", c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
