//! Shared helpers: tiny synthetic checkpoints written by the tests themselves,
//! the reference figures in ../shared/refs, and the binary under test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use normscope::weights::convert::permute_rows;
use serde_json::json;

/// Shape of a tiny model.
#[derive(Clone, Debug)]
pub struct Tiny {
    pub hidden: usize,
    pub ffn: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub vocab: usize,
    pub tied: bool,
    pub seed: u64,
}

impl Default for Tiny {
    fn default() -> Self {
        Self {
            hidden: 32,
            ffn: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            vocab: 300,
            tied: true,
            seed: 7,
        }
    }
}

/// A small deterministic PRNG (xorshift) so checkpoints are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
    /// A tensor with entries uniform in [-scale, scale].
    pub fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| (self.uniform() * 2.0 - 1.0) * scale)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
}

impl Tiny {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    pub fn config(&self) -> serde_json::Value {
        json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": self.hidden, "intermediate_size": self.ffn,
            "num_hidden_layers": self.layers, "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads, "vocab_size": self.vocab,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 128,
            "tie_word_embeddings": self.tied, "bos_token_id": 1, "eos_token_id": 2,
            "hidden_act": "silu", "torch_dtype": "float32"
        })
    }

    /// Random weights with Hugging Face names.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut rng = Rng::new(self.seed);
        let (h, f, hd) = (self.hidden, self.ffn, self.head_dim());
        let mut t = HashMap::new();
        t.insert(
            "model.embed_tokens.weight".into(),
            rng.tensor(&[self.vocab, h], 1.0),
        );
        t.insert(
            "model.norm.weight".into(),
            (rng.tensor(&[h], 0.2) + 1.0).unwrap(),
        );
        if !self.tied {
            t.insert("lm_head.weight".into(), rng.tensor(&[self.vocab, h], 0.3));
        }
        let s = 1.0 / (h as f32).sqrt();
        for l in 0..self.layers {
            let p = format!("model.layers.{l}");
            let mut put = |name: &str, shape: &[usize], scale: f32, rng: &mut Rng| {
                t.insert(format!("{p}.{name}.weight"), rng.tensor(shape, scale));
            };
            put("self_attn.q_proj", &[self.heads * hd, h], s, &mut rng);
            put("self_attn.k_proj", &[self.kv_heads * hd, h], s, &mut rng);
            put("self_attn.v_proj", &[self.kv_heads * hd, h], s, &mut rng);
            put("self_attn.o_proj", &[h, self.heads * hd], s, &mut rng);
            put("mlp.gate_proj", &[f, h], s, &mut rng);
            put("mlp.up_proj", &[f, h], s, &mut rng);
            put("mlp.down_proj", &[h, f], 1.0 / (f as f32).sqrt(), &mut rng);
            let g1 = (rng.tensor(&[h], 0.2) + 1.0).unwrap();
            let g2 = (rng.tensor(&[h], 0.2) + 1.0).unwrap();
            t.insert(format!("{p}.input_layernorm.weight"), g1);
            t.insert(format!("{p}.post_attention_layernorm.weight"), g2);
        }
        t
    }

    /// Writes a Hugging Face folder (single model.safetensors) and returns its path.
    pub fn write_folder(&self, dir: &Path) -> PathBuf {
        self.write_folder_with(dir, &self.tensors(), 1)
    }

    /// Writes `tensors` as a folder, split into `shards` files when more than one.
    pub fn write_folder_with(
        &self,
        dir: &Path,
        tensors: &HashMap<String, Tensor>,
        shards: usize,
    ) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        write_json(&dir.join("config.json"), &self.config());
        write_json(&dir.join("tokenizer.json"), &byte_tokenizer(self.vocab));
        write_json(
            &dir.join("tokenizer_config.json"),
            &json!({
                "bos_token": "<s>", "eos_token": "</s>",
                "chat_template": "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>"
            }),
        );
        if shards <= 1 {
            candle_core::safetensors::save(tensors, dir.join("model.safetensors")).unwrap();
        } else {
            let mut names: Vec<&String> = tensors.keys().collect();
            names.sort();
            let mut weight_map = serde_json::Map::new();
            for (i, chunk) in names.chunks(names.len().div_ceil(shards)).enumerate() {
                let file = format!("model-{:05}-of-{shards:05}.safetensors", i + 1);
                let part: HashMap<String, Tensor> = chunk
                    .iter()
                    .map(|n| ((*n).clone(), tensors[*n].clone()))
                    .collect();
                candle_core::safetensors::save(&part, dir.join(&file)).unwrap();
                for n in chunk {
                    weight_map.insert((*n).clone(), json!(file));
                }
            }
            write_json(
                &dir.join("model.safetensors.index.json"),
                &json!({"metadata": {}, "weight_map": weight_map}),
            );
        }
        dir.to_path_buf()
    }

    /// Each tensor's GGUF name by its Hugging Face name, as the model layout declares them.
    pub fn gguf_names(&self) -> HashMap<String, String> {
        let raw: normscope::model::config::HfConfig =
            serde_json::from_value(self.config()).unwrap();
        normscope::model::layout::tensors(&raw.resolve().unwrap())
            .into_iter()
            .map(|s| (s.hf_name, s.gguf_name))
            .collect()
    }

    /// Writes the same model as a llama.cpp-style GGUF: names mapped, q/k rows
    /// permuted for interleaved RoPE, tensors stored as `dtype`.
    pub fn write_gguf(&self, path: &Path, dtype: GgmlDType) {
        let tensors = self.tensors();
        let names = self.gguf_names();
        let mut q = Vec::new();
        for (name, t) in &tensors {
            let g = names[name].clone();
            let t = if name.ends_with("q_proj.weight") {
                permute_rows(t, self.heads).unwrap()
            } else if name.ends_with("k_proj.weight") {
                permute_rows(t, self.kv_heads).unwrap()
            } else {
                t.clone()
            };
            let dt = if t.rank() == 1 { GgmlDType::F32 } else { dtype };
            q.push((g, QTensor::quantize(&t, dt).unwrap()));
        }
        let vocab = byte_vocab(self.vocab);
        let md: Vec<(&str, Value)> = vec![
            ("general.architecture", Value::String("llama".into())),
            ("llama.embedding_length", Value::U32(self.hidden as u32)),
            ("llama.feed_forward_length", Value::U32(self.ffn as u32)),
            ("llama.block_count", Value::U32(self.layers as u32)),
            ("llama.attention.head_count", Value::U32(self.heads as u32)),
            (
                "llama.attention.head_count_kv",
                Value::U32(self.kv_heads as u32),
            ),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("llama.rope.freq_base", Value::F32(10000.0)),
            ("llama.context_length", Value::U32(128)),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("smollm".into())),
            (
                "tokenizer.ggml.tokens",
                Value::Array(vocab.iter().map(|t| Value::String(t.clone())).collect()),
            ),
            (
                "tokenizer.ggml.token_type",
                Value::Array(
                    (0..self.vocab)
                        .map(|i| Value::I32(if i < 3 { 3 } else { 1 }))
                        .collect(),
                ),
            ),
            ("tokenizer.ggml.merges", Value::Array(vec![])),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ];
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = q.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut f = std::fs::File::create(path).unwrap();
        candle_core::quantized::gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    }
}

