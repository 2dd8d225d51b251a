//! [`UpstreamEngine`]: answers come from any OpenAI-compatible server (vLLM, llama.cpp's
//! server, Ollama, another emulator), so the Yandex API — gRPC and HTTP alike — can stand in
//! front of a model on a GPU machine or a serving cluster.
//!
//! Each request is sent as a streamed `POST {base}chat/completions`: text deltas are passed on
//! as they arrive (the client's stream follows the upstream's, chunk by chunk), tool calls and
//! JSON schemas are mapped both ways, and the upstream's errors become the status the cloud
//! would answer. Every wait is bounded by the upstream timeout; when the client goes away the
//! connection to the upstream is closed, which stops its generation.

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Map, Value, json};
use tonic::{Code, Status};
use yandex_cloud_ml_proto::{json as pbjson, yandex::cloud::ai::foundation_models::v1 as pb};

use super::{Engine, ModelRef, Reply, Tokenizer, tokenizer::SyntheticTokenizer};

/// How long the upstream may take to answer, and to send each next chunk, by default.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// The engine. Usage is counted by the emulator: completion tokens are the upstream's streamed
/// deltas (one token each on vLLM and llama.cpp), prompt tokens come from the built-in tokenizer.
pub struct UpstreamEngine {
    base: String,
    model: Option<String>,
    timeout: Duration,
    version: String,
    authorization: Option<http::HeaderValue>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for UpstreamEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamEngine").field("base", &self.base).field("model", &self.model).finish_non_exhaustive()
    }
}

impl UpstreamEngine {
    /// An engine forwarding to the OpenAI-compatible API at `base_url` (e.g.
    /// `http://gpu-box:8000/v1`). `model` replaces the model of every request (the name the
    /// upstream serves); without it the request's model URI is sent as is (right for another
    /// emulator). Only plain `http://` upstreams are supported.
    pub fn new(base_url: &str, model: Option<String>, timeout: Duration) -> Result<UpstreamEngine, String> {
        let base = if base_url.ends_with('/') { base_url.to_owned() } else { format!("{base_url}/") };
        let uri: http::Uri = base.parse().map_err(|e| format!("the upstream URL `{base_url}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") if uri.host().is_some() => {}
            Some("https") => {
                return Err(format!(
                    "the upstream URL `{base_url}` is https, which the emulator does not speak to upstreams; \
                     use the server's plain-http address (or a local TLS-terminating proxy)"
                ));
            }
            _ => return Err(format!("the upstream URL `{base_url}` must be http://host:port/v1")),
        }
        if timeout.is_zero() {
            return Err("the upstream timeout must be more than zero".into());
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let version = format!("upstream {}", model.as_deref().unwrap_or(base.as_str()));
        Ok(UpstreamEngine { base, model, timeout, version, authorization: None, client })
    }

    /// Sends `key` as `Authorization: Bearer <key>` (what OpenAI-compatible servers take).
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.authorization = key.and_then(|k| http::HeaderValue::from_str(&format!("Bearer {k}")).ok()).map(|mut v| {
            v.set_sensitive(true);
            v
        });
        self
    }

    /// Sends the request and returns the upstream's event stream, or the status its failure maps to.
    async fn open(&self, body: Value) -> Result<Events, Status> {
        let url = format!("{}chat/completions", self.base);
        let mut request = http::Request::post(&url);
        if let Some(authorization) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, authorization.clone());
        }
        let request = request
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Status::internal(format!("cannot build the upstream request: {e}")))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!("the upstream {url} did not answer within {:?}", self.timeout))
            })?
            .map_err(|e| Status::unavailable(format!("the upstream {url} is not reachable: {}", root_cause(&e))))?;
        let status = response.status();
        if !status.is_success() {
            let body = tokio::time::timeout(self.timeout, response.into_body().collect()).await;
            let text = body.ok().and_then(Result::ok).map(|b| b.to_bytes()).unwrap_or_default();
            let message = serde_json::from_slice::<Value>(&text)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&text).chars().take(300).collect());
            return Err(Status::new(code_of(status), format!("the upstream answered HTTP {status}: {message}")));
        }
        Ok(Events { body: response.into_body(), buffer: Vec::new(), ready: Default::default(), timeout: self.timeout })
    }

    /// The upstream's request for a completion request: always streamed.
    fn body(&self, model: &ModelRef, request: &pb::CompletionRequest) -> Value {
        let uri = match &model.tuned {
            Some(suffix) => format!("gpt://{}/{}/{}@{suffix}", model.folder, model.name, model.version),
            None => format!("gpt://{}/{}/{}", model.folder, model.name, model.version),
        };
        let mut body = Map::new();
        body.insert("model".into(), Value::String(self.model.clone().unwrap_or(uri)));
        body.insert("messages".into(), Value::Array(messages(&request.messages)));
        body.insert("stream".into(), Value::Bool(true));
        let options = request.completion_options.unwrap_or_default();
        if let Some(t) = options.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(n) = options.max_tokens {
            body.insert("max_tokens".into(), json!(n));
        }
        match &request.response_format {
            Some(pb::completion_request::ResponseFormat::JsonObject(true)) => {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some(pb::completion_request::ResponseFormat::JsonSchema(s)) => {
                let schema = s.schema.as_ref().and_then(|s| pbjson::struct_to_value(s).ok()).unwrap_or(json!({}));
                body.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}),
                );
            }
            _ => {}
        }
        let tools: Vec<Value> = request
            .tools
            .iter()
            .filter_map(|t| match &t.tool_type {
                Some(pb::tool::ToolType::Function(f)) => Some(json!({"type": "function", "function": {
                    "name": f.name,
                    "description": f.description,
                    "parameters": f.parameters.as_ref().and_then(|p| pbjson::struct_to_value(p).ok()).unwrap_or(json!({"type": "object"})),
                    "strict": f.strict,
                }})),
                _ => None,
            })
            .collect();
        if !tools.is_empty() {
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(parallel) = request.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
        if let Some(choice) = request.tool_choice.as_ref().and_then(|c| c.tool_choice.as_ref()) {
            use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
            let choice = match choice {
                C::Mode(m) if *m == M::None as i32 => json!("none"),
                C::Mode(m) if *m == M::Required as i32 => json!("required"),
                C::Mode(_) => json!("auto"),
                C::FunctionName(name) => json!({"type": "function", "function": {"name": name}}),
            };
            body.insert("tool_choice".into(), choice);
        }
        Value::Object(body)
    }
}

