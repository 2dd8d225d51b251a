//! The emulator's tokenizer: deterministic, SentencePiece-flavoured (`▁` marks a preceding
//! space), about four characters per token. It is used both by `TokenizerService` and for the
//! usage counts of completions, so the two always agree.

use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::Tokenizer;

/// The synthetic model's tokenizer (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyntheticTokenizer;

impl Tokenizer for SyntheticTokenizer {
    fn tokenize(&self, text: &str) -> Vec<pb::Token> {
        tokenize(text)
    }

    fn tokenize_chat(&self, messages: &[pb::Message]) -> Vec<pb::Token> {
        tokenize_chat(messages)
    }

    fn detokenize(&self, tokens: &[pb::Token]) -> String {
        detokenize(tokens)
    }
}

/// Longest piece of a word before it is split into several tokens.
const MAX_PIECE_CHARS: usize = 5;
const FIRST_ORDINARY_ID: u64 = 1000;
const VOCABULARY: u64 = 120_000;

/// Special tokens of the chat template, with the ids the real tokenizer uses.
pub(crate) const BOS: (&str, i64) = ("<s>", 1);
pub(crate) const NL: (&str, i64) = ("[NL]", 3);
pub(crate) const SEP: (&str, i64) = ("[SEP]", 4);

fn special(t: (&str, i64)) -> pb::Token {
    pb::Token { id: t.1, text: t.0.to_owned(), special: true }
}

fn ordinary(piece: String) -> pb::Token {
    // FNV-1a: stable across runs and platforms.
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in piece.as_bytes() {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    pb::Token { id: (FIRST_ORDINARY_ID + hash % VOCABULARY) as i64, text: piece, special: false }
}

/// Splits text into tokens; [`detokenize`] restores the exact text.
pub(crate) fn tokenize(text: &str) -> Vec<pb::Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            if pending_space {
                tokens.push(ordinary("▁".into()));
                pending_space = false;
            }
            tokens.push(special(NL));
        } else if c == ' ' {
            if pending_space {
                tokens.push(ordinary("▁".into()));
            }
            pending_space = true;
        } else if c.is_alphanumeric() {
            let mut word = String::from(c);
            while let Some(&n) = chars.peek() {
                if !n.is_alphanumeric() {
                    break;
                }
                word.push(n);
                chars.next();
            }
            let letters: Vec<char> = word.chars().collect();
            for (i, piece) in letters.chunks(MAX_PIECE_CHARS).enumerate() {
                let mut text = String::new();
                if i == 0 && pending_space {
                    text.push('▁');
                }
                text.extend(piece);
                tokens.push(ordinary(text));
            }
            pending_space = false;
        } else {
            let mut text = String::new();
            if pending_space {
                text.push('▁');
                pending_space = false;
            }
            text.push(c);
            tokens.push(ordinary(text));
        }
    }
    if pending_space {
        tokens.push(ordinary("▁".into()));
    }
    tokens
}

/// Joins tokens back into text (`▁` → space, `[NL]` → newline, other specials dropped).
pub(crate) fn detokenize(tokens: &[pb::Token]) -> String {
    let mut out = String::new();
    for t in tokens {
        if t.special {
            if t.id == NL.1 {
                out.push('\n');
            }
        } else {
            out.push_str(&t.text.replace('▁', " "));
        }
    }
    out
}

/// Tokens of a whole chat as the model sees it: `<s>`, then per message `▁<role>` `:`
/// text `[NL]`, then the assistant turn `▁assistant` `:` `[SEP]`.
pub(crate) fn tokenize_chat(messages: &[pb::Message]) -> Vec<pb::Token> {
    let mut tokens = vec![special(BOS)];
    for m in messages {
        tokens.extend(tokenize(&format!(" {}:", m.role)));
        tokens.extend(tokenize(&message_text(m)));
        tokens.push(special(NL));
    }
    tokens.extend(tokenize(" assistant:"));
    tokens.push(special(SEP));
    tokens
}

/// The text a message contributes to the prompt (tool calls and results as JSON-ish text).
pub(crate) fn message_text(m: &pb::Message) -> String {
    use pb::message::Content;
    match &m.content {
        Some(Content::Text(t)) => t.clone(),
        Some(Content::ToolCallList(list)) => list
            .tool_calls
            .iter()
            .filter_map(|c| {
                c.tool_call_type.as_ref().map(|pb::tool_call::ToolCallType::FunctionCall(f)| {
                    format!(
                        "{}({})",
                        f.name,
                        f.arguments
                            .as_ref()
                            .map(|s| yandex_cloud_ml_proto::json::struct_to_value(s).unwrap_or_default().to_string())
                            .unwrap_or_default()
                    )
                })
            })
            .collect::<Vec<_>>()
            .join(" "),
        Some(Content::ToolResultList(list)) => list
            .tool_results
            .iter()
            .filter_map(|r| {
                r.tool_result_type.as_ref().map(|pb::tool_result::ToolResultType::FunctionResult(f)| {
                    format!(
                        "{} -> {}",
                        f.name,
                        match &f.content_type {
                            Some(pb::function_result::ContentType::Content(c)) => c.as_str(),
                            None => "",
                        }
                    )
                })
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detokenize_restores_text_exactly() {
        for text in ["hello world", "  two  spaces ", "line\nnext", "Привет, мир!", "a_b-c 123456789", ""] {
            assert_eq!(detokenize(&tokenize(text)), text, "{text:?}");
        }
    }

    #[test]
    fn tokens_are_stable_and_marked() {
        let t = tokenize("ping pong");
        assert_eq!(t.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["ping", "▁pong"]);
        assert_eq!(t, tokenize("ping pong"));
        assert!(t.iter().all(|t| !t.special && t.id >= 1000));
        let chat = tokenize_chat(&[pb::Message {
            role: "user".into(),
            content: Some(pb::message::Content::Text("ping".into())),
        }]);
        assert_eq!(chat.first().unwrap().text, "<s>");
        assert_eq!(chat.last().unwrap().text, "[SEP]");
        assert!(chat.iter().filter(|t| t.special).count() >= 3);
    }
}
