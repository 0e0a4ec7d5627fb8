//! Byte-level writers for the malformed-input table: a safetensors file and a
//! GGUF file whose every header field the test controls, so each case can lie
//! in exactly one place.

use std::collections::BTreeMap;

use candle_core::Tensor;
use serde_json::{json, Value};

use crate::common::{byte_vocab, Tiny};

/// A tensor's f32 data, little-endian.
fn f32_bytes(t: &Tensor) -> Vec<u8> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The Tiny model's tensors, sorted by name, as f32 bytes with their shapes.
pub fn tiny_tensors(tiny: &Tiny) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    tiny.tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dims().to_vec(), f32_bytes(&t))))
        .collect()
}

/// A safetensors header (as JSON) and data for `tensors`, laid out in name order.
pub fn safetensors_parts(tensors: &BTreeMap<String, (Vec<usize>, Vec<u8>)>) -> (Value, Vec<u8>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, (shape, bytes)) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    (Value::Object(header), data)
}

/// A safetensors file from a header text and data.
pub fn safetensors_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// GGUF metadata value type ids.
pub const U32: u32 = 4;
pub const I32: u32 = 5;
pub const F32: u32 = 6;
pub const STRING: u32 = 8;
pub const ARRAY: u32 = 9;

/// One GGUF tensor entry; `offset` overrides the computed one.
pub struct GgufTensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub ggml_type: u32,
    pub offset: Option<u64>,
    pub data: Vec<u8>,
}

/// Everything in a GGUF header, editable before writing.
pub struct Gguf {
    pub version: u32,
    pub kv: Vec<(String, u32, Vec<u8>)>,
    pub tensors: Vec<GgufTensor>,
    pub tensor_count: Option<u64>,
    pub kv_count: Option<u64>,
}

pub fn gguf_string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn u32v(x: u32) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

impl Gguf {
    /// The Tiny model as an f32 GGUF with llama metadata and a byte tokenizer.
    pub fn tiny(tiny: &Tiny) -> Self {
        let mut strings = Vec::new();
        let vocab = byte_vocab(tiny.vocab);
        strings.extend(u32v(STRING));
        strings.extend((vocab.len() as u64).to_le_bytes());
        for t in &vocab {
            strings.extend(gguf_string(t));
        }
        let mut types = u32v(I32);
        types.extend((vocab.len() as u64).to_le_bytes());
        for i in 0..vocab.len() {
            types.extend((if i < 3 { 3i32 } else { 1 }).to_le_bytes());
        }
        let mut merges = u32v(STRING);
        merges.extend(0u64.to_le_bytes());
        let kv = vec![
            ("general.architecture".into(), STRING, gguf_string("llama")),
            (
                "llama.embedding_length".into(),
                U32,
                u32v(tiny.hidden as u32),
            ),
            (
                "llama.feed_forward_length".into(),
                U32,
                u32v(tiny.ffn as u32),
            ),
            ("llama.block_count".into(), U32, u32v(tiny.layers as u32)),
            (
                "llama.attention.head_count".into(),
                U32,
                u32v(tiny.heads as u32),
            ),
            (
                "llama.attention.head_count_kv".into(),
                U32,
                u32v(tiny.kv_heads as u32),
            ),
            (
                "llama.attention.layer_norm_rms_epsilon".into(),
                F32,
                1e-5f32.to_le_bytes().to_vec(),
            ),
            (
                "llama.rope.freq_base".into(),
                F32,
                10000f32.to_le_bytes().to_vec(),
            ),
            ("llama.context_length".into(), U32, u32v(128)),
            ("tokenizer.ggml.model".into(), STRING, gguf_string("gpt2")),
            ("tokenizer.ggml.pre".into(), STRING, gguf_string("smollm")),
            ("tokenizer.ggml.tokens".into(), ARRAY, strings),
            ("tokenizer.ggml.token_type".into(), ARRAY, types),
            ("tokenizer.ggml.merges".into(), ARRAY, merges),
            ("tokenizer.ggml.bos_token_id".into(), U32, u32v(1)),
            ("tokenizer.ggml.eos_token_id".into(), U32, u32v(2)),
        ];
        let names = tiny.gguf_names();
        let tensors = tiny_tensors(tiny)
            .into_iter()
            .map(|(name, (shape, data))| GgufTensor {
                name: names[&name].clone(),
                ne: shape.iter().rev().map(|&d| d as u64).collect(),
                ggml_type: 0,
                offset: None,
                data,
            })
            .collect();
        Self {
            version: 3,
            kv,
            tensors,
            tensor_count: None,
            kv_count: None,
        }
    }

