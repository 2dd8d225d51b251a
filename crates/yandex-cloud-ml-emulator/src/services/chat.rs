//! The OpenAI-compatible API over HTTP/1.1 on the API port (`/v1/chat/completions`,
//! `/v1/embeddings`, `/v1/models`), as AI Studio serves it next to gRPC.
//!
//! A chat or embeddings request is translated into the gRPC request it stands for and sent,
//! in process, through the same admission path and services as a gRPC client's call: the
//! credentials are checked the same way, the call is journaled under its gRPC method (fault
//! rules for `TextGenerationService/Completion` apply to chat too), the same validation and
//! engines answer. The answer is translated back: JSON, or server-sent events ending in a usage
//! chunk and `data: [DONE]`; errors in OpenAI's shape with the cloud's HTTP status.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::State as Extract,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use prost::Message as _;
use serde_json::{Map, Value, json};
use tonic::{Code, Status};
use yandex_cloud_ml_proto::{json as pbjson, paths, yandex::cloud::ai::foundation_models::v1 as pb};

use crate::{admission::Admission, auth, state::State, validate};

/// The service every translated call goes through: admission in front of the gRPC routes.
pub(crate) type Dispatch = Admission<tonic::service::Routes>;

#[derive(Clone)]
struct Shared {
    state: Arc<State>,
    dispatch: Dispatch,
}

/// The routes of the API.
pub(crate) fn routes(state: Arc<State>, dispatch: Dispatch) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions).fallback(unknown))
        .route("/v1/embeddings", post(embeddings).fallback(unknown))
        .route("/v1/models", get(models).fallback(unknown))
        .route("/v1/{*rest}", axum::routing::any(unknown))
        // Bodies are read by the handlers, after the credentials, up to the gRPC limit
        // (images travel inline).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(Shared { state, dispatch })
}

/// Any other path or method under `/v1`: OpenAI's 404, not tonic's empty answer.
async fn unknown(method: http::Method, uri: http::Uri) -> Response {
    let message = format!(
        "{method} {} is not served: the OpenAI-compatible API has POST /v1/chat/completions, POST /v1/embeddings and GET /v1/models",
        crate::text::shown(uri.path())
    );
    ApiError { status: StatusCode::NOT_FOUND, message, param: None }.into_response()
}

/// Texts one `/v1/embeddings` request may carry (OpenAI's limit; the cloud takes one).
const MAX_EMBEDDING_INPUTS: usize = 2048;

/// The models every folder has, with their makers, as the cloud lists them.
const CATALOG: [(&str, &str, &str); 10] = [
    ("gpt", "yandexgpt", "Yandex"),
    ("gpt", "yandexgpt-lite", "Yandex"),
    ("gpt", "aliceai-llm", "Yandex"),
    ("gpt", "qwen3-235b-a22b-fp8", "Alibaba"),
    ("gpt", "gpt-oss-120b", "OpenAI"),
    ("gpt", "gpt-oss-20b", "OpenAI"),
    ("gpt", "gemma-3-27b-it", "Google"),
    ("emb", "text-search-doc", "Yandex"),
    ("emb", "text-search-query", "Yandex"),
    ("emb", "text-embeddings", "Yandex"),
];

