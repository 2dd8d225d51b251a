//! Scripted replies: rules that answer matching prompts before the model does. A wrapper
//! around any [`Engine`], so scripts work the same with every engine.

use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, Ordering},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{Engine, ModelRef, Reply, Tokenizer, synthetic::last_user_text};

/// A scripted answer, chosen before the engine when its rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ScriptedAnswer {
    /// Answer with this text.
    Text {
        /// The answer.
        text: String,
    },
    /// Ask for these function calls.
    ToolCalls {
        /// `(name, arguments)` pairs; arguments must be JSON objects.
        calls: Vec<ScriptedCall>,
    },
    /// Answer with status CONTENT_FILTER and this text.
    ContentFilter {
        /// The replacement text.
        text: String,
    },
    /// Fail the call with this gRPC status.
    Error {
        /// Numeric gRPC code (e.g. 8 for RESOURCE_EXHAUSTED).
        code: i32,
        /// Status message.
        message: String,
    },
}

/// One scripted function call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedCall {
    /// Function name.
    pub name: String,
    /// Arguments (a JSON object).
    #[serde(default)]
    pub arguments: Value,
}

/// A rule mapping a prompt pattern to a scripted answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRule {
    /// Case-insensitive substring of the last user message; empty matches every request.
    #[serde(default)]
    pub prompt_contains: String,
    /// Only for this model name (the `<model>` part of the URI).
    #[serde(default)]
    pub model: Option<String>,
    /// What to answer.
    pub answer: ScriptedAnswer,
    /// How many requests the rule answers before it expires (unlimited if unset).
    #[serde(default)]
    pub times: Option<u32>,
}

impl ScriptRule {
    /// Rejects rules that could not be answered on the wire.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.times == Some(0) {
            return Err("times must be at least 1 (leave it unset to answer every request)".into());
        }
        if let ScriptedAnswer::Error { code, .. } = &self.answer {
            crate::faults::check_error_code(*code)?;
        }
        if let ScriptedAnswer::ToolCalls { calls } = &self.answer {
            if calls.is_empty() {
                return Err("a tool_calls answer needs at least one call".into());
            }
            for call in calls {
                if call.name.trim().is_empty() {
                    return Err("a scripted call needs a function name".into());
                }
                match &call.arguments {
                    Value::Null => {}
                    Value::Object(o) => {
                        yandex_cloud_ml_proto::json::object_to_struct(o)
                            .map_err(|e| format!("arguments of `{}` are {e}", call.name))?;
                    }
                    other => return Err(format!("arguments of `{}` must be a JSON object, got {other}", call.name)),
                }
            }
        }
        Ok(())
    }
}

/// At most this many scripted replies are kept at once…
pub const MAX_SCRIPTS: usize = 10_000;
/// …holding at most this many bytes of patterns and answers together.
pub const MAX_SCRIPT_BYTES: usize = 64 << 20;

/// The active rules and the bytes they hold.
#[derive(Default)]
struct Rules {
    list: Vec<ScriptRule>,
    bytes: usize,
}

/// An engine that answers from scripts first and asks the wrapped engine otherwise.
pub(crate) struct Scripted {
    inner: Arc<dyn Engine>,
    rules: Mutex<Rules>,
    /// Set once a scripted text long enough to matter was added: tokenizing it must not happen
    /// on the reactor, so the engine stops claiming to be cheap.
    long_text: AtomicBool,
}

/// Scripted texts longer than this make the engine expensive.
const LONG_TEXT_BYTES: usize = 16 << 10;

fn is_long(rule: &ScriptRule) -> bool {
    match &rule.answer {
        ScriptedAnswer::Text { text } => text.len() > LONG_TEXT_BYTES,
        _ => false,
    }
}

/// What a rule holds in memory, roughly: its pattern, model name and answer.
fn size_of(rule: &ScriptRule) -> usize {
    let answer = match &rule.answer {
        ScriptedAnswer::Text { text } | ScriptedAnswer::ContentFilter { text } => text.len(),
        ScriptedAnswer::Error { message, .. } => message.len(),
        ScriptedAnswer::ToolCalls { calls } => calls.iter().map(|c| c.name.len() + c.arguments.to_string().len()).sum(),
    };
    rule.prompt_contains.len() + rule.model.as_ref().map_or(0, String::len) + answer
}