/// The conversation in OpenAI's shape. The gRPC API names tool results by function, so a
/// call's id is its function name (as YandexGPT's own OpenAI-compatible answers have it).
fn messages(messages: &[pb::Message]) -> Vec<Value> {
    let mut out = Vec::new();
    for m in messages {
        match &m.content {
            Some(pb::message::Content::Text(text)) => out.push(json!({"role": m.role, "content": text})),
            Some(pb::message::Content::ToolCallList(list)) => {
                let calls: Vec<Value> = list
                    .tool_calls
                    .iter()
                    .filter_map(|c| match &c.tool_call_type {
                        Some(pb::tool_call::ToolCallType::FunctionCall(f)) => {
                            let arguments = f.arguments.as_ref().and_then(|a| pbjson::struct_to_value(a).ok());
                            Some(json!({"id": f.name, "type": "function", "function": {
                                "name": f.name, "arguments": arguments.unwrap_or(json!({})).to_string(),
                            }}))
                        }
                        None => None,
                    })
                    .collect();
                out.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
            }
            Some(pb::message::Content::ToolResultList(list)) => {
                for result in &list.tool_results {
                    if let Some(pb::tool_result::ToolResultType::FunctionResult(r)) = &result.tool_result_type {
                        let content = match &r.content_type {
                            Some(pb::function_result::ContentType::Content(c)) => c.clone(),
                            None => String::new(),
                        };
                        out.push(json!({"role": "tool", "tool_call_id": r.name, "content": content}));
                    }
                }
            }
            None => {}
        }
    }
    out
}

/// The status the cloud answers for an upstream's HTTP status.
fn code_of(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        413 | 429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        502..=504 => Code::Unavailable,
        _ => Code::Internal,
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The upstream's server-sent events, read with a bound on each wait.
struct Events {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
    ready: std::collections::VecDeque<String>,
    timeout: Duration,
}

impl Events {
    /// The next event's data; `None` at `[DONE]` or the end of the body.
    async fn next(&mut self) -> Result<Option<String>, Status> {
        loop {
            if let Some(data) = self.ready.pop_front() {
                return Ok((!data.starts_with("[DONE]")).then_some(data));
            }
            let frame = tokio::time::timeout(self.timeout, self.body.frame())
                .await
                .map_err(|_| Status::deadline_exceeded(format!("the upstream sent nothing for {:?}", self.timeout)))?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(Status::unavailable(format!("the upstream's stream broke off: {e}"))),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    // Raw CRs only end lines (JSON escapes its own), so dropping them leaves `\n`.
                    self.buffer.extend(data.iter().filter(|&&b| b != b'\r'));
                    // Events end with a blank line; the API sends one `data:` line each.
                    let Some(end) = self.buffer.windows(2).rposition(|w| w == b"\n\n") else { continue };
                    let complete: Vec<u8> = self.buffer.drain(..end + 2).collect();
                    for event in String::from_utf8_lossy(&complete).split("\n\n") {
                        let data: Vec<&str> = event
                            .lines()
                            .filter_map(|l| l.strip_prefix("data:"))
                            .map(|d| d.strip_prefix(' ').unwrap_or(d))
                            .collect();
                        if !data.is_empty() {
                            self.ready.push_back(data.join("\n"));
                        }
                    }
                }
            }
        }
    }
}

/// What one chunk carries.
#[derive(Default)]
struct Chunk {
    content: String,
    calls: Vec<(u64, Option<String>, String)>,
    error: Option<Status>,
}