/// An error answer in OpenAI's shape.
struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: &'static str) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), param: Some(param) }
    }

    fn body(&self) -> Value {
        let kind = match self.status.as_u16() {
            400 | 404 | 409 | 413 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            _ => "server_error",
        };
        json!({"error": {"message": self.message, "type": kind, "param": self.param, "code": self.status.as_u16()}})
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> ApiError {
        ApiError { status: http_status(status.code()), message: status.message().to_owned(), param: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if matches!(self.status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The cloud's HTTP status for a gRPC code (its documented table).
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The request headers a translated call carries: credentials (an API key sent as `Bearer`,
/// as OpenAI clients send it, becomes `Api-Key`), request id, data logging.
fn grpc_headers(state: &State, headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    out.insert(header::TE, HeaderValue::from_static("trailers"));
    for name in ["x-client-request-id", "x-data-logging-enabled"] {
        if let Some(v) = headers.get(name) {
            out.insert(name, v.clone());
        }
    }
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let key = auth.to_str().ok().and_then(|a| a.strip_prefix("Bearer ")).filter(|k| auth::is_api_key(state, k));
        let value = match key.and_then(|k| HeaderValue::from_str(&format!("Api-Key {k}")).ok()) {
            Some(v) => v,
            None => auth.clone(),
        };
        out.insert(header::AUTHORIZATION, value);
    }
    out
}

/// Sends `message` to the gRPC method at `path` through admission; yields the answer's
/// messages, then the call's error if it failed.
async fn call_grpc(
    dispatch: &Dispatch,
    path: &str,
    headers: HeaderMap,
    message: &impl prost::Message,
) -> Result<impl Stream<Item = Result<Bytes, Status>> + Send + 'static, Status> {
    use tower_service::Service;
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(encoded.len() + 5);
    frame.extend_from_slice(&[0]);
    frame.extend_from_slice(&u32::try_from(encoded.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&encoded);
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .body(tonic::body::Body::new(http_body_util::Full::new(frame.freeze())))
        .map_err(|e| Status::internal(format!("cannot build the inner call: {e}")))?;
    *request.headers_mut() = headers;
    let mut dispatch = dispatch.clone();
    let response = match dispatch.call(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if let Some(status) = Status::from_header_map(response.headers()).filter(|s| s.code() != Code::Ok) {
        return Err(status);
    }
    let body = response.into_body();
    Ok(futures_util::stream::unfold((Some(body), BytesMut::new()), |(body, mut buffer)| async move {
        let mut body = body?;
        loop {
            if buffer.len() >= 5 {
                let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
                if buffer.len() >= 5 + length {
                    let message = buffer.split_to(5 + length).split_off(5).freeze();
                    return Some((Ok(message), (Some(body), buffer)));
                }
            }
            match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => buffer.extend_from_slice(&data),
                    Err(frame) => {
                        let status = frame.trailers_ref().and_then(Status::from_header_map);
                        return status.filter(|s| s.code() != Code::Ok).map(|s| (Err(s), (None, buffer)));
                    }
                },
                Some(Err(e)) => {
                    return Some((Err(Status::internal(format!("the answer broke off: {e}"))), (None, buffer)));
                }
                None => return None,
            }
        }
    }))
}

/// Adds the ids every answer carries, errors included: a server request id, and the
/// client's id echoed.
fn with_ids(request: &HeaderMap, mut response: Response) -> Response {
    let out = response.headers_mut();
    if let Some(v) = request.get("x-client-request-id") {
        out.insert("x-client-request-id", v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&crate::state::new_id("req")) {
        out.insert("x-request-id", v.clone());
        out.insert("x-server-trace-id", v);
    }
    response
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("the request body must be a JSON object", "body")),
        Err(e) => Err(ApiError::invalid(format!("the request body is not JSON: {e}"), "body")),
    }
}

async fn chat_completions(Extract(shared): Extract<Shared>, request: axum::extract::Request) -> Response {
    let headers = request.headers().clone();
    let response = match chat(&shared, &headers, request.into_body()).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    with_ids(&headers, response)
}

/// Checks the caller's credentials from the headers, then reads the body: at most the gRPC
/// limit, within the read timeout (admission checks the credentials again for the call itself,
/// with the journal and faults).
async fn admitted_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, ApiError> {
    auth::authenticate(&shared.state, &grpc_headers(&shared.state, headers)).map_err(ApiError::from)?;
    let within = shared.state.config.request_read_timeout();
    let limit = crate::admission::MAX_REQUEST_BYTES;
    let bytes = match tokio::time::timeout(within, axum::body::to_bytes(body, limit)).await {
        Err(_) => {
            return Err(Status::deadline_exceeded(format!("the request body did not arrive within {within:?}")).into());
        }
        Ok(Err(_)) => {
            return Err(ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("the request body is larger than the limit of {limit} bytes (or broke off)"),
                param: None,
            });
        }
        Ok(Ok(bytes)) => bytes,
    };
    parse_body(&bytes)
}

async fn chat(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = admitted_body(shared, headers, body).await?;
    let (request, stream) = to_completion_request(&body)?;
    let model = request.model_uri.clone();
    let inner = grpc_headers(&shared.state, headers);
    let mut answers =
        Box::pin(call_grpc(&shared.dispatch, paths::TEXT_GENERATION_SERVICE_COMPLETION, inner, &request).await?);
    let id = format!("chatcmpl-{}", crate::state::new_id(""));
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if !stream {
        let mut last = None;
        while let Some(message) = answers.next().await {
            last = Some(message?);
        }
        let last = last.ok_or_else(|| ApiError::from(Status::internal("the model sent no answer")))?;
        let response = pb::CompletionResponse::decode(last).map_err(|e| Status::internal(e.to_string()))?;
        let answer = completion_json(&id, created, &model, &response);
        return Ok(axum::Json(answer).into_response());
    }
    // The first answer is awaited before the headers go out, so an error gets its status.
    let first = match answers.next().await {
        Some(first) => first?,
        None => return Err(Status::internal("the model sent no answer").into()),
    };
    let mut chunks = Chunks { id, created, model, sent: String::new(), started: false };
    let opening = chunks.events(&first);
    let rest = answers.map(move |answer| {
        Ok::<Bytes, Infallible>(match answer {
            Ok(message) => chunks.events(&message),
            Err(status) => chunks.error(&status),
        })
    });
    let events = futures_util::stream::once(std::future::ready(Ok(opening))).chain(rest);
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    Ok((headers, Body::from_stream(events)).into_response())
}

/// Turns the gRPC answers of a stream into chat chunks.
struct Chunks {
    id: String,
    created: u64,
    model: String,
    /// Text sent so far (gRPC answers are cumulative, chat chunks are deltas).
    sent: String,
    started: bool,
}

impl Chunks {
    fn chunk(&self, choices: Value, usage: Option<Value>) -> String {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    }

    /// The events of one gRPC answer (empty if it adds nothing).
    fn events(&mut self, message: &Bytes) -> Bytes {
        let response = match pb::CompletionResponse::decode(message.clone()) {
            Ok(r) => r,
            Err(e) => return self.error(&Status::internal(e.to_string())),
        };
        let mut out = String::new();
        if !self.started {
            self.started = true;
            out += &self.chunk(json!([{"index": 0, "delta": {"role": "assistant"}}]), None);
        }
        let Some(alternative) = response.alternatives.first() else { return Bytes::from(out) };
        let text = text_of(alternative);
        let new = match text.strip_prefix(self.sent.as_str()) {
            Some(new) => new.to_owned(),
            None => text.clone(),
        };
        if !new.is_empty() {
            out += &self.chunk(json!([{"index": 0, "delta": {"content": new}}]), None);
            self.sent = text;
        }
        if let Some(reason) = finish_reason(alternative.status) {
            let calls = tool_calls_json(alternative);
            if !calls.is_empty() {
                out += &self.chunk(json!([{"index": 0, "delta": {"tool_calls": calls}}]), None);
            }
            // An empty `content` key, so that clients which skip empty deltas (the Python
            // SDK) still see every finish reason.
            out += &self.chunk(json!([{"index": 0, "delta": {"content": ""}, "finish_reason": reason}]), None);
            out += &self.chunk(json!([]), Some(usage_json(response.usage.as_ref())));
            out += "data: [DONE]\n\n";
        }
        Bytes::from(out)
    }

    /// An error after the stream began: an `error` event, and no `[DONE]`.
    fn error(&self, status: &Status) -> Bytes {
        let body = ApiError::from(status.clone()).body();
        Bytes::from(format!("data: {body}\n\n"))
    }
}

fn text_of(alternative: &pb::Alternative) -> String {
    match alternative.message.as_ref().and_then(|m| m.content.as_ref()) {
        Some(pb::message::Content::Text(text)) => text.clone(),
        _ => String::new(),
    }
}

fn finish_reason(status: i32) -> Option<&'static str> {
    use pb::alternative::AlternativeStatus as S;
    match S::try_from(status).ok()? {
        S::Final => Some("stop"),
        S::TruncatedFinal => Some("length"),
        S::ContentFilter => Some("content_filter"),
        S::ToolCalls => Some("tool_calls"),
        S::Partial | S::Unspecified => None,
    }
}

