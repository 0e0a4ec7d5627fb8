//! Streaming detokenization: the text of each new token, as the tokenizer
//! decodes the whole generation so far.
//!
//! tokenizers' `DecodeStream` decodes a sliding window of ids and fails when
//! the window starts inside a byte-fallback UTF-8 sequence (a random or
//! confused model can emit lone bytes), so this decodes every generated id
//! each step instead: the emitted text is always a prefix of the decoded
//! text, and a step whose text ends in an incomplete character waits.

use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// The text generated so far, handed out piece by piece.
pub struct TextStream<'a> {
    tokenizer: &'a Tokenizer,
    ids: Vec<u32>,
    emitted: String,
}

impl<'a> TextStream<'a> {
    /// An empty stream over `tokenizer`.
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Self {
            tokenizer,
            ids: Vec::new(),
            emitted: String::new(),
        }
    }

    /// Adds token `id`; returns the text it completes, if any.
    pub fn step(&mut self, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let text = self
            .tokenizer
            .decode(&self.ids, false)
            .map_err(|e| Error::usage(format!("cannot decode token {id}: {e}")))?;
        if text.ends_with('\u{FFFD}') {
            return Ok(None);
        }
        let Some(new) = text.strip_prefix(self.emitted.as_str()) else {
            // Earlier bytes now decode differently; what was shown stands.
            return Ok(None);
        };
        if new.is_empty() {
            return Ok(None);
        }
        let new = new.to_string();
        self.emitted = text;
        Ok(Some(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn pieces_concatenate_to_the_decoded_text_and_wait_for_whole_characters() {
        // Byte-level BPE over single bytes: "é" is two tokens.
        let vocab: serde_json::Map<String, serde_json::Value> = (0..=255u8)
            .map(|b| (format!("<0x{b:02X}>"), serde_json::json!(b)))
            .collect();
        let json = serde_json::json!({
            "version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
            "post_processor": null,
            "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
            "model": {"type": "BPE", "vocab": vocab, "merges": [], "byte_fallback": true}
        });
        let tok = Tokenizer::from_str(&json.to_string()).unwrap();
        let mut s = TextStream::new(&tok);
        let pieces: Vec<Option<String>> = "aé b"
            .bytes()
            .chain([0xE3])
            .map(|b| s.step(b as u32).unwrap())
            .collect();
        assert_eq!(
            pieces,
            [
                Some("a".into()),
                None,
                Some("é".into()),
                Some(" ".into()),
                Some("b".into()),
                None
            ]
        );
    }
}
