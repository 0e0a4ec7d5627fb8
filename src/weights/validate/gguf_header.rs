//! Our own walk over a GGUF header, before candle's reader sees the bytes:
//! magic and version, counts that fit in the file, every string and array
//! bounded by the bytes left, known value and tensor types, at most 4
//! dimensions with a product that does not overflow, rows a whole number of
//! quant blocks, a sane alignment, tensors aligned, in bounds and disjoint,
//! no duplicate keys or tensor names. Nothing is allocated from a count that
//! has not been checked against the bytes that remain.

use std::collections::HashSet;

use candle_core::quantized::GgmlDType;

use super::ggml_types::{byte_size, ggml_type};

/// Alignment of the tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value as far as validation needs it (arrays are summarized).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Any unsigned integer type, and its GGUF type id.
    Unsigned(u64, u32),
    /// Any signed integer type, and its GGUF type id.
    Signed(i64, u32),
    /// `f32` or `f64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string (lossily decoded).
    Str(String),
    /// An array: its element type id and length.
    Array(u32, u64),
}

/// One tensor of a validated GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    /// Its name.
    pub name: String,
    /// Its dimensions in ggml order (`ne[0]`, the row length, first).
    pub ne: Vec<usize>,
    /// Its storage type.
    pub dtype: GgmlDType,
    /// First byte of its data, from the start of the file.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
}

impl GgufTensor {
    /// The shape in row-major order (as candle reports it).
    pub fn shape(&self) -> Vec<usize> {
        self.ne.iter().rev().copied().collect()
    }
}

/// The validated layout of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufLayout {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, MetaValue)>,
    /// Tensors in file order.
    pub tensors: Vec<GgufTensor>,
    /// Alignment of the tensor data.
    pub alignment: u64,
}