/// The tool calls of an answer, with fresh ids and JSON-text arguments.
fn tool_calls_json(alternative: &pb::Alternative) -> Vec<Value> {
    let Some(pb::message::Content::ToolCallList(list)) = alternative.message.as_ref().and_then(|m| m.content.as_ref())
    else {
        return Vec::new();
    };
    let salt = fastrand::u64(..);
    list.tool_calls
        .iter()
        .enumerate()
        .filter_map(|(i, call)| {
            let pb::tool_call::ToolCallType::FunctionCall(f) = call.tool_call_type.as_ref()?;
            let arguments = f.arguments.as_ref().and_then(|a| pbjson::struct_to_value(a).ok()).unwrap_or(json!({}));
            Some(json!({
                "index": i, "id": format!("call_{salt:016x}{i}"), "type": "function",
                "function": {"name": f.name, "arguments": arguments.to_string()},
            }))
        })
        .collect()
}

fn usage_json(usage: Option<&pb::ContentUsage>) -> Value {
    let u = usage.cloned().unwrap_or_default();
    let reasoning = u.completion_tokens_details.map_or(0, |d| d.reasoning_tokens);
    json!({
        "prompt_tokens": u.input_text_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    })
}

fn completion_json(id: &str, created: u64, model: &str, response: &pb::CompletionResponse) -> Value {
    let choices: Vec<Value> = response
        .alternatives
        .iter()
        .enumerate()
        .map(|(i, alternative)| {
            let calls = tool_calls_json(alternative);
            let mut message = json!({"role": "assistant", "content": null});
            if calls.is_empty() {
                message["content"] = Value::String(text_of(alternative));
            } else {
                message["tool_calls"] = Value::Array(calls);
            }
            json!({"index": i, "message": message, "finish_reason": finish_reason(alternative.status)})
        })
        .collect();
    json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": choices, "usage": usage_json(response.usage.as_ref()),
    })
}