fn parse_chunk(data: &str) -> Result<Chunk, Status> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Status::internal(format!("the upstream sent an event that is not JSON ({e})")))?;
    let mut chunk = Chunk::default();
    if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("streaming error");
        let code = error.get("code").and_then(Value::as_u64).and_then(|c| http::StatusCode::from_u16(c as u16).ok());
        chunk.error =
            Some(Status::new(code.map_or(Code::Internal, code_of), format!("the upstream failed: {message}")));
        return Ok(chunk);
    }
    let delta = v.pointer("/choices/0/delta").cloned().unwrap_or_default();
    chunk.content = delta.get("content").and_then(Value::as_str).unwrap_or_default().to_owned();
    for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let name = call.pointer("/function/name").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_owned);
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or_default().to_owned();
        chunk.calls.push((index, name, arguments));
    }
    Ok(chunk)
}

impl Engine for UpstreamEngine {
    fn model_version(&self) -> &str {
        &self.version
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        &SyntheticTokenizer
    }

    fn streams_chunks(&self) -> bool {
        true
    }

    fn reply(&self, model: &ModelRef, request: &pb::CompletionRequest) -> Result<Reply, Status> {
        // `reply` runs on a blocking thread of the emulator's runtime.
        let runtime = tokio::runtime::Handle::current();
        let body = self.body(model, request);
        let mut events = runtime.block_on(self.open(body))?;
        // Read until the answer shows what it is: text, or tool calls (which come whole).
        let mut calls: BTreeMap<u64, (String, String)> = BTreeMap::new();
        loop {
            let Some(data) = runtime.block_on(events.next())? else {
                break;
            };
            let chunk = parse_chunk(&data)?;
            if let Some(error) = chunk.error {
                return Err(error);
            }
            for (index, name, arguments) in chunk.calls {
                let call = calls.entry(index).or_default();
                if let Some(name) = name {
                    call.0.push_str(&name);
                }
                call.1.push_str(&arguments);
            }
            if !chunk.content.is_empty() && calls.is_empty() {
                let first = chunk.content;
                let rest = std::iter::from_fn(move || match runtime.block_on(events.next()) {
                    Err(status) => Some(Err(status)),
                    Ok(None) => None,
                    Ok(Some(data)) => Some(parse_chunk(&data).and_then(|c| match c.error {
                        Some(error) => Err(error),
                        None => Ok(c.content),
                    })),
                })
                .filter(|piece| !matches!(piece, Ok(p) if p.is_empty()));
                return Ok(Reply::Text(Box::new(std::iter::once(Ok(first)).chain(rest))));
            }
        }
        if calls.is_empty() {
            return Ok(Reply::Text(Box::new(std::iter::empty())));
        }
        let calls = calls
            .into_values()
            .map(|(name, arguments)| {
                let arguments = if arguments.trim().is_empty() { "{}" } else { arguments.as_str() };
                let value: Value = serde_json::from_str(arguments).map_err(|e| {
                    Status::internal(format!("the upstream's call to `{name}` has arguments that are not JSON ({e})"))
                })?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Reply::ToolCalls(calls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_taken() {
        assert!(UpstreamEngine::new("http://127.0.0.1:8000/v1", None, DEFAULT_UPSTREAM_TIMEOUT).is_ok());
        let e = UpstreamEngine::new("https://api.example/v1", None, DEFAULT_UPSTREAM_TIMEOUT).unwrap_err();
        assert!(e.contains("plain-http"), "{e}");
        assert!(UpstreamEngine::new("not a url", None, DEFAULT_UPSTREAM_TIMEOUT).is_err());
        assert!(UpstreamEngine::new("http://h:1/v1", None, Duration::ZERO).is_err());
    }

    #[test]
    fn tool_calls_and_results_name_calls_by_function() {
        let args = pbjson::object_to_struct(json!({"x": 1}).as_object().unwrap()).unwrap();
        let history = [
            pb::Message { role: "user".into(), content: Some(pb::message::Content::Text("hi".into())) },
            pb::Message {
                role: "assistant".into(),
                content: Some(pb::message::Content::ToolCallList(pb::ToolCallList {
                    tool_calls: vec![pb::ToolCall {
                        tool_call_type: Some(pb::tool_call::ToolCallType::FunctionCall(pb::FunctionCall {
                            name: "f".into(),
                            arguments: Some(args),
                        })),
                    }],
                })),
            },
            pb::Message {
                role: "user".into(),
                content: Some(pb::message::Content::ToolResultList(pb::ToolResultList {
                    tool_results: vec![pb::ToolResult {
                        tool_result_type: Some(pb::tool_result::ToolResultType::FunctionResult(pb::FunctionResult {
                            name: "f".into(),
                            content_type: Some(pb::function_result::ContentType::Content("2".into())),
                        })),
                    }],
                })),
            },
        ];
        let out = messages(&history);
        assert_eq!(out[1]["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
        assert_eq!(out[2], json!({"role": "tool", "tool_call_id": "f", "content": "2"}));
    }
}
