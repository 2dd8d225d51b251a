//! [`UpstreamEngine`]: answers come from any OpenAI-compatible server (vLLM, llama.cpp's
//! server, Ollama, another emulator), so the Yandex API — gRPC and HTTP alike — can stand in
//! front of a model on a GPU machine or a serving cluster.
//!
//! Each request is sent as a streamed `POST {base}chat/completions`: text deltas are passed on
//! as they arrive (the client's stream follows the upstream's, chunk by chunk), tool calls and
//! JSON schemas are mapped both ways, and the upstream's errors become the status the cloud
//! would answer. Every wait is bounded by the upstream timeout; when the client goes away the
//! connection to the upstream is closed, which stops its generation.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tonic::{Code, Status};
use yandex_cloud_ml_proto::{json as pbjson, yandex::cloud::ai::foundation_models::v1 as pb};

use super::{EndReason, Ending, Engine, ModelRef, Reply, Tokenizer, tokenizer::SyntheticTokenizer};

/// How long the upstream may take to answer, and to send each next chunk, by default.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// Answers relayed at once. Each holds a blocking thread while it reads (the runtime has 512),
/// so more are refused rather than left to starve the emulator's other blocking work.
const MAX_RELAYS: usize = 256;

/// The most bytes one event, or an error answer, of the upstream may have.
const MAX_EVENT_BYTES: usize = 4 << 20;
const MAX_ERROR_BYTES: usize = 64 << 10;

/// The engine. Usage is counted by the emulator: completion tokens are the upstream's streamed
/// chunks, prompt tokens come from the built-in tokenizer.
#[derive(Clone)]
pub struct UpstreamEngine {
    inner: Arc<Upstream>,
    version: String,
    relays: Arc<tokio::sync::Semaphore>,
}

struct Upstream {
    base: String,
    model: Option<String>,
    timeout: Duration,
    authorization: Option<http::HeaderValue>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for UpstreamEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamEngine")
            .field("base", &self.inner.base)
            .field("model", &self.inner.model)
            .finish_non_exhaustive()
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
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("the upstream URL must not carry credentials (user:password@): use --upstream-api-key".into());
        }
        let host = match (uri.scheme_str(), uri.authority()) {
            (Some("http"), Some(authority)) => authority.as_str().to_owned(),
            (Some("https"), _) => {
                return Err(format!(
                    "the upstream URL `{base_url}` is https, which the emulator does not speak to upstreams; \
                     use the server's plain-http address (or a local TLS-terminating proxy)"
                ));
            }
            _ => return Err(format!("the upstream URL `{base_url}` must be http://host:port/v1")),
        };
        if timeout.is_zero() {
            return Err("the upstream timeout must be more than zero".into());
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        // Said in every answer: where it came from, without the URL's path.
        let version = match &model {
            Some(model) => format!("upstream {model} at {host}"),
            None => format!("upstream at {host}"),
        };
        Ok(UpstreamEngine {
            inner: Arc::new(Upstream { base, model, timeout, authorization: None, client }),
            version,
            relays: Arc::new(tokio::sync::Semaphore::new(MAX_RELAYS)),
        })
    }

    /// Sends `key` as `Authorization: Bearer <key>` (what OpenAI-compatible servers take).
    pub fn api_key(self, key: Option<String>) -> Self {
        let authorization = key.and_then(|k| http::HeaderValue::from_str(&format!("Bearer {k}")).ok()).map(|mut v| {
            v.set_sensitive(true);
            v
        });
        let inner = Upstream {
            base: self.inner.base.clone(),
            model: self.inner.model.clone(),
            timeout: self.inner.timeout,
            authorization,
            client: self.inner.client.clone(),
        };
        UpstreamEngine { inner: Arc::new(inner), version: self.version, relays: self.relays }
    }
}

/// What the relay task hands to the generation thread.
enum Piece {
    Text(String),
    Calls(Vec<(String, Value)>),
    End(Option<EndReason>),
    Failed(Status),
}