/// The gRPC request a chat request stands for, and whether it asks for a stream.
fn to_completion_request(body: &Map<String, Value>) -> Result<(pb::CompletionRequest, bool), ApiError> {
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(ApiError::invalid(
                "`model` is required: a model URI such as gpt://<folder>/yandexgpt/latest",
                "model",
            ));
        }
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("`stream` must be true or false", "stream")),
    };
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(ApiError::invalid("`n` above 1 is not supported: ask once per answer", "n"));
    }
    let Some(Value::Array(messages)) = body.get("messages") else {
        return Err(ApiError::invalid("`messages` is required: a list of messages", "messages"));
    };
    let mut options = pb::CompletionOptions { stream, ..Default::default() };
    match body.get("temperature") {
        None | Some(Value::Null) => {}
        Some(Value::Number(t)) => options.temperature = t.as_f64(),
        Some(_) => return Err(ApiError::invalid("`temperature` must be a number", "temperature")),
    }
    for key in ["max_completion_tokens", "max_tokens"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                options.max_tokens = n.as_i64();
                break;
            }
            Some(_) => return Err(ApiError::invalid(format!("`{key}` must be an integer"), "max_tokens")),
        }
    }
    match body.get("reasoning_effort").and_then(Value::as_str) {
        None => {}
        Some("low" | "medium" | "high") => {
            options.reasoning_options =
                Some(pb::ReasoningOptions { mode: pb::reasoning_options::ReasoningMode::EnabledHidden as i32 })
        }
        Some(other) => {
            return Err(ApiError::invalid(
                format!("`reasoning_effort` `{}` is not low, medium or high", crate::text::shown(other)),
                "reasoning_effort",
            ));
        }
    }
    let mut request = pb::CompletionRequest {
        model_uri: model,
        completion_options: Some(options),
        messages: to_messages(messages)?,
        ..Default::default()
    };
    if let Some(format) = body.get("response_format").filter(|f| !f.is_null()) {
        request.response_format = match format.get("type").and_then(Value::as_str) {
            Some("text") => None,
            Some("json_object") => Some(pb::completion_request::ResponseFormat::JsonObject(true)),
            Some("json_schema") => {
                let schema = format.pointer("/json_schema/schema").and_then(Value::as_object).ok_or_else(|| {
                    ApiError::invalid("response_format.json_schema.schema must be a JSON object", "response_format")
                })?;
                let schema = pbjson::object_to_struct(schema)
                    .map_err(|_| ApiError::invalid("the JSON schema is nested too deeply", "response_format"))?;
                Some(pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema { schema: Some(schema) }))
            }
            _ => {
                return Err(ApiError::invalid(
                    "response_format.type must be text, json_object or json_schema",
                    "response_format",
                ));
            }
        };
    }
    if let Some(Value::Array(tools)) = body.get("tools") {
        request.tools = tools.iter().map(to_tool).collect::<Result<_, _>>()?;
    }
    match body.get("parallel_tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => request.parallel_tool_calls = Some(*b),
        Some(_) => return Err(ApiError::invalid("`parallel_tool_calls` must be true or false", "parallel_tool_calls")),
    }
    if let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) {
        use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
        let choice = match (choice.as_str().map(str::to_ascii_lowercase).as_deref(), choice.pointer("/function/name")) {
            (Some("none"), _) => C::Mode(M::None as i32),
            (Some("auto"), _) => C::Mode(M::Auto as i32),
            (Some("required"), _) => C::Mode(M::Required as i32),
            (None, Some(Value::String(name))) => C::FunctionName(name.clone()),
            _ => {
                return Err(ApiError::invalid(
                    "`tool_choice` must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": …}}",
                    "tool_choice",
                ));
            }
        };
        request.tool_choice = Some(pb::ToolChoice { tool_choice: Some(choice) });
    }
    Ok((request, stream))
}

