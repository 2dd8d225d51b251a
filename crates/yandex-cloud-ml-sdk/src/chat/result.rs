//! What the OpenAI-compatible API answers: [`ChatResult`] with its choices, tool calls, usage
//! and finish reasons, parsed leniently (a field the server leaves out is a default, not an
//! error) but never silently wrong.

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    completions::{AlternativeStatus, Role, Usage},
    error::{Error, Result},
};

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
#[non_exhaustive]
pub enum FinishReason {
    /// The answer is complete.
    Stop,
    /// Cut at `max_tokens`.
    Length,
    /// Withheld by content moderation.
    ContentFilter,
    /// The model asks for tool calls.
    ToolCalls,
    /// Another reason the server gave (e.g. the legacy `function_call`), lower-cased.
    Other(String),
}

impl FinishReason {
    fn parse(s: &str) -> FinishReason {
        match s.to_ascii_lowercase().as_str() {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(s) => s,
        }
    }

    /// The gRPC API's status for the same outcome (the Python SDK's mapping).
    pub fn status(reason: Option<&FinishReason>) -> AlternativeStatus {
        match reason {
            None => AlternativeStatus::Partial,
            Some(FinishReason::Stop) => AlternativeStatus::Final,
            Some(FinishReason::Length) => AlternativeStatus::TruncatedFinal,
            Some(FinishReason::ContentFilter) => AlternativeStatus::ContentFilter,
            Some(FinishReason::ToolCalls) => AlternativeStatus::ToolCalls,
            Some(FinishReason::Other(_)) => AlternativeStatus::Unspecified,
        }
    }
}

impl From<String> for FinishReason {
    fn from(s: String) -> Self {
        FinishReason::parse(&s)
    }
}

impl From<FinishReason> for String {
    fn from(r: FinishReason) -> String {
        r.as_str().to_owned()
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A function call the model asks for. It keeps the call's wire form, so sending the model's
/// turn back (`ChatMessage::from(&result)`) echoes it exactly; answer it with
/// [`result`](Self::result). Serde uses the wire form too.
#[derive(Debug, Clone)]
pub struct ChatToolCall {
    id: String,
    name: String,
    arguments: String,
    raw: Option<Value>,
}

impl Serialize for ChatToolCall {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_wire().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ChatToolCall {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        ChatToolCall::from_wire(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for ChatToolCall {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.name, &self.arguments) == (&other.id, &other.name, &other.arguments)
    }
}

impl ChatToolCall {
    /// A call of `name` with JSON `arguments` and the id `id` (to rebuild a stored conversation).
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: &Value) -> ChatToolCall {
        ChatToolCall { id: id.into(), name: name.into(), arguments: arguments.to_string(), raw: None }
    }

    /// Reads a call of a non-streamed answer, keeping the server's object as it was.
    pub(crate) fn from_wire(raw: Value) -> Result<ChatToolCall> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let kind = raw.get("type").and_then(Value::as_str).unwrap_or("");
        if !kind.is_empty() && kind != "function" {
            return Err(Error::decode(format!(
                "the server sent a tool call of type `{kind}`; only function calls are known"
            )));
        }
        let function =
            raw.get("function").ok_or_else(|| Error::decode(format!("a tool call has no function: {raw}")))?;
        let arguments = match function.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            // Some servers send the object itself rather than its JSON text.
            Some(other) => other.to_string(),
        };
        Ok(ChatToolCall {
            id: raw.get("id").and_then(text).unwrap_or_default(),
            name: function.get("name").and_then(text).unwrap_or_default(),
            arguments,
            raw: Some(raw),
        })
    }

    /// A call assembled from streamed fragments; its wire form is what the Python SDK sends back.
    pub(crate) fn assembled(index: u64, id: String, name: String, arguments: String) -> ChatToolCall {
        let raw = serde_json::json!({
            "function": {"name": name, "arguments": arguments},
            "index": index,
            "id": id,
            "type": "function",
        });
        ChatToolCall { id, name, arguments, raw: Some(raw) }
    }

    /// The call's id, which its result must name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The function to run.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments as the model wrote them (JSON text).
    pub fn arguments(&self) -> &str {
        &self.arguments
    }

    /// The arguments parsed as JSON (empty arguments are `{}`).
    pub fn arguments_json(&self) -> Result<Value> {
        if self.arguments.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&self.arguments).map_err(|e| {
            Error::decode(format!(
                "the arguments of the call to `{}` are not JSON ({e}): {}",
                self.name, self.arguments
            ))
        })
    }

    /// The arguments deserialized into `T`.
    pub fn arguments_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.arguments_json()?).map_err(|e| {
            Error::decode(format!(
                "the arguments of the call to `{}` do not match the expected type: {e}; they were {}",
                self.name, self.arguments
            ))
        })
    }

    /// The message answering this call with `content`.
    pub fn result(&self, content: impl Into<String>) -> super::ChatMessage {
        super::ChatMessage::tool_result(self.id.clone(), content)
    }

    /// The wire form sent back in the history.
    pub(crate) fn to_wire(&self) -> Value {
        match &self.raw {
            Some(raw) => raw.clone(),
            None => serde_json::json!({
                "id": self.id,
                "type": "function",
                "function": {"name": self.name, "arguments": self.arguments},
            }),
        }
    }
}

