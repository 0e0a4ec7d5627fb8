//! A safetensors file checked before anything trusts it: the header length, the
//! JSON, the dtypes, and a byte range for every tensor that is exactly its
//! shape times its dtype size, with ranges in order, touching, and covering the
//! data to the last byte.

use serde_json::Value;

use super::json::parse_strict;

/// Largest header accepted (the safetensors reference reader's limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor of a validated file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    /// Its name.
    pub name: String,
    /// Its safetensors dtype (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// First byte of its data, from the start of the file.
    pub start: usize,
    /// One past its last byte, from the start of the file.
    pub end: usize,
}

/// The validated header of a safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetensorsHeader {
    /// Tensors in data order.
    pub tensors: Vec<TensorEntry>,
}

/// The size in bytes of one element of safetensors dtype `dtype`.
pub fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

/// Checks the whole file `bytes`; the error says what is wrong and where.
pub fn check(bytes: &[u8]) -> Result<SafetensorsHeader, String> {
    let Some(prefix) = bytes.get(..8) else {
        return Err(format!(
            "not a safetensors file: {} bytes, too short for the 8-byte header length",
            bytes.len()
        ));
    };
    let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    if n > MAX_HEADER_BYTES {
        return Err(format!(
            "safetensors header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit"
        ));
    }
    let file_len = bytes.len() as u64;
    if 8 + n > file_len {
        return Err(format!(
            "safetensors header length {n} runs past the end of the {file_len}-byte file"
        ));
    }
    let data_start = 8 + n as usize;
    let json =
        parse_strict(&bytes[8..data_start]).map_err(|e| format!("safetensors header is {e}"))?;
    let Value::Object(map) = json else {
        return Err("safetensors header is not a JSON object".into());
    };
    let mut tensors = Vec::new();
    for (name, v) in &map {
        if name == "__metadata__" {
            check_metadata(v)?;
            continue;
        }
        tensors.push(entry(name, v, data_start)?);
    }
    tensors.sort_by_key(|t| (t.start, t.end));
    check_layout(&tensors, data_start, bytes.len())?;
    Ok(SafetensorsHeader { tensors })
}

fn check_metadata(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(m) if m.values().all(Value::is_string) => Ok(()),
        _ => Err("safetensors `__metadata__` is not an object of strings".into()),
    }
}

/// One header entry, its offsets made absolute.
fn entry(name: &str, v: &Value, data_start: usize) -> Result<TensorEntry, String> {
    let at = |msg: String| format!("tensor `{name}`: {msg}");
    let obj = v
        .as_object()
        .ok_or_else(|| at("header entry is not an object".into()))?;
    let dtype = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| at("no `dtype` string".into()))?;
    let size = dtype_size(dtype).ok_or_else(|| {
        at(format!(
            "unknown dtype `{dtype}` (expected one of BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64)"
        ))
    })?;
    let shape = numbers(obj.get("shape"))
        .ok_or_else(|| at("`shape` is not a list of non-negative integers".into()))?;
    let offsets = numbers(obj.get("data_offsets"))
        .filter(|o| o.len() == 2)
        .ok_or_else(|| at("`data_offsets` is not a pair of non-negative integers".into()))?;
    let (begin, end) = (offsets[0], offsets[1]);
    if begin > end {
        return Err(at(format!(
            "data_offsets [{begin}, {end}] are out of order"
        )));
    }
    let elems = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| at(format!("shape {shape:?} overflows")))?;
    let expected = elems
        .checked_mul(size)
        .ok_or_else(|| at(format!("shape {shape:?} of {dtype} overflows")))?;
    if end - begin != expected {
        return Err(at(format!(
            "data_offsets [{begin}, {end}] hold {} bytes; shape {shape:?} of {dtype} needs {expected}",
            end - begin
        )));
    }
    let abs = |o: usize| {
        o.checked_add(data_start)
            .ok_or_else(|| at(format!("data offset {o} overflows")))
    };
    Ok(TensorEntry {
        name: name.to_string(),
        dtype: dtype.to_string(),
        start: abs(begin)?,
        end: abs(end)?,
        shape,
    })
}

fn numbers(v: Option<&Value>) -> Option<Vec<usize>> {
    v?.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|n| usize::try_from(n).ok()))
        .collect()
}

/// Sorted ranges must start at the data, touch each other and end at the file's end.
fn check_layout(tensors: &[TensorEntry], data_start: usize, file_len: usize) -> Result<(), String> {
    let mut pos = data_start;
    let mut prev: Option<&str> = None;
    for t in tensors {
        let rel = |o: usize| o - data_start;
        if t.start < pos {
            return Err(format!(
                "tensor `{}` (bytes {}..{}) overlaps tensor `{}`",
                t.name,
                rel(t.start),
                rel(t.end),
                prev.unwrap_or("?")
            ));
        }
        if t.start > pos {
            return Err(format!(
                "gap of {} bytes before tensor `{}` (data_offsets must be contiguous)",
                t.start - pos,
                t.name
            ));
        }
        if t.end > file_len {
            return Err(format!(
                "tensor `{}` ends at byte {} of the data, past the end of the file ({} data bytes)",
                t.name,
                rel(t.end),
                file_len - data_start
            ));
        }
        pos = t.end;
        prev = Some(&t.name);
    }
    if pos != file_len {
        return Err(format!(
            "{} trailing bytes after the last tensor (the file has {file_len} bytes, the header accounts for {pos})",
            file_len - pos
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend(std::iter::repeat_n(0u8, data));
        b
    }

    #[test]
    fn good_file_passes_and_lies_are_caught() {
        let ok = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}"#;
        let h = check(&file(ok, 11)).unwrap();
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(h.tensors[1].name, "b");
        assert_eq!(h.tensors[1].start, 8 + ok.len() + 8);
        let err = |s: &str, n: usize| check(&file(s, n)).unwrap_err();
        assert!(err(ok, 12).contains("trailing"));
        assert!(err(ok, 10).contains("past the end"));
        let gap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[3],"data_offsets":[9,12]}}"#;
        assert!(err(gap, 12).contains("gap"));
        let overlap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[3],"data_offsets":[5,8]}}"#;
        assert!(err(overlap, 8).contains("overlaps"));
        let big = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
        assert!(err(big, 8).contains("overflows"));
        let dtype = r#"{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}"#;
        assert!(err(dtype, 8).contains("unknown dtype `F7`"));
        let dup = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        assert!(err(dup, 8).contains("duplicate key `a`"));
        assert!(check(&[1, 2, 3]).unwrap_err().contains("too short"));
        let mut huge = file(ok, 11);
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(check(&huge).unwrap_err().contains("limit"));
    }
}