fn to_tool(tool: &Value) -> Result<pb::Tool, ApiError> {
    let bad = || {
        ApiError::invalid(
            "each tool must be {\"type\": \"function\", \"function\": {\"name\", \"parameters\", …}}",
            "tools",
        )
    };
    let function =
        tool.get("function").filter(|_| tool.get("type").and_then(Value::as_str).unwrap_or("function") == "function");
    let function = function.ok_or_else(bad)?;
    let name = function.get("name").and_then(Value::as_str).ok_or_else(bad)?;
    let parameters = match function.get("parameters") {
        Some(Value::Object(p)) => Some(
            pbjson::object_to_struct(p)
                .map_err(|_| ApiError::invalid("tool parameters are nested too deeply", "tools"))?,
        ),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ApiError::invalid(
                format!("the parameters of tool `{}` must be a JSON schema object", crate::text::shown(name)),
                "tools",
            ));
        }
    };
    Ok(pb::Tool {
        tool_type: Some(pb::tool::ToolType::Function(pb::FunctionTool {
            name: name.to_owned(),
            description: function.get("description").and_then(Value::as_str).unwrap_or_default().to_owned(),
            parameters,
            strict: function.get("strict").and_then(Value::as_bool).unwrap_or(false),
        })),
    })
}

/// The text of a message's content: a string, or its text parts joined (an image part stands
/// in as `[image]`: the emulator's models read text only).
fn content_text(content: Option<&Value>) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => texts.push(part.get("text").and_then(Value::as_str).unwrap_or_default().to_owned()),
                    Some("image_url") => {
                        let url = part.pointer("/image_url/url").and_then(Value::as_str).unwrap_or_default();
                        let inline = url.starts_with("data:image/") && url.contains(";base64,");
                        if !(inline || url.starts_with("https://")) {
                            return Err(ApiError::invalid(
                                "an image_url must be a data:image/…;base64 URL (or an https URL)",
                                "messages",
                            ));
                        }
                        texts.push("[image]".to_owned());
                    }
                    _ => return Err(ApiError::invalid("a content part must be of type text or image_url", "messages")),
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(ApiError::invalid("a message's content must be a string or a list of parts", "messages")),
    }
}

fn to_messages(messages: &[Value]) -> Result<Vec<pb::Message>, ApiError> {
    let mut out: Vec<pb::Message> = Vec::new();
    // Tool results name their call by id; the gRPC API names the function.
    let mut names = std::collections::HashMap::new();
    for message in messages {
        let role = message.get("role").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid("each message needs a `role` (system, developer, user, assistant or tool)", "messages")
        })?;
        let calls = message.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty());
        if let Some(calls) = calls.filter(|_| role == "assistant") {
            let mut list = Vec::new();
            for call in calls {
                let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default();
                let arguments = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
                let arguments: Value = serde_json::from_str(if arguments.trim().is_empty() { "{}" } else { arguments })
                    .map_err(|e| {
                        ApiError::invalid(
                            format!("the arguments of the call to `{}` are not JSON: {e}", crate::text::shown(name)),
                            "messages",
                        )
                    })?;
                let arguments = arguments.as_object().map(pbjson::object_to_struct).transpose().ok().flatten();
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    names.insert(id.to_owned(), name.to_owned());
                }
                list.push(pb::ToolCall {
                    tool_call_type: Some(pb::tool_call::ToolCallType::FunctionCall(pb::FunctionCall {
                        name: name.to_owned(),
                        arguments,
                    })),
                });
            }
            out.push(pb::Message {
                role: "assistant".into(),
                content: Some(pb::message::Content::ToolCallList(pb::ToolCallList { tool_calls: list })),
            });
            continue;
        }
        let text = content_text(message.get("content"))?;
        if role == "tool" {
            let id = message.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
            // Models that use the function name as the call id (YandexGPT) need no lookup.
            let name = names.get(id).cloned().unwrap_or_else(|| id.to_owned());
            let result = pb::ToolResult {
                tool_result_type: Some(pb::tool_result::ToolResultType::FunctionResult(pb::FunctionResult {
                    name,
                    content_type: Some(pb::function_result::ContentType::Content(text)),
                })),
            };
            // Consecutive results travel in one message, as the gRPC API takes them.
            if let Some(pb::Message { content: Some(pb::message::Content::ToolResultList(list)), .. }) = out.last_mut()
            {
                list.tool_results.push(result);
            } else {
                out.push(pb::Message {
                    role: "user".into(),
                    content: Some(pb::message::Content::ToolResultList(pb::ToolResultList {
                        tool_results: vec![result],
                    })),
                });
            }
            continue;
        }
        let role = if role == "developer" { "system" } else { role };
        out.push(pb::Message { role: role.to_owned(), content: Some(pb::message::Content::Text(text)) });
    }
    Ok(out)
}

