//! [`ChatStream`]: a streamed answer as [`ChatDelta`]s. Events are assembled like the Python
//! SDK does (tool-call fragments merged by index, the role carried over, text accumulated),
//! without its parsing slips: an explicit `"finish_reason": null` or `"usage": null` is
//! absent, a stream ending in `length` yields its truncated final delta, and a stream that
//! stops before `[DONE]` is an error, not a silent end.

use std::{
    collections::BTreeMap,
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_core::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::result::{ChatChoice, ChatResult, ChatToolCall, FinishReason, WireUsage, null_as_empty};
use crate::{
    completions::{AlternativeStatus, Role, StreamInterrupted, Usage},
    error::{Code, Error, ErrorKind, Result},
    transport::openai::EventStream,
};

/// One step of a streamed answer: the new text, the text so far, and — on the last steps —
/// the finish reason, the assembled tool calls and the usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatDelta {
    role: Role,
    delta: String,
    text: String,
    reasoning_delta: String,
    reasoning_text: String,
    tool_calls: Vec<ChatToolCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
}

impl ChatDelta {
    /// Who writes (`assistant`; `unknown` until the server says).
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// Text new in this step.
    pub fn delta(&self) -> &str {
        &self.delta
    }

    /// All text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Reasoning text new in this step.
    pub fn reasoning_delta(&self) -> &str {
        &self.reasoning_delta
    }

    /// All reasoning text so far.
    pub fn reasoning_text(&self) -> &str {
        &self.reasoning_text
    }

    /// The complete tool calls, on the step that finishes with `tool_calls`.
    pub fn tool_calls(&self) -> &[ChatToolCall] {
        &self.tool_calls
    }

    /// Why the answer ended, on the step that ends it.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.finish_reason.as_ref()
    }

    /// The gRPC API's status for this step (`Partial` until the end; the usage step repeats
    /// the final status).
    pub fn status(&self) -> AlternativeStatus {
        FinishReason::status(self.finish_reason.as_ref())
    }

    /// Token counts, on the usage step (the last, when the server sends one).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Whether this is the usage step: no new text, the token counts, and the answer's finish
    /// reason and status repeated.
    pub fn is_usage(&self) -> bool {
        self.usage.is_some() && self.delta.is_empty() && self.tool_calls.is_empty()
    }
}

#[derive(Deserialize)]
struct WireChunk {
    id: Option<String>,
    created: Option<i64>,
    model: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    choices: Vec<WireChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    index: Option<u32>,
    delta: Option<WireDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireDelta {
    role: Option<String>,
    content: Option<String>,
    reasoning_content: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    tool_calls: Vec<WireCallFragment>,
}

#[derive(Deserialize)]
struct WireCallFragment {
    index: Option<u64>,
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    function: Option<WireFunctionFragment>,
}

#[derive(Deserialize)]
struct WireFunctionFragment {
    name: Option<String>,
    arguments: Option<String>,
}

/// A tool call being assembled from fragments.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Everything seen so far.
#[derive(Default)]
struct Assembly {
    id: String,
    created: i64,
    model: String,
    role: Option<Role>,
    text: String,
    reasoning: String,
    saw_text: bool,
    calls: BTreeMap<u64, PartialCall>,
    done_calls: Vec<ChatToolCall>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Assembly {
    /// Takes one event's JSON; returns the delta to yield, if the event carries anything a
    /// caller can use (role-only events and tool-call fragments are folded in silently).
    fn take(&mut self, data: &str) -> Result<Option<ChatDelta>> {
        let chunk: WireChunk = serde_json::from_str(data).map_err(|e| {
            Error::decode(format!(
                "a stream event is not a chat chunk ({e}): {}",
                data.chars().take(300).collect::<String>()
            ))
        })?;
        if let Some(error) = chunk.error.filter(|e| !e.is_null() && e != &Value::Bool(false)) {
            return Err(stream_error(&error));
        }
        if self.id.is_empty() {
            self.id = chunk.id.unwrap_or_default();
            self.created = chunk.created.unwrap_or_default();
            self.model = chunk.model.unwrap_or_default();
        }
        if chunk.choices.iter().any(|c| c.index.unwrap_or(0) > 0) {
            return Err(Error::invalid_input(
                "the stream carries several choices (`n` > 1), which run_stream does not assemble: use run",
            ));
        }
        let choice = chunk.choices.into_iter().next();
        let (delta, finish) = match choice {
            Some(c) => (c.delta.unwrap_or_default(), c.finish_reason.filter(|r| !r.is_empty()).map(FinishReason::from)),
            None => (WireDelta::default(), None),
        };
        for fragment in delta.tool_calls {
            let index = fragment.index.ok_or_else(|| Error::decode("a streamed tool-call fragment has no index"))?;
            if let Some(kind) = fragment.kind.as_deref().filter(|k| !k.is_empty() && *k != "function") {
                return Err(Error::decode(format!(
                    "the server streamed a tool call of type `{kind}`; only function calls are known"
                )));
            }
            let call = self.calls.entry(index).or_default();
            if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
                call.id = id;
            }
            if let Some(f) = fragment.function {
                call.name.push_str(f.name.as_deref().unwrap_or(""));
                call.arguments.push_str(f.arguments.as_deref().unwrap_or(""));
            }
        }
        if self.role.is_none() {
            self.role = delta.role.map(Role::from);
        }
        let text_delta = delta.content.unwrap_or_default();
        let reasoning_delta = delta.reasoning_content.unwrap_or_default();
        self.saw_text |= !text_delta.is_empty();
        if finish == Some(FinishReason::ContentFilter) {
            // Moderation withholds what came before: the filter's own text replaces it.
            self.text.clear();
        }
        self.text.push_str(&text_delta);
        self.reasoning.push_str(&reasoning_delta);
        let mut tool_calls = Vec::new();
        if finish.is_some() && !self.calls.is_empty() {
            tool_calls = std::mem::take(&mut self.calls)
                .into_iter()
                .map(|(i, c)| ChatToolCall::assembled(i, c.id, c.name, c.arguments))
                .collect();
            self.done_calls.extend(tool_calls.iter().cloned());
        }
        let usage = chunk.usage.map(WireUsage::usage);
        if finish.is_some() {
            self.finish.clone_from(&finish);
        }
        // The usage step comes after the answer ended: it repeats how.
        let finish = if finish.is_none() && usage.is_some() { self.finish.clone() } else { finish };
        if usage.is_some() {
            self.usage = usage;
        }
        let useful = !text_delta.is_empty() || !reasoning_delta.is_empty() || finish.is_some() || usage.is_some();
        if !useful {
            return Ok(None);
        }
        Ok(Some(ChatDelta {
            role: self.role.clone().unwrap_or_else(|| Role::from("unknown")),
            delta: text_delta,
            text: self.text.clone(),
            reasoning_delta,
            reasoning_text: self.reasoning.clone(),
            tool_calls,
            finish_reason: finish,
            usage,
        }))
    }