    /// A GGUF file's header and tensors (version 3, default alignment), for
    /// editing a real file into a malformed one.
    pub fn read(bytes: &[u8]) -> Self {
        struct Cursor<'a>(&'a [u8], usize);
        impl Cursor<'_> {
            fn take(&mut self, n: usize) -> &[u8] {
                self.1 += n;
                &self.0[self.1 - n..self.1]
            }
            fn u32(&mut self) -> u32 {
                u32::from_le_bytes(self.take(4).try_into().unwrap())
            }
            fn u64(&mut self) -> u64 {
                u64::from_le_bytes(self.take(8).try_into().unwrap())
            }
            fn string(&mut self) -> String {
                let n = self.u64() as usize;
                String::from_utf8(self.take(n).to_vec()).unwrap()
            }
            /// Skips one value of type `ty`.
            fn skip(&mut self, ty: u32) {
                const FIXED: [usize; 13] = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
                match ty {
                    STRING => {
                        self.string();
                    }
                    ARRAY => {
                        let inner = self.u32();
                        for _ in 0..self.u64() {
                            self.skip(inner);
                        }
                    }
                    t => self.1 += FIXED[t as usize],
                }
            }
        }
        let mut c = Cursor(bytes, 4);
        let version = c.u32();
        let (n_tensors, n_kv) = (c.u64(), c.u64());
        let mut kv = Vec::new();
        for _ in 0..n_kv {
            let key = c.string();
            let ty = c.u32();
            let from = c.1;
            c.skip(ty);
            kv.push((key, ty, bytes[from..c.1].to_vec()));
        }
        let mut infos = Vec::new();
        for _ in 0..n_tensors {
            let name = c.string();
            let dims = c.u32();
            let ne: Vec<u64> = (0..dims).map(|_| c.u64()).collect();
            let ggml_type = c.u32();
            infos.push((name, ne, ggml_type, c.u64()));
        }
        let data_start = c.1.div_ceil(32) * 32;
        let tensors = infos
            .into_iter()
            .map(|(name, ne, ggml_type, offset)| {
                // F32 tensors only (the family fixtures): 4 bytes an element.
                assert_eq!(ggml_type, 0, "{name}: Gguf::read reads F32 files");
                let len = ne.iter().product::<u64>() as usize * 4;
                let start = data_start + offset as usize;
                GgufTensor {
                    name,
                    ne,
                    ggml_type,
                    offset: None,
                    data: bytes[start..start + len].to_vec(),
                }
            })
            .collect();
        Self {
            version,
            kv,
            tensors,
            tensor_count: None,
            kv_count: None,
        }
    }

    /// Drops tensor `name`.
    pub fn remove(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name);
    }

    /// Sets (or adds) metadata `key`.
    pub fn set(&mut self, key: &str, ty: u32, payload: Vec<u8>) {
        match self.kv.iter_mut().find(|(k, _, _)| k == key) {
            Some(e) => *e = (key.into(), ty, payload),
            None => self.kv.push((key.into(), ty, payload)),
        }
    }

    /// The tensor named `name`.
    pub fn tensor(&mut self, name: &str) -> &mut GgufTensor {
        self.tensors.iter_mut().find(|t| t.name == name).unwrap()
    }

    /// The file's bytes (data aligned to 32 bytes).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(u32v(self.version));
        out.extend(
            self.tensor_count
                .unwrap_or(self.tensors.len() as u64)
                .to_le_bytes(),
        );
        out.extend(self.kv_count.unwrap_or(self.kv.len() as u64).to_le_bytes());
        for (k, ty, payload) in &self.kv {
            out.extend(gguf_string(k));
            out.extend(u32v(*ty));
            out.extend(payload);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            out.extend(gguf_string(&t.name));
            out.extend(u32v(t.ne.len() as u32));
            for d in &t.ne {
                out.extend(d.to_le_bytes());
            }
            out.extend(u32v(t.ggml_type));
            out.extend(t.offset.unwrap_or(offset).to_le_bytes());
            offsets.push(offset);
            offset += (t.data.len() as u64).div_ceil(32) * 32;
        }
        out.resize(out.len().div_ceil(32) * 32, 0);
        for t in &self.tensors {
            out.extend(&t.data);
            out.resize(out.len().div_ceil(32) * 32, 0);
        }
        out
    }
}
