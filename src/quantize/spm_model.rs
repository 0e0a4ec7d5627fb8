//! A SentencePiece `tokenizer.model` (a protobuf `ModelProto`) read into the
//! vocabulary llama.cpp's converter writes for it: each piece's text, score
//! and type, by id. Only the fields the GGUF needs are read; every other
//! field is skipped by its wire type, and a truncated or malformed file is an
//! error, never a panic.

/// One piece of the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Its text (`▁` for spaces, `<0x0A>` for byte pieces).
    pub text: String,
    /// Its score (log probability for unigram models, merge rank for BPE).
    pub score: f32,
    /// SentencePiece's type, the numbering llama.cpp's token types share:
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub kind: i32,
}

/// The pieces of the `ModelProto` in `bytes`, in id order.
pub fn pieces(bytes: &[u8]) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    for field in Fields(bytes) {
        let (number, value) = field?;
        if let (1, Value::Bytes(b)) = (number, value) {
            out.push(piece(b)?);
        }
    }
    if out.is_empty() {
        return Err("holds no vocabulary pieces".into());
    }
    Ok(out)
}

fn piece(bytes: &[u8]) -> Result<Piece, String> {
    let mut p = Piece {
        text: String::new(),
        score: 0.0,
        kind: 1,
    };
    for field in Fields(bytes) {
        match field? {
            (1, Value::Bytes(b)) => {
                p.text = String::from_utf8(b.to_vec()).map_err(|_| "a piece is not UTF-8")?
            }
            (2, Value::Fixed32(bits)) => p.score = f32::from_bits(bits),
            (3, Value::Varint(v)) => p.kind = v as i32,
            _ => {}
        }
    }
    Ok(p)
}

/// A field's value by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The `(field number, value)` pairs of a protobuf message.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or("is truncated")?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("holds a varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), String> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "is truncated")?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            }
            t => {
                return Err(format!(
                    "uses protobuf wire type {t}, which a ModelProto does not"
                ))
            }
        };
        Ok((key >> 3, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, payload) in fields {
            out.push((number << 3 | 2) as u8);
            out.push(payload.len() as u8);
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn pieces_are_read_with_scores_and_types_and_other_fields_skipped() {
        let mut unk = message(&[(1, b"<unk>")]);
        unk.extend([3 << 3, 2]); // type UNKNOWN
        let mut word = message(&[(1, "▁the".as_bytes())]);
        word.push(2 << 3 | 5);
        word.extend((-1.5f32).to_le_bytes());
        let mut model = message(&[(1, &unk), (1, &word), (2, b"\x08\x02")]);
        model.extend([4 << 3, 0x96, 0x01]); // an unknown varint field
        let p = pieces(&model).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].text.as_str(), p[0].kind), ("<unk>", 2));
        assert_eq!(
            (p[1].text.as_str(), p[1].score, p[1].kind),
            ("▁the", -1.5, 1)
        );
        assert!(pieces(&model[..model.len() - 5]).is_err());
        assert!(pieces(&[]).is_err());
    }
}