    fn result(&self) -> ChatResult {
        let mut calls = self.done_calls.clone();
        // Fragments never closed by a finish reason are still the model's calls.
        calls.extend(
            self.calls
                .iter()
                .map(|(i, c)| ChatToolCall::assembled(*i, c.id.clone(), c.name.clone(), c.arguments.clone())),
        );
        let choice = ChatChoice::new(
            0,
            self.role.clone().unwrap_or(Role::Assistant),
            (self.saw_text || calls.is_empty()).then(|| self.text.clone()),
            (!self.reasoning.is_empty()).then(|| self.reasoning.clone()),
            calls,
            self.finish.clone(),
        );
        ChatResult::new(self.id.clone(), self.created, self.model.clone(), vec![choice], self.usage)
    }
}

/// An error the server reported inside the stream (`{"error": …}`).
fn stream_error(error: &Value) -> Error {
    let message = match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            o.get("message").or_else(|| o.get("error")).and_then(Value::as_str).unwrap_or("streaming error").to_owned()
        }
        _ => "streaming error".to_owned(),
    };
    let status = error.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
    let code = status
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .map_or(Code::Unknown, crate::transport::openai::code_of);
    Error::new(ErrorKind::Http, format!("the server reported an error in the stream: {message}")).with_code(code)
}

/// A streamed answer. Every event the server sent is used exactly once (the SDK never replays
/// a stream once it has read an event); dropping the stream closes the connection, which
/// stops the generation.
pub struct ChatStream {
    events: EventStream,
    assembly: Assembly,
    done: bool,
    delivered: u64,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream").field("request_id", &self.events.request_id).finish_non_exhaustive()
    }
}

impl ChatStream {
    pub(crate) fn new(events: EventStream) -> ChatStream {
        ChatStream { events, assembly: Assembly::default(), done: false, delivered: 0 }
    }

    /// The `x-client-request-id` of this call.
    pub fn request_id(&self) -> &str {
        &self.events.request_id
    }

    /// The server's id of the request (`x-request-id`), for support requests.
    pub fn server_request_id(&self) -> Option<&str> {
        self.events.server_request_id.as_deref()
    }

    /// The answer assembled from what was read so far.
    pub fn current(&self) -> ChatResult {
        self.assembly.result().with_server_request_id(self.events.server_request_id.clone())
    }

    /// Reads the rest of the stream and returns the whole answer.
    pub async fn final_result(mut self) -> Result<ChatResult> {
        use futures_util::StreamExt;
        while let Some(delta) = self.next().await {
            delta?;
        }
        Ok(self.current())
    }

