//! Constrained decoding: a JSON schema becomes a token mask at every step (llguidance), so the
//! answer always parses and validates, whatever the model would have said.

use std::sync::Arc;

use llguidance::{Matcher, ParserFactory, api::TopLevelGrammar};
use serde_json::{Value, json};
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use tonic::Status;

use super::tokenizer::GgufTokenizer;

/// The tokenizer as llguidance sees it: a trie of token bytes plus a way to tokenize bytes.
struct Env {
    trie: TokTrie,
    hf: tokenizers::Tokenizer,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |s| {
            self.hf.encode_fast(s, false).map(|e| e.get_ids().to_vec()).unwrap_or_default()
        })
    }
}

/// Builds grammars for one model's vocabulary (the factory is built once, at load).
pub(crate) struct Constraints {
    factory: ParserFactory,
}

impl Constraints {
    pub(crate) fn new(tokenizer: &GgufTokenizer, eos: u32) -> Result<Constraints, String> {
        let trie = TokTrie::from(&TokRxInfo::new(tokenizer.bytes.len() as u32, eos), &tokenizer.bytes);
        let env: TokEnv = Arc::new(Env { trie, hf: tokenizer.hf.clone() });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| format!("cannot prepare constrained decoding: {e}"))?;
        factory.quiet();
        Ok(Constraints { factory })
    }

    /// A matcher for answers that follow `schema`; a schema it cannot compile is the caller's
    /// INVALID_ARGUMENT.
    pub(crate) fn matcher(&self, schema: Value) -> Result<Matcher, Status> {
        let mut schema = bounded(schema);
        if let Value::Object(o) = &mut schema {
            // Compact JSON; keywords llguidance lacks are ignored rather than refused.
            o.entry("x-guidance").or_insert_with(|| json!({"whitespace_flexible": false, "lenient": true}));
        }
        let parser = self.factory.create_parser(TopLevelGrammar::from_json_schema(schema)).map_err(refused)?;
        let mut matcher = Matcher::new(Ok(parser));
        // A grammar that cannot even start (its lexer blows up) is refused before generating.
        matcher.compute_mask().map_err(refused)?;
        Ok(matcher)
    }
}

/// A schema the constrained decoder cannot follow: INVALID_ARGUMENT with the first line of its
/// reason, cut short (llguidance's messages can carry its whole parser state).
pub(crate) fn refused(e: impl std::fmt::Display) -> Status {
    let e = e.to_string();
    let reason: String = e.lines().next().unwrap_or_default().chars().take(160).collect();
    let cut = if reason.len() < e.trim_end().len() { "…" } else { "" };
    Status::invalid_argument(format!("json_schema.schema: cannot constrain answers to it: {reason}{cut}"))
}

/// Longest string a constrained answer may hold where the schema sets no bound: a small model
/// can otherwise stay inside a string forever.
const MAX_STRING: u64 = 256;

/// `schema` narrowed so that generation ends: unbounded strings get a bound ([`MAX_STRING`], or
/// their `minLength` when that is longer, so the bound never makes a valid schema
/// unsatisfiable) and objects with named properties no others. Every answer valid under it is
/// valid under `schema`.
pub(crate) fn bounded(mut schema: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                let is_string = o
                    .get("type")
                    .is_some_and(|t| t == "string" || t.as_array().is_some_and(|a| a.contains(&json!("string"))));
                if is_string && !o.contains_key("maxLength") && !o.contains_key("enum") && !o.contains_key("const") {
                    let least = o.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                    o.insert("maxLength".into(), json!(MAX_STRING.max(least)));
                }
                // An object with named properties gets no others: a small model otherwise keeps
                // inventing keys.
                if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                    o.insert("additionalProperties".into(), json!(false));
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}

/// The schema of one call of one of `tools`: `{"name": <tool>, "arguments": <its parameters>}`.
pub(crate) fn call_schema(tools: &[(String, String, Value)]) -> Value {
    let calls: Vec<Value> = tools
        .iter()
        .map(|(name, _, parameters)| {
            let arguments = match parameters {
                Value::Object(o) if !o.is_empty() => bounded(parameters.clone()),
                _ => json!({"type": "object"}),
            };
            json!({
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": arguments},
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    json!({"x-guidance": {"whitespace_flexible": false, "lenient": true}, "anyOf": calls})
}