impl Upstream {
    /// Sends the request; the answer's head, or the status its failure maps to.
    async fn open(&self, body: Value) -> Result<hyper::Response<hyper::body::Incoming>, Status> {
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
        if status.is_success() {
            return Ok(response);
        }
        let text = read_limited(response.into_body(), self.timeout, MAX_ERROR_BYTES).await.unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&text).chars().take(300).collect());
        Err(upstream_status(status, &message))
    }

    /// Relays one answer into `out`: text pieces as they come (or, with `whole`, the answer at
    /// once, so that tool calls after some text are not lost), tool calls, how it ended.
    /// Stops, closing the connection, as soon as nobody reads `out`.
    async fn relay(self: Arc<Self>, body: Value, whole: bool, out: mpsc::Sender<Piece>, ending: Ending) {
        let work = async {
            let response = match self.open(body).await {
                Ok(r) => r,
                Err(status) => return Piece::Failed(status),
            };
            let json = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            if json {
                // A server that does not stream answers once.
                return match read_limited(response.into_body(), self.timeout, MAX_EVENT_BYTES).await {
                    Ok(bytes) => self.relay_whole(&bytes, &out).await,
                    Err(status) => Piece::Failed(status),
                };
            }
            let mut events = Events {
                body: response.into_body(),
                buffer: Vec::new(),
                ready: Default::default(),
                timeout: self.timeout,
                done: false,
            };
            let (mut calls, mut text, mut reason) = (BTreeMap::<u64, (String, String)>::new(), String::new(), None);
            loop {
                let data = match events.next().await {
                    Ok(Some(data)) => data,
                    Ok(None) => break,
                    Err(status) => return Piece::Failed(status),
                };
                let chunk = match parse_chunk(&data) {
                    Ok(chunk) => chunk,
                    Err(status) => return Piece::Failed(status),
                };
                if let Some(error) = chunk.error {
                    return Piece::Failed(error);
                }
                for (index, name, arguments) in chunk.calls {
                    let call = calls.entry(index).or_default();
                    call.0.push_str(name.as_deref().unwrap_or_default());
                    call.1.push_str(&arguments);
                }
                if chunk.finish.is_some() {
                    reason = chunk.finish;
                }
                if !chunk.content.is_empty() {
                    if whole {
                        text.push_str(&chunk.content);
                    } else if out.send(Piece::Text(chunk.content)).await.is_err() {
                        return Piece::End(None); // nobody reads: the connection closes here
                    }
                }
            }
            if reason.is_none() && !events.done {
                return Piece::Failed(Status::unavailable("the upstream's stream ended before the answer did"));
            }
            if !calls.is_empty() {
                return calls_piece(calls.into_values().collect());
            }
            if !text.is_empty() && out.send(Piece::Text(text)).await.is_err() {
                return Piece::End(None);
            }
            Piece::End(end_reason(reason.as_deref()))
        };
        let last = tokio::select! {
            last = work => last,
            () = out.closed() => return,
            () = ending.abandoned() => return,
        };
        let _ = out.send(last).await;
    }

    /// A non-streamed `chat.completion` answer, relayed at once.
    async fn relay_whole(&self, bytes: &[u8], out: &mpsc::Sender<Piece>) -> Piece {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return Piece::Failed(Status::internal("the upstream answered JSON that is not a chat completion"));
        };
        let message = v.pointer("/choices/0/message").cloned().unwrap_or_default();
        let calls: Vec<(String, String)> = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let text = |p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
                (text("/function/name"), text("/function/arguments"))
            })
            .collect();
        if !calls.is_empty() {
            return calls_piece(calls);
        }
        let text = message.get("content").and_then(Value::as_str).unwrap_or_default();
        if !text.is_empty() && out.send(Piece::Text(text.to_owned())).await.is_err() {
            return Piece::End(None);
        }
        Piece::End(end_reason(v.pointer("/choices/0/finish_reason").and_then(Value::as_str)))
    }
}

fn end_reason(reason: Option<&str>) -> Option<EndReason> {
    match reason {
        Some("length") => Some(EndReason::Length),
        Some("content_filter") => Some(EndReason::ContentFilter),
        _ => None,
    }
}

fn calls_piece(calls: Vec<(String, String)>) -> Piece {
    let mut out = Vec::new();
    for (name, arguments) in calls {
        let arguments = if arguments.trim().is_empty() { "{}" } else { arguments.as_str() };
        match serde_json::from_str::<Value>(arguments) {
            Ok(value) => out.push((name, value)),
            Err(e) => {
                return Piece::Failed(Status::internal(format!(
                    "the upstream's call to `{name}` has arguments that are not JSON ({e})"
                )));
            }
        }
    }
    Piece::Calls(out)
}

/// Reads a body of at most `limit` bytes, each wait bounded by `timeout`.
async fn read_limited(body: hyper::body::Incoming, timeout: Duration, limit: usize) -> Result<Vec<u8>, Status> {
    let mut body = std::pin::pin!(body);
    let mut data = Vec::new();
    loop {
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| Status::deadline_exceeded(format!("the upstream sent nothing for {timeout:?}")))?;
        match frame {
            None => return Ok(data),
            Some(Err(e)) => return Err(Status::unavailable(format!("the upstream's answer broke off: {e}"))),
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    if data.len() + chunk.len() > limit {
                        return Err(Status::internal(format!("the upstream's answer is larger than {limit} bytes")));
                    }
                    data.extend_from_slice(&chunk);
                }
            }
        }
    }
}