impl GgufLayout {
    /// Metadata value `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Tensor `name`.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Fixed on-disk size of scalar value type `t` (`None` for strings, arrays and unknown ids).
fn scalar_size(t: u32) -> Option<usize> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// The message for a file that ends before what its header promises:
/// `file_len` bytes where at least `needed` (`None`: more than 2^64) are
/// declared, and the `detail` of which field ran out.
fn truncated(file_len: usize, needed: Option<u64>, detail: &str) -> String {
    let needed = needed.map_or("more than 2^64".to_string(), |n| n.to_string());
    format!(
        "truncated: the file is {file_len} bytes, its header needs at least {needed} ({detail})"
    )
}

const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

/// A bounds-checked little-endian cursor.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() as u64 {
            return Err(truncated(
                self.bytes.len(),
                (self.pos as u64).checked_add(n),
                &format!(
                    "{what}: {n} bytes at offset {} run past the end of the {}-byte file",
                    self.pos,
                    self.bytes.len()
                ),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    fn string(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = self.u64(what)?;
        if len > self.remaining() as u64 {
            return Err(truncated(
                self.bytes.len(),
                (self.pos as u64).checked_add(len),
                &format!(
                    "{what}: string length {len} exceeds the {} bytes left in the file",
                    self.remaining()
                ),
            ));
        }
        self.take(len, what)
    }

    /// A key or tensor name: UTF-8, trailing NULs dropped (as candle does), not empty.
    fn name(&mut self, what: &str) -> Result<String, String> {
        let raw = self.string(what)?;
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let s =
            std::str::from_utf8(&raw[..end]).map_err(|_| format!("{what} is not valid UTF-8"))?;
        if s.is_empty() {
            return Err(format!("{what} is empty"));
        }
        Ok(s.to_string())
    }
}

/// Walks the header of the GGUF file `bytes`.
pub fn check(bytes: &[u8]) -> Result<GgufLayout, String> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.take(4, "magic")?;
    if magic != b"GGUF" {
        return Err(format!(
            "bad magic {magic:02x?}: not a GGUF file (expected the bytes `GGUF`)"
        ));
    }
    let version = c.u32("version")?;
    if !(version == 2 || version == 3) {
        return Err(format!(
            "GGUF version {version} is not supported (expected 2 or 3)"
        ));
    }
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.u64("metadata count")?;
    // The smallest metadata entry is 13 bytes, the smallest tensor entry 25.
    let needed = n_kv
        .checked_mul(13)
        .and_then(|a| n_tensors.checked_mul(25).and_then(|b| a.checked_add(b)));
    if needed.is_none_or(|n| n > c.remaining() as u64) {
        return Err(truncated(
            bytes.len(),
            needed.and_then(|n| n.checked_add(c.pos as u64)),
            &format!(
                "header declares {n_tensors} tensors and {n_kv} metadata entries, which cannot fit in the {}-byte file",
                bytes.len()
            ),
        ));
    }
    let mut keys = HashSet::new();
    let mut metadata = Vec::new();
    for i in 0..n_kv {
        let key = c.name(&format!("metadata key #{i}"))?;
        if !keys.insert(key.clone()) {
            return Err(format!("duplicate metadata key `{key}`"));
        }
        let t = c.u32(&format!("type of `{key}`"))?;
        let value = value(&mut c, t, &key)?;
        metadata.push((key, value));
    }
    let alignment = alignment(&metadata)?;
    let mut names = HashSet::new();
    let mut infos = Vec::new();
    for i in 0..n_tensors {
        let name = c.name(&format!("tensor name #{i}"))?;
        if !names.insert(name.clone()) {
            return Err(format!("duplicate tensor name `{name}`"));
        }
        infos.push(tensor_info(&mut c, name)?);
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let mut tensors = Vec::new();
    for (name, ne, dtype, offset) in infos {
        tensors.push(place(
            name,
            ne,
            dtype,
            offset,
            data_start,
            alignment,
            bytes.len(),
        )?);
    }
    check_disjoint(&tensors)?;
    Ok(GgufLayout {
        version,
        metadata,
        tensors,
        alignment,
    })
}

fn value(c: &mut Cursor, t: u32, key: &str) -> Result<MetaValue, String> {
    if t == TYPE_STRING {
        let s = c.string(&format!("value of `{key}`"))?;
        return Ok(MetaValue::Str(String::from_utf8_lossy(s).into_owned()));
    }
    if t == TYPE_ARRAY {
        return array(c, key);
    }
    let size =
        scalar_size(t).ok_or_else(|| format!("metadata `{key}` has unknown value type {t}"))?;
    let raw = c.take(size as u64, &format!("value of `{key}`"))?;
    let mut buf = [0u8; 8];
    buf[..size].copy_from_slice(raw);
    let u = u64::from_le_bytes(buf);
    Ok(match t {
        0 | 2 | 4 | 10 => MetaValue::Unsigned(u, t),
        1 => MetaValue::Signed(raw[0] as i8 as i64, t),
        3 => MetaValue::Signed(i16::from_le_bytes([raw[0], raw[1]]) as i64, t),
        5 => MetaValue::Signed(
            i32::from_le_bytes(buf[..4].try_into().expect("4")) as i64,
            t,
        ),
        11 => MetaValue::Signed(u as i64, t),
        6 => MetaValue::Float(f32::from_le_bytes(buf[..4].try_into().expect("4")) as f64),
        12 => MetaValue::Float(f64::from_bits(u)),
        _ => match raw[0] {
            0 => MetaValue::Bool(false),
            1 => MetaValue::Bool(true),
            b => {
                return Err(format!(
                    "metadata `{key}`: bool byte is {b}, expected 0 or 1"
                ))
            }
        },
    })
}

fn array(c: &mut Cursor, key: &str) -> Result<MetaValue, String> {
    let what = format!("array `{key}`");
    let t = c.u32(&what)?;
    let len = c.u64(&what)?;
    if t == TYPE_ARRAY {
        return Err(format!("{what}: arrays of arrays are not supported"));
    }
    let min = match t {
        TYPE_STRING => 8,
        _ => scalar_size(t).ok_or_else(|| format!("{what} has unknown element type {t}"))?,
    };
    let bytes = len.checked_mul(min as u64);
    if bytes.is_none_or(|b| b > c.remaining() as u64) {
        return Err(truncated(
            c.bytes.len(),
            bytes.and_then(|b| b.checked_add(c.pos as u64)),
            &format!(
                "{what} declares {len} elements, more than the {} bytes left in the file can hold",
                c.remaining()
            ),
        ));
    }
    match t {
        TYPE_STRING => {
            for i in 0..len {
                c.string(&format!("{what} element {i}"))?;
            }
        }
        7 => {
            if c.take(len, &what)?.iter().any(|&b| b > 1) {
                return Err(format!("{what} holds a bool byte other than 0 or 1"));
            }
        }
        _ => {
            c.take(len * min as u64, &what)?;
        }
    }
    Ok(MetaValue::Array(t, len))
}

fn alignment(metadata: &[(String, MetaValue)]) -> Result<u64, String> {
    match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some((_, MetaValue::Unsigned(a, 4))) if *a != 0 && a.is_multiple_of(8) => Ok(*a),
        Some((_, v)) => Err(format!(
            "general.alignment is {v:?}; expected a u32 that is a nonzero multiple of 8"
        )),
    }
}

type Info = (String, Vec<usize>, GgmlDType, u64);

fn tensor_info(c: &mut Cursor, name: String) -> Result<Info, String> {
    let what = format!("tensor `{name}`");
    let n_dims = c.u32(&what)?;
    if !(1..=4).contains(&n_dims) {
        return Err(format!("{what} has {n_dims} dimensions (expected 1 to 4)"));
    }
    let mut ne = Vec::new();
    for _ in 0..n_dims {
        let d = c.u64(&what)?;
        ne.push(usize::try_from(d).map_err(|_| format!("{what}: dimension {d} is too large"))?);
    }
    let t = c.u32(&what)?;
    let dtype =
        ggml_type(t).ok_or_else(|| format!("{what} has unknown or unsupported tensor type {t}"))?;
    let offset = c.u64(&what)?;
    Ok((name, ne, dtype, offset))
}

fn place(
    name: String,
    ne: Vec<usize>,
    dtype: GgmlDType,
    offset: u64,
    data_start: u64,
    alignment: u64,
    file_len: usize,
) -> Result<GgufTensor, String> {
    let what = format!("tensor `{name}`");
    let elems = ne
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&e| i64::try_from(e).is_ok())
        .ok_or_else(|| format!("{what}: dimensions {ne:?} overflow"))?;
    let size = byte_size(dtype, ne[0], elems).map_err(|e| format!("{what}: {e}"))?;
    if !offset.is_multiple_of(alignment) {
        return Err(format!(
            "{what}: data offset {offset} is not aligned to {alignment} bytes"
        ));
    }
    let start = data_start.checked_add(offset);
    let end = start.and_then(|s| s.checked_add(size as u64));
    match (start, end) {
        (Some(s), Some(e)) if e <= file_len as u64 => Ok(GgufTensor {
            name,
            ne,
            dtype,
            start: s as usize,
            end: e as usize,
        }),
        _ => Err(truncated(
            file_len,
            end,
            &format!(
                "{what}: {size} bytes at data offset {offset} run past the end of the {file_len}-byte file"
            ),
        )),
    }
}

fn check_disjoint(tensors: &[GgufTensor]) -> Result<(), String> {
    let mut order: Vec<&GgufTensor> = tensors.iter().collect();
    order.sort_by_key(|t| (t.start, t.end));
    for pair in order.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(format!(
                "tensor `{}` overlaps tensor `{}`",
                pair[1].name, pair[0].name
            ));
        }
    }
    Ok(())
}