    /// The error that ends the stream: naming the call, saying how far it got, and not
    /// retryable once deltas were delivered (a retry would deliver them again).
    fn interrupted(&self, error: Error) -> Error {
        let error = if error.method().is_none() {
            error.with_call(self.events.path, &self.events.request_id, self.events.attempts)
        } else {
            error
        };
        let chunks = self.delivered;
        let text_chars = self.assembly.text.chars().count() as u64;
        if chunks == 0 {
            return error;
        }
        let note = format!(
            "the stream broke after {chunks} deltas with {text_chars} characters of text; what was delivered is not sent again"
        );
        let mut error = error.noted(&note).with_details(StreamInterrupted { chunks, text_chars });
        error.set_retryable(false);
        error
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatDelta>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let event = match ready!(Pin::new(&mut this.events).poll_next(cx)) {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(this.interrupted(e))));
                }
                None => {
                    this.done = true;
                    // An answer that said how it ended is whole even without the `[DONE]` line.
                    if this.assembly.finish.is_some() {
                        return Poll::Ready(None);
                    }
                    let e = Error::new(ErrorKind::Transport, "the event stream ended before the answer did");
                    return Poll::Ready(Some(Err(this.interrupted(e))));
                }
            };
            if event.data.starts_with("[DONE]") {
                this.done = true;
                return Poll::Ready(None);
            }
            match this.assembly.take(&event.data) {
                Ok(Some(delta)) => {
                    this.delivered += 1;
                    return Poll::Ready(Some(Ok(delta)));
                }
                Ok(None) => continue,
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(this.interrupted(e))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> (Vec<ChatDelta>, ChatResult) {
        let mut a = Assembly::default();
        let deltas = events.iter().filter_map(|e| a.take(e).unwrap()).collect();
        (deltas, a.result())
    }

    #[test]
    fn fragments_merge_into_calls_and_null_keys_are_absent() {
        let (deltas, result) = run(&[
            r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","type":"function","function":{"name":"calc","arguments":""}}]}}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"","type":"","function":{"name":"","arguments":"{\"x\": 1}"}}]}}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"total_tokens":5,"completion_tokens":2}}"#,
        ]);
        assert_eq!(deltas.len(), 2, "{deltas:?}");
        assert_eq!(deltas[0].status(), AlternativeStatus::ToolCalls);
        assert!(deltas[1].is_usage() && !deltas[0].is_usage());
        assert_eq!(deltas[1].status(), AlternativeStatus::ToolCalls, "the usage step repeats the status");
        assert_eq!(deltas[0].tool_calls()[0].arguments(), "{\"x\": 1}");
        assert_eq!(deltas[0].role().as_str(), "assistant");
        assert_eq!(deltas[1].usage().unwrap().total_tokens, 5);
        assert_eq!(result.tool_calls()[0].id(), "t1");
        assert_eq!(result.tool_calls()[0].to_wire()["index"], 0);
    }

    #[test]
    fn a_length_finish_is_yielded_and_text_accumulates() {
        let (deltas, result) = run(&[
            r#"{"id":"c","choices":[{"delta":{"role":"assistant","content":"Hel"}}]}"#,
            r#"{"id":"c","choices":[{"delta":{"content":"lo"}}]}"#,
            r#"{"id":"c","choices":[{"delta":{},"finish_reason":"LENGTH"}]}"#,
        ]);
        assert_eq!(deltas.iter().map(ChatDelta::delta).collect::<String>(), "Hello");
        assert_eq!(deltas.last().unwrap().status(), AlternativeStatus::TruncatedFinal);
        assert_eq!((result.text(), result.status()), ("Hello", AlternativeStatus::TruncatedFinal));
    }

    #[test]
    fn a_content_filter_replaces_the_text_and_several_choices_are_refused() {
        let (_, result) = run(&[
            r#"{"id":"c","choices":[{"delta":{"role":"assistant","content":"bad words"}}]}"#,
            r#"{"id":null,"model":null,"choices":[{"delta":{"content":"[withheld]"},"finish_reason":"content_filter"}]}"#,
        ]);
        assert_eq!((result.text(), result.status()), ("[withheld]", AlternativeStatus::ContentFilter));
        let mut a = Assembly::default();
        let e = a.take(r#"{"choices":[{"index":1,"delta":{"content":"x"}}]}"#).unwrap_err();
        assert!(e.to_string().contains("several choices"), "{e}");
    }

    #[test]
    fn errors_in_the_stream_are_errors() {
        let mut a = Assembly::default();
        let e = a.take(r#"{"error":{"message":"overloaded","code":503}}"#).unwrap_err();
        assert_eq!(e.code(), Some(Code::Unavailable));
        assert!(e.to_string().contains("overloaded"), "{e}");
        assert!(a.take("not json").is_err());
    }
}