/// One answer of a [`ChatResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    index: u32,
    role: Role,
    text: Option<String>,
    reasoning_text: Option<String>,
    tool_calls: Vec<ChatToolCall>,
    finish_reason: Option<FinishReason>,
}

impl ChatChoice {
    pub(crate) fn new(
        index: u32,
        role: Role,
        text: Option<String>,
        reasoning_text: Option<String>,
        tool_calls: Vec<ChatToolCall>,
        finish_reason: Option<FinishReason>,
    ) -> ChatChoice {
        ChatChoice { index, role, text, reasoning_text, tool_calls, finish_reason }
    }

    /// Its position among the choices.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Who wrote it (`assistant`).
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// The answer text (empty when the server sent none, e.g. with tool calls).
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }

    /// Whether the server sent text at all (`content` not null).
    pub fn has_text(&self) -> bool {
        self.text.is_some()
    }

    /// The model's visible reasoning (`reasoning_content`), if it sent any.
    pub fn reasoning_text(&self) -> Option<&str> {
        self.reasoning_text.as_deref()
    }

    /// The calls the model asks for.
    pub fn tool_calls(&self) -> &[ChatToolCall] {
        &self.tool_calls
    }

    /// Why it stopped; `None` while unfinished.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.finish_reason.as_ref()
    }

    /// The gRPC API's status for the same outcome.
    pub fn status(&self) -> AlternativeStatus {
        FinishReason::status(self.finish_reason.as_ref())
    }
}

/// The answer of [`ChatModel::run`](super::ChatModel::run) (or a stream read to its end).
/// Shortcuts read the first choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResult {
    id: String,
    created: i64,
    model: String,
    choices: Vec<ChatChoice>,
    usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_request_id: Option<String>,
}

impl ChatResult {
    pub(crate) fn new(
        id: String,
        created: i64,
        model: String,
        choices: Vec<ChatChoice>,
        usage: Option<Usage>,
    ) -> ChatResult {
        ChatResult { id, created, model, choices, usage, server_request_id: None }
    }

    pub(crate) fn with_server_request_id(mut self, id: Option<String>) -> ChatResult {
        self.server_request_id = id;
        self
    }

    /// The server's id of the request (`x-request-id`), for support requests.
    pub fn server_request_id(&self) -> Option<&str> {
        self.server_request_id.as_deref()
    }

    /// Parses a `chat.completion` object.
    pub(crate) fn from_wire(wire: Wire) -> Result<ChatResult> {
        let choices = wire
            .choices
            .into_iter()
            .map(|c| {
                let calls =
                    c.message.tool_calls.into_iter().map(ChatToolCall::from_wire).collect::<Result<Vec<_>>>()?;
                Ok(ChatChoice {
                    index: c.index,
                    role: Role::from(c.message.role.unwrap_or_else(|| "assistant".into())),
                    text: c.message.content,
                    reasoning_text: c.message.reasoning_content,
                    tool_calls: calls,
                    finish_reason: c.finish_reason.map(FinishReason::from),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ChatResult {
            id: wire.id.unwrap_or_default(),
            created: wire.created.unwrap_or_default(),
            model: wire.model.unwrap_or_default(),
            choices,
            usage: wire.usage.map(WireUsage::usage),
            server_request_id: None,
        })
    }

    /// The server's id of the answer.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When it was made (Unix seconds).
    pub fn created(&self) -> i64 {
        self.created
    }

    /// The model as the server names it.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Every choice (one unless the request asked for more through `extra`).
    pub fn choices(&self) -> &[ChatChoice] {
        &self.choices
    }

    /// The first choice's text ("" without choices).
    pub fn text(&self) -> &str {
        self.choices.first().map_or("", ChatChoice::text)
    }

    /// The first choice's reasoning text.
    pub fn reasoning_text(&self) -> Option<&str> {
        self.choices.first().and_then(ChatChoice::reasoning_text)
    }

    /// The first choice's tool calls.
    pub fn tool_calls(&self) -> &[ChatToolCall] {
        self.choices.first().map_or(&[], ChatChoice::tool_calls)
    }

    /// The first choice's finish reason.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.choices.first().and_then(ChatChoice::finish_reason)
    }

    /// The first choice's status.
    pub fn status(&self) -> AlternativeStatus {
        FinishReason::status(self.finish_reason())
    }

    /// Token counts, when the server sent them.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The first choice's text parsed as JSON into `T` (for a JSON response format).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(self.text()).map_err(|e| {
            Error::decode(format!(
                "the answer is not the expected JSON ({e}): {}",
                self.text().chars().take(300).collect::<String>()
            ))
        })
    }
}

/// The wire form of a `chat.completion`.
#[derive(Deserialize)]
pub(crate) struct Wire {
    id: Option<String>,
    created: Option<i64>,
    model: Option<String>,
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: Option<String>,
    content: Option<String>,
    reasoning_content: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    tool_calls: Vec<Value>,
}

/// `usage` as the API sends it; reasoning tokens are kept (the Python SDK drops them).
#[derive(Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
    completion_tokens_details: Option<WireCompletionDetails>,
}

#[derive(Deserialize)]
struct WireCompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub(crate) fn usage(self) -> Usage {
        Usage {
            input_text_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens,
            reasoning_tokens: self.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

pub(crate) fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}