impl UpstreamEngine {
    /// The upstream's request for a completion request: always streamed.
    fn body(&self, model: &ModelRef, request: &pb::CompletionRequest) -> Value {
        let uri = match &model.tuned {
            Some(suffix) => format!("gpt://{}/{}/{}@{suffix}", model.folder, model.name, model.version),
            None => format!("gpt://{}/{}/{}", model.folder, model.name, model.version),
        };
        let mut body = Map::new();
        body.insert("model".into(), Value::String(self.inner.model.clone().unwrap_or(uri)));
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

/// Whether a request may be answered with tool calls (then the answer is read whole: servers
/// often write some text before the calls).
fn may_call_tools(request: &pb::CompletionRequest) -> bool {
    use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
    let none = matches!(request.tool_choice.as_ref().and_then(|c| c.tool_choice.as_ref()), Some(C::Mode(m)) if *m == M::None as i32);
    !request.tools.is_empty() && !none
}

/// The id of the `k`-th call of `name` in one turn: the function name itself when it is called
/// once (as YandexGPT names its calls), numbered when it is called more often.
fn call_id(name: &str, k: usize, calls_of_name: usize) -> String {
    if calls_of_name <= 1 { name.to_owned() } else { format!("{name}_{k}") }
}

/// The conversation in OpenAI's shape. The gRPC API pairs tool results with calls by function
/// name (in order); the ids given here pair them the same way.
fn messages(messages: &[pb::Message]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for m in messages {
        match &m.content {
            Some(pb::message::Content::Text(text)) => out.push(json!({"role": m.role, "content": text})),
            Some(pb::message::Content::ToolCallList(list)) => {
                let functions: Vec<&pb::FunctionCall> = list
                    .tool_calls
                    .iter()
                    .filter_map(|c| c.tool_call_type.as_ref().map(|pb::tool_call::ToolCallType::FunctionCall(f)| f))
                    .collect();
                counts.clear();
                for f in &functions {
                    *counts.entry(f.name.clone()).or_default() += 1;
                }
                let mut seen: std::collections::HashMap<&str, usize> = Default::default();
                let calls: Vec<Value> = functions
                    .iter()
                    .map(|f| {
                        let k = seen.entry(f.name.as_str()).or_default();
                        *k += 1;
                        let arguments = f.arguments.as_ref().and_then(|a| pbjson::struct_to_value(a).ok());
                        json!({"id": call_id(&f.name, *k, counts[&f.name]), "type": "function", "function": {
                            "name": f.name, "arguments": arguments.unwrap_or(json!({})).to_string(),
                        }})
                    })
                    .collect();
                out.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
            }
            Some(pb::message::Content::ToolResultList(list)) => {
                let mut seen: std::collections::HashMap<&str, usize> = Default::default();
                for result in &list.tool_results {
                    if let Some(pb::tool_result::ToolResultType::FunctionResult(r)) = &result.tool_result_type {
                        let content = match &r.content_type {
                            Some(pb::function_result::ContentType::Content(c)) => c.clone(),
                            None => String::new(),
                        };
                        let k = seen.entry(r.name.as_str()).or_default();
                        *k += 1;
                        let id = call_id(&r.name, *k, counts.get(&r.name).copied().unwrap_or(1));
                        out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
                    }
                }
            }
            None => {}
        }
    }
    out
}

/// The status the cloud would answer when the upstream answers `status`. The upstream refusing
/// the emulator's own key is not the client's credential problem.
fn upstream_status(status: http::StatusCode, message: &str) -> Status {
    let code = match status.as_u16() {
        400 | 422 => Code::InvalidArgument,
        401 | 403 => {
            return Status::unavailable(format!(
                "the upstream refused the emulator's credentials (HTTP {status}: {message}); check --upstream-api-key"
            ));
        }
        404 => Code::NotFound,
        408 | 504 => Code::DeadlineExceeded,
        413 | 429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        502 | 503 => Code::Unavailable,
        _ => Code::Internal,
    };
    Status::new(code, format!("the upstream answered HTTP {status}: {message}"))
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The upstream's server-sent events, read with a bound on each wait and on each event's size.
struct Events {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
    ready: std::collections::VecDeque<String>,
    timeout: Duration,
    /// `[DONE]` was read.
    done: bool,
}

impl Events {
    /// The next event's data; `None` at `[DONE]` or the end of the body.
    async fn next(&mut self) -> Result<Option<String>, Status> {
        loop {
            if let Some(data) = self.ready.pop_front() {
                if data.starts_with("[DONE]") {
                    self.done = true;
                    return Ok(None);
                }
                return Ok(Some(data));
            }
            let frame = tokio::time::timeout(self.timeout, self.body.frame())
                .await
                .map_err(|_| Status::deadline_exceeded(format!("the upstream sent nothing for {:?}", self.timeout)))?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(Status::unavailable(format!("the upstream's stream broke off: {e}"))),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    let searched = self.buffer.len().saturating_sub(1);
                    // Raw CRs only end lines (JSON escapes its own), so dropping them leaves `\n`.
                    self.buffer.extend(data.iter().filter(|&&b| b != b'\r'));
                    // Events end with a blank line; only the new bytes are searched.
                    let Some(end) =
                        self.buffer[searched..].windows(2).rposition(|w| w == b"\n\n").map(|e| e + searched)
                    else {
                        if self.buffer.len() > MAX_EVENT_BYTES {
                            return Err(Status::internal(format!(
                                "an event of the upstream is larger than {MAX_EVENT_BYTES} bytes"
                            )));
                        }
                        continue;
                    };
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
    finish: Option<String>,
    error: Option<Status>,
}

fn parse_chunk(data: &str) -> Result<Chunk, Status> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Status::internal(format!("the upstream sent an event that is not JSON ({e})")))?;
    let mut chunk = Chunk::default();
    if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("streaming error");
        let status = error.get("code").and_then(Value::as_u64).and_then(|c| http::StatusCode::from_u16(c as u16).ok());
        chunk.error = Some(match status {
            Some(status) => upstream_status(status, message),
            None => Status::internal(format!("the upstream failed: {message}")),
        });
        return Ok(chunk);
    }
    let delta = v.pointer("/choices/0/delta").cloned().unwrap_or_default();
    chunk.content = delta.get("content").and_then(Value::as_str).unwrap_or_default().to_owned();
    chunk.finish =
        v.pointer("/choices/0/finish_reason").and_then(Value::as_str).filter(|r| !r.is_empty()).map(str::to_owned);
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
        // `reply` runs on a blocking thread; the upstream is read by a task on the runtime,
        // which stops (closing the connection) as soon as this side stops reading.
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Status::internal("the upstream engine runs only inside the emulator's runtime"))?;
        let permit = self.relays.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "the emulator relays at most {MAX_RELAYS} answers at once; retry shortly"
            ))
        })?;
        let (tx, mut rx) = mpsc::channel(64);
        let ending = Ending::default();
        runtime.spawn(self.inner.clone().relay(self.body(model, request), may_call_tools(request), tx, ending.clone()));
        match rx.blocking_recv() {
            None => Err(Status::internal("the upstream relay stopped")),
            Some(Piece::Failed(status)) => Err(status),
            Some(Piece::Calls(calls)) => Ok(Reply::ToolCalls(calls)),
            Some(Piece::End(reason)) => {
                if let Some(reason) = reason {
                    ending.set(reason);
                }
                Ok(Reply::Relayed(Box::new(std::iter::empty()), ending))
            }
            Some(Piece::Text(first)) => {
                let end = ending.clone();
                // The permit is held until the answer is read or dropped.
                let rest = std::iter::from_fn(move || {
                    let _held = &permit;
                    match rx.blocking_recv()? {
                        Piece::Text(text) => Some(Ok(text)),
                        Piece::Failed(status) => Some(Err(status)),
                        Piece::Calls(_) => {
                            Some(Err(Status::internal("the upstream sent tool calls after its answer's text")))
                        }
                        Piece::End(reason) => {
                            if let Some(reason) = reason {
                                end.set(reason);
                            }
                            None
                        }
                    }
                });
                Ok(Reply::Relayed(Box::new(std::iter::once(Ok(first)).chain(rest)), ending))
            }
        }
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
        let e = UpstreamEngine::new("http://user:secret@h:1/v1", None, DEFAULT_UPSTREAM_TIMEOUT).unwrap_err();
        assert!(e.contains("--upstream-api-key") && !e.contains("secret"), "{e}");
        assert!(UpstreamEngine::new("http://h:1/v1", None, Duration::ZERO).is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn relays_beyond_the_limit_are_refused_at_once() {
        let engine = UpstreamEngine::new("http://127.0.0.1:9/v1", None, DEFAULT_UPSTREAM_TIMEOUT).unwrap();
        let _all = engine.relays.clone().try_acquire_many_owned(MAX_RELAYS as u32).unwrap();
        let model = ModelRef { folder: "f".into(), name: "m".into(), version: "latest".into(), tuned: None };
        let refused = tokio::task::spawn_blocking(move || engine.reply(&model, &pb::CompletionRequest::default()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(refused.message().contains("at most 256"), "{refused:?}");
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