impl Scripted {
    /// The engine with the rules given at start, checked and bounded like rules added later.
    pub(crate) fn new(inner: Arc<dyn Engine>, rules: Vec<ScriptRule>) -> Result<Scripted, String> {
        let scripted = Scripted { inner, rules: Mutex::default(), long_text: AtomicBool::new(false) };
        for rule in rules {
            scripted.add(rule)?;
        }
        Ok(scripted)
    }

    fn rules(&self) -> MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a rule after checking it, within [`MAX_SCRIPTS`] and [`MAX_SCRIPT_BYTES`].
    pub(crate) fn add(&self, rule: ScriptRule) -> Result<(), String> {
        rule.check()?;
        let size = size_of(&rule);
        let mut rules = self.rules();
        if rules.list.len() >= MAX_SCRIPTS {
            return Err(format!(
                "{MAX_SCRIPTS} scripted replies are active, the most the emulator keeps; give rules a `times` \
                 so they expire, or reset the scripts"
            ));
        }
        if rules.bytes + size > MAX_SCRIPT_BYTES {
            return Err(format!(
                "this reply ({size} bytes) would take the active scripted replies past {} MiB, the most the \
                 emulator keeps; reset the scripts or script shorter answers",
                MAX_SCRIPT_BYTES >> 20
            ));
        }
        if is_long(&rule) {
            self.long_text.store(true, Ordering::Relaxed);
        }
        rules.bytes += size;
        rules.list.push(rule);
        Ok(())
    }

    pub(crate) fn list(&self) -> Vec<ScriptRule> {
        self.rules().list.clone()
    }

    pub(crate) fn clear(&self) {
        *self.rules() = Rules::default();
    }

    /// The scripted answer for a request, consuming one use of the matching rule.
    fn take(&self, model: &str, prompt: &str) -> Option<ScriptedAnswer> {
        let mut rules = self.rules();
        let prompt = prompt.to_lowercase();
        let index = rules.list.iter().position(|r| {
            r.model.as_deref().is_none_or(|m| m == model) && prompt.contains(&r.prompt_contains.to_lowercase())
        })?;
        let rule = &mut rules.list[index];
        let answer = rule.answer.clone();
        if let Some(times) = rule.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                let used_up = rules.list.remove(index);
                rules.bytes -= size_of(&used_up);
            }
        }
        Some(answer)
    }
}

impl Engine for Scripted {
    fn model_version(&self) -> &str {
        self.inner.model_version()
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        self.inner.tokenizer()
    }

    fn is_cheap(&self) -> bool {
        self.inner.is_cheap() && !self.long_text.load(Ordering::Relaxed)
    }

    fn context_window(&self) -> Option<usize> {
        self.inner.context_window()
    }

    fn generations_running(&self) -> usize {
        self.inner.generations_running()
    }

    fn answer_cap(&self) -> Option<usize> {
        self.inner.answer_cap()
    }

    fn streams_chunks(&self) -> bool {
        self.inner.streams_chunks()
    }

    fn check_format(&self, request: &pb::CompletionRequest) -> Result<(), Status> {
        self.inner.check_format(request)
    }

    fn tokens_generated(&self) -> u64 {
        self.inner.tokens_generated()
    }

    fn reply(&self, model: &ModelRef, request: &pb::CompletionRequest) -> Result<Reply, Status> {
        if self.rules().list.is_empty() {
            return self.inner.reply(model, request);
        }
        match self.take(&model.name, &last_user_text(request)) {
            None => self.inner.reply(model, request),
            Some(ScriptedAnswer::Text { text }) => Ok(Reply::text(self.tokenizer(), &text)),
            Some(ScriptedAnswer::ContentFilter { text }) => Ok(Reply::ContentFilter(text)),
            Some(ScriptedAnswer::ToolCalls { calls }) => Ok(Reply::ToolCalls(
                calls
                    .into_iter()
                    .map(|c| {
                        (c.name, if c.arguments.is_null() { Value::Object(Default::default()) } else { c.arguments })
                    })
                    .collect(),
            )),
            Some(ScriptedAnswer::Error { code, message }) => Err(Status::new(tonic::Code::from_i32(code), message)),
        }
    }
}
