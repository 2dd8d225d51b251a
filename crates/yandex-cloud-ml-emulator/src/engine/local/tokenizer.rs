//! The GGUF's own tokenizer behind the emulator's [`Tokenizer`] trait, so `Tokenize`,
//! `TokenizeCompletion`, usage counts and the context check all count real tokens.

use tokenizers::Tokenizer as Hf;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::chat;
use crate::engine::Tokenizer;

/// Byte-level BPE with the model's special tokens and chat template.
pub(crate) struct GgufTokenizer {
    pub hf: Hf,
    /// The bytes of every token (special tokens start with 0xFF), as llguidance reads them.
    pub bytes: Vec<Vec<u8>>,
    default_system: Option<String>,
    bos: Option<u32>,
}

/// Marks special tokens in [`GgufTokenizer::bytes`].
pub(crate) const SPECIAL: u8 = 0xFF;

impl GgufTokenizer {
    pub(crate) fn new(hf: Hf, default_system: Option<String>, bos: Option<u32>) -> Result<GgufTokenizer, String> {
        let json = serde_json::to_value(&hf).map_err(|e| format!("cannot describe the tokenizer: {e}"))?;
        let bytes = llguidance::token_bytes_from_tokenizer_json(&json)
            .map_err(|e| format!("cannot read the tokenizer's token bytes: {e}"))?;
        Ok(GgufTokenizer { hf, bytes, default_system, bos })
    }

    pub(crate) fn default_system(&self) -> Option<&str> {
        self.default_system.as_deref()
    }

    /// Token ids of text (special tokens written in it are recognized).
    pub(crate) fn ids(&self, text: &str) -> Vec<u32> {
        self.hf.encode_fast(text, false).map(|e| e.get_ids().to_vec()).unwrap_or_default()
    }

    /// Token ids of a whole prompt: the BOS token first if the model wants one.
    pub(crate) fn prompt_ids(&self, text: &str) -> Vec<u32> {
        self.bos.into_iter().chain(self.ids(text)).collect()
    }

    fn token(&self, id: u32) -> pb::Token {
        let raw = self.bytes.get(id as usize).map(Vec::as_slice).unwrap_or_default();
        let special = raw.first() == Some(&SPECIAL);
        let text = if special {
            String::from_utf8_lossy(&raw[1..]).into_owned()
        } else {
            String::from_utf8_lossy(raw).into_owned()
        };
        pb::Token { id: i64::from(id), text, special }
    }
}

/// Turns token bytes into text pieces: a character split over tokens comes out whole with the
/// token that completes it (the tokens before give empty pieces).
#[derive(Debug, Default)]
pub(crate) struct Utf8Pieces {
    pending: Vec<u8>,
}

impl Utf8Pieces {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete character at the end waits for its next bytes; a broken one is
            // replaced rather than held forever.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid);
        let piece = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        piece
    }
}

impl Tokenizer for GgufTokenizer {
    fn tokenize(&self, text: &str) -> Vec<pb::Token> {
        self.ids(text).into_iter().map(|id| self.token(id)).collect()
    }

    fn tokenize_chat(&self, messages: &[pb::Message]) -> Vec<pb::Token> {
        let rendered = chat::render(messages, self.default_system(), &[], true);
        self.prompt_ids(&rendered).into_iter().map(|id| self.token(id)).collect()
    }

    fn detokenize(&self, tokens: &[pb::Token]) -> String {
        let ids: Vec<u32> = tokens.iter().filter_map(|t| u32::try_from(t.id).ok()).collect();
        self.hf.decode(&ids, true).unwrap_or_default()
    }

    /// The BOS token if the GGUF says `add_bos_token` (SmolLM2 does not).
    fn text_prefix(&self) -> Vec<pb::Token> {
        self.bos.map(|id| self.token(id)).into_iter().collect()
    }

    fn pieces(&self, text: &str) -> Vec<String> {
        let mut utf8 = Utf8Pieces::default();
        self.ids(text).into_iter().map(|id| utf8.push(self.bytes.get(id as usize).map_or(&[][..], |b| b))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_over_tokens_comes_out_whole() {
        let mut utf8 = Utf8Pieces::default();
        let bytes = "П".as_bytes();
        assert_eq!(utf8.push(&bytes[..1]), "");
        assert_eq!(utf8.push(&bytes[1..]), "П");
        assert_eq!(utf8.push(b"ok"), "ok");
    }
}