async fn embeddings(Extract(shared): Extract<Shared>, request: axum::extract::Request) -> Response {
    let headers = request.headers().clone();
    let response = match embed(&shared, &headers, request.into_body()).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => e.into_response(),
    };
    with_ids(&headers, response)
}

async fn embed(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let body = admitted_body(shared, headers, body).await?;
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(ApiError::invalid(
                "`model` is required: a model URI such as emb://<folder>/text-search-doc/latest",
                "model",
            ));
        }
    };
    let texts: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() > MAX_EMBEDDING_INPUTS => {
            return Err(ApiError::invalid(
                format!("`input` has {} texts; send at most {MAX_EMBEDDING_INPUTS} per request", items.len()),
                "input",
            ));
        }
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
        }
        _ => {
            return Err(ApiError::invalid(
                "`input` must be a string or a non-empty list of strings (token arrays are not supported)",
                "input",
            ));
        }
    };
    if let Some(format) = body.get("encoding_format").and_then(Value::as_str).filter(|f| *f != "float") {
        return Err(ApiError::invalid(
            format!("encoding_format `{}` is not supported: use float", crate::text::shown(format)),
            "encoding_format",
        ));
    }
    let dim = match body.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => return Err(ApiError::invalid("`dimensions` must be an integer", "dimensions")),
    };
    let mut data = Vec::new();
    let mut tokens = 0;
    for (index, text) in texts.into_iter().enumerate() {
        let request = pb::TextEmbeddingRequest { model_uri: model.clone(), text, dim };
        let inner = grpc_headers(&shared.state, headers);
        let mut answers =
            Box::pin(call_grpc(&shared.dispatch, paths::EMBEDDINGS_SERVICE_TEXT_EMBEDDING, inner, &request).await?);
        let message = match answers.next().await {
            Some(message) => message?,
            None => return Err(Status::internal("the embedder sent no answer").into()),
        };
        let response = pb::TextEmbeddingResponse::decode(message).map_err(|e| Status::internal(e.to_string()))?;
        tokens += response.num_tokens;
        data.push(json!({"index": index, "embedding": response.embedding, "object": "embedding"}));
    }
    Ok(json!({
        "object": "list", "model": model, "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

async fn models(Extract(shared): Extract<Shared>, headers: HeaderMap) -> Response {
    let response = list_models(&shared, &headers);
    with_ids(&headers, response)
}

fn list_models(shared: &Shared, headers: &HeaderMap) -> Response {
    let state = &shared.state;
    state.count(|s| s.requests += 1);
    state.journal.record("v1/models", headers, crate::state::journal::Body::Omitted("GET".into()));
    if let Err(status) = auth::authenticate(state, &grpc_headers(state, headers)) {
        return ApiError::from(status).into_response();
    }
    let project = headers.get("openai-project").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(folder) = project.or_else(|| state.config.folders.first().cloned()) else {
        return ApiError::invalid("send the folder id in the OpenAI-Project header", "OpenAI-Project").into_response();
    };
    if let Err(status) = validate::folder(state, &folder) {
        return ApiError::from(status).into_response();
    }
    let mut data: Vec<Value> = CATALOG
        .iter()
        .map(|(scheme, name, owner)| json!({"id": format!("{scheme}://{folder}/{name}/latest"), "object": "model", "owned_by": owner, "created": 0}))
        .collect();
    let listing = yandex_cloud_ml_proto::yandex::cloud::ai::tuning::v1::ListTuningsRequest {
        folder_id: folder.clone(),
        page_size: 1000,
        ..Default::default()
    };
    if let Ok((tasks, _)) = state.tuning.list(&listing) {
        for task in tasks.into_iter().filter(|t| !t.target_model_uri.is_empty()) {
            data.push(json!({"id": task.target_model_uri, "object": "model", "owned_by": "you", "created": 0}));
        }
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
