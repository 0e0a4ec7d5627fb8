//! Writing a GGUF file as llama.cpp's quantizer does: version 3, metadata in
//! order (copied entries keep their exact bytes), tensor infos, then each
//! tensor's data padded to the alignment, streamed one tensor at a time.
//!
//! candle's `gguf_file::write` is not used: it writes version 2, always
//! aligns to 32 bytes whatever `general.alignment` says, needs every tensor
//! in memory at once, and its `Value` loses an empty array's element type and
//! (through `Content`) the order of the metadata.

use std::io::Write;

use candle_core::quantized::GgmlDType;

use super::target::ggml_id;
use crate::weights::validate::ggml_types::byte_size;

/// GGUF metadata value type ids.
const U32: u32 = 4;
const I32: u32 = 5;
const F32: u32 = 6;
const BOOL: u32 = 7;
const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// One metadata entry: its key and the bytes after the key (type id and value).
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// Value type id followed by the encoded value.
    pub value: Vec<u8>,
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Kv {
    fn new(key: &str, ty: u32, payload: &[u8]) -> Self {
        let mut value = ty.to_le_bytes().to_vec();
        value.extend_from_slice(payload);
        Self {
            key: key.to_string(),
            value,
        }
    }

    /// A `u32` value.
    pub fn u32(key: &str, v: u32) -> Self {
        Self::new(key, U32, &v.to_le_bytes())
    }

    /// An `f32` value.
    pub fn f32(key: &str, v: f32) -> Self {
        Self::new(key, F32, &v.to_le_bytes())
    }

    /// A bool value.
    pub fn bool(key: &str, v: bool) -> Self {
        Self::new(key, BOOL, &[v as u8])
    }

    /// A string value.
    pub fn str(key: &str, v: &str) -> Self {
        let mut p = Vec::new();
        gguf_string(&mut p, v);
        Self::new(key, STRING, &p)
    }

    /// An array of strings.
    pub fn strings(key: &str, vs: &[String]) -> Self {
        let mut p = STRING.to_le_bytes().to_vec();
        p.extend_from_slice(&(vs.len() as u64).to_le_bytes());
        for v in vs {
            gguf_string(&mut p, v);
        }
        Self::new(key, ARRAY, &p)
    }

    /// An array of `f32`.
    pub fn f32s(key: &str, vs: &[f32]) -> Self {
        let mut p = F32.to_le_bytes().to_vec();
        p.extend_from_slice(&(vs.len() as u64).to_le_bytes());
        for v in vs {
            p.extend_from_slice(&v.to_le_bytes());
        }
        Self::new(key, ARRAY, &p)
    }

    /// An array of `i32`.
    pub fn i32s(key: &str, vs: &[i32]) -> Self {
        let mut p = I32.to_le_bytes().to_vec();
        p.extend_from_slice(&(vs.len() as u64).to_le_bytes());
        for v in vs {
            p.extend_from_slice(&v.to_le_bytes());
        }
        Self::new(key, ARRAY, &p)
    }
}

/// Sets `key` the way gguf's `gguf_set_val_*` does: any earlier entry is
/// removed and the new one goes last.
pub fn set(kvs: &mut Vec<Kv>, kv: Kv) {
    kvs.retain(|k| k.key != kv.key);
    kvs.push(kv);
}

/// Fixed size of a scalar value type (`None` for strings and arrays).
fn scalar_size(t: u32) -> Option<usize> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// A bounds-checked reader over the bytes of a GGUF header.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "metadata runs past the end of the file at offset {}",
                    self.pos
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u64()?;
        self.take(n)
    }

    fn skip_value(&mut self, t: u32) -> Result<(), String> {
        match t {
            STRING => {
                self.string()?;
            }
            ARRAY => {
                let et = self.u32()?;
                let n = self.u64()?;
                match (et, scalar_size(et)) {
                    (STRING, _) => (0..n).try_for_each(|_| self.string().map(|_| ()))?,
                    (_, Some(size)) => {
                        let total = n.checked_mul(size as u64).ok_or("array too large")?;
                        self.take(total)?;
                    }
                    _ => return Err(format!("array of unsupported element type {et}")),
                }
            }
            t => {
                let size = scalar_size(t).ok_or(format!("unknown value type {t}"))?;
                self.take(size as u64)?;
            }
        }
        Ok(())
    }
}

/// The metadata entries of a GGUF file, in order, with their exact bytes
/// (the header must already have passed the validator).
pub fn read_kvs(bytes: &[u8]) -> Result<Vec<Kv>, String> {
    let mut r = Reader { bytes, pos: 0 };
    r.take(8)?; // magic, version
    r.u64()?; // tensor count
    let n_kv = r.u64()?;
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let raw = r.string()?;
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let key = String::from_utf8_lossy(&raw[..end]).into_owned();
        let start = r.pos;
        let t = r.u32()?;
        r.skip_value(t)?;
        kvs.push(Kv {
            key,
            value: bytes[start..r.pos].to_vec(),
        });
    }
    Ok(kvs)
}

/// One tensor as it will be written.
#[derive(Debug, Clone)]
pub struct TensorOut {
    /// GGUF name.
    pub name: String,
    /// Dimensions in ggml order.
    pub ne: Vec<usize>,
    /// Storage type.
    pub dtype: GgmlDType,
}

impl TensorOut {
    /// Bytes of its data.
    pub fn size(&self) -> Result<usize, String> {
        let elems = self
            .ne
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("tensor `{}`: dimensions overflow", self.name))?;
        byte_size(self.dtype, self.ne[0], elems).map_err(|e| format!("tensor `{}`: {e}", self.name))
    }
}

/// Writes the header (metadata, tensor infos, padding) and returns each
/// tensor's size; the data must then follow through [`write_data`] in order.
pub fn write_header(
    w: &mut impl Write,
    kvs: &[Kv],
    tensors: &[TensorOut],
    alignment: u64,
) -> std::io::Result<Vec<usize>> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let mut head = Vec::new();
    head.extend_from_slice(b"GGUF");
    head.extend_from_slice(&3u32.to_le_bytes());
    head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    head.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for kv in kvs {
        gguf_string(&mut head, &kv.key);
        head.extend_from_slice(&kv.value);
    }
    let mut sizes = Vec::with_capacity(tensors.len());
    let mut offset = 0u64;
    for t in tensors {
        let size = t.size().map_err(invalid)?;
        gguf_string(&mut head, &t.name);
        head.extend_from_slice(&(t.ne.len() as u32).to_le_bytes());
        for &d in &t.ne {
            head.extend_from_slice(&(d as u64).to_le_bytes());
        }
        head.extend_from_slice(&ggml_id(t.dtype).to_le_bytes());
        head.extend_from_slice(&offset.to_le_bytes());
        offset += (size as u64).div_ceil(alignment) * alignment;
        sizes.push(size);
    }
    head.resize(
        (head.len() as u64).div_ceil(alignment) as usize * alignment as usize,
        0,
    );
    w.write_all(&head)?;
    Ok(sizes)
}

/// Writes one tensor's data and the padding after it.
pub fn write_data(w: &mut impl Write, data: &[u8], alignment: u64) -> std::io::Result<()> {
    w.write_all(data)?;
    let pad = (data.len() as u64).div_ceil(alignment) * alignment - data.len() as u64;
    w.write_all(&vec![0u8; pad as usize])
}