/// Every file under `dir` with its bytes, by path relative to `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// GPT-2's byte-to-unicode table: the 256 byte tokens of a byte-level BPE.
fn byte_tokens() -> Vec<String> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut pairs: Vec<(u32, u32)> = bs.into_iter().zip(cs).collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(_, c)| char::from_u32(c).unwrap().to_string())
        .collect()
}

/// A vocabulary: 3 special tokens, the 256 bytes, then filler tokens up to `vocab`.
pub fn byte_vocab(vocab: usize) -> Vec<String> {
    let mut v: Vec<String> = ["<unk>", "<s>", "</s>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(byte_tokens());
    let mut i = 0;
    while v.len() < vocab {
        v.push(format!("<extra_{i}>"));
        i += 1;
    }
    v.truncate(vocab);
    v
}

/// A byte-level BPE tokenizer.json with no merges over [`byte_vocab`].
pub fn byte_tokenizer(vocab: usize) -> serde_json::Value {
    let tokens = byte_vocab(vocab);
    let map: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false,
                        "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": map, "merges": []}
    })
}

/// Loads a folder or GGUF on the CPU in f32.
pub fn load(path: &Path) -> normscope::weights::LoadedModel {
    normscope::weights::load(Some(path.to_str().unwrap()), &Device::Cpu, DType::F32).unwrap()
}

/// Loads a folder on the CPU in f32 with every weight a dense tensor, as
/// variants and fine-tuning need them.
pub fn load_dense(path: &Path) -> normscope::weights::LoadedModel {
    let opts = normscope::model::LoadOptions {
        training: true,
        ..normscope::model::LoadOptions::inference(DType::F32, &Device::Cpu)
    };
    let spec = path.to_str().unwrap();
    normscope::weights::load_with(Some(spec), &opts, normscope::weights::WeightCheck::Cheap)
        .unwrap()
}

/// Max |a - b| over all elements.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The shared reference folder (`../shared/refs` beside the repository).
pub fn refs_dir() -> PathBuf {
    let dir = match std::env::var_os("NORMSCOPE_REFS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/refs"),
    };
    assert!(
        dir.join("hf/p1.json").exists(),
        "reference figures missing at {}",
        dir.display()
    );
    dir
}

/// A reference JSON document under refs/.
pub fn read_ref(rel: &str) -> serde_json::Value {
    let p = refs_dir().join(rel);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// ids of a JSON array.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The binary under test.
pub fn normscope() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("normscope").unwrap()
}

/// `python3` that imports numpy and gguf (the independent references some
/// tests run): the system's when it has both, else with both installed once
/// by `pip install --target` under `target/python-refs` (nothing installed
/// outside the checkout, so a fresh clone's `cargo test` needs no setup).
pub fn python_with_numpy_gguf() -> Command {
    static EXTRA_PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    let imports = |path: Option<&Path>| {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", "import numpy, gguf"]);
        if let Some(p) = path {
            cmd.env("PYTHONPATH", p);
        }
        cmd.output().is_ok_and(|o| o.status.success())
    };
    let extra = EXTRA_PATH.get_or_init(|| {
        if imports(None) {
            return None;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-refs");
        if !imports(Some(&dir)) {
            let out = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg("--target")
                .arg(&dir)
                .args(["numpy", "gguf"])
                .output()
                .expect("python3 runs");
            assert!(
                out.status.success() && imports(Some(&dir)),
                "installing numpy and gguf into {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(dir)
    });
    let mut cmd = Command::new("python3");
    if let Some(dir) = extra {
        cmd.env("PYTHONPATH", dir);
    }
    cmd
}
