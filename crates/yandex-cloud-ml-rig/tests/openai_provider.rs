//! rig-core's own OpenAI provider, on the Chat Completions wire, against the emulator's
//! OpenAI-compatible API: a prompt, a stream, a tool call round trip (by hand and through an
//! agent, unary and streamed), and a rejected key. rig sends through a hyper-util transport
//! implementing its `HttpClientExt`: the project has one HTTP stack, and reqwest is not in it.
// rig fixes the size of its error types.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, ResponseFuture, connect::HttpConnector},
    rt::TokioExecutor,
};
use rig_agent::{AgentBuilder, agent::MultiTurnStreamItem};
use rig_core::{
    Model,
    completion::{CompletionRequest, FinishReason, ToolDefinition},
    http_client::{
        self, HeaderValue, HttpClientExt, LazyBody, MultipartForm, Request, Response, StatusCode, StreamingResponse,
    },
    message::{Message, ToolName, ToolResultContent},
    providers::openai::{OpenAI, OpenAIConfig, wire::Chat},
    streaming::{Item, StreamEvent},
    tool::PortableTool,
    wasm_compat::WasmCompatSend,
};
use serde::Deserialize;
use serde_json::json;
use yandex_cloud_ml_emulator::{AuthMode, Emulator, EmulatorConfig, EmulatorHandle};
use yandex_cloud_ml_sdk::{EMULATOR_API_KEY, EMULATOR_FOLDER_ID};

/// rig's HTTP transport on hyper-util's pooled client over plain TCP (the emulator listens on
/// loopback without TLS). A newtype: the orphan rule forbids implementing rig's trait on
/// hyper-util's `Client` here.
#[derive(Clone)]
struct HyperClient(Client<HttpConnector, Full<Bytes>>);

impl HyperClient {
    fn new() -> HyperClient {
        HyperClient(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
    }

    fn start<T: Into<Bytes>>(&self, request: Request<T>) -> ResponseFuture {
        self.0.request(request.map(|body| Full::new(body.into())))
    }
}

/// A non-success answer as rig expects a transport to report it.
async fn rejected(response: Response<Incoming>) -> http_client::Error {
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(error) => format!("failed to read the error body: {error}"),
    };
    http_client::Error::non_success_with_details(parts.status, parts.headers, body)
}

async fn unary<U>(pending: ResponseFuture) -> http_client::Result<Response<LazyBody<U>>>
where
    U: From<Bytes> + WasmCompatSend + 'static,
{
    let response = pending.await.map_err(http_client::Error::instance)?;
    if !response.status().is_success() {
        return Err(rejected(response).await);
    }
    let (parts, body) = response.into_parts();
    let body: LazyBody<U> = Box::pin(async move {
        let bytes = body.collect().await.map_err(http_client::Error::instance)?.to_bytes();
        Ok::<U, http_client::Error>(U::from(bytes))
    });
    Ok(Response::from_parts(parts, body))
}

async fn streaming(pending: ResponseFuture) -> http_client::Result<StreamingResponse> {
    let response = pending.await.map_err(http_client::Error::instance)?;
    if !response.status().is_success() {
        return Err(rejected(response).await);
    }
    let (parts, body) = response.into_parts();
    let chunks = body.into_data_stream().map(|chunk| chunk.map_err(http_client::Error::instance));
    let body: http_client::BoxedStream = Box::pin(chunks);
    Ok(Response::from_parts(parts, body))
}

impl HttpClientExt for HyperClient {
    fn send<T, U>(
        &self,
        req: Request<T>,
    ) -> impl Future<Output = http_client::Result<Response<LazyBody<U>>>> + WasmCompatSend + 'static
    where
        T: Into<Bytes>,
        T: WasmCompatSend,
        U: From<Bytes>,
        U: WasmCompatSend + 'static,
    {
        unary::<U>(self.start(req))
    }

    fn send_multipart<U>(
        &self,
        req: Request<MultipartForm>,
    ) -> impl Future<Output = http_client::Result<Response<LazyBody<U>>>> + WasmCompatSend + 'static
    where
        U: From<Bytes>,
        U: WasmCompatSend + 'static,
    {
        let (mut parts, form) = req.into_parts();
        let (boundary, body) = form.encode();
        let pending = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
            .map(|content_type| {
                parts.headers.insert("content-type", content_type);
                self.start(Request::from_parts(parts, body))
            })
            .map_err(http_client::Error::from);
        async move { unary::<U>(pending?).await }
    }

    fn send_streaming<T>(
        &self,
        req: Request<T>,
    ) -> impl Future<Output = http_client::Result<StreamingResponse>> + WasmCompatSend
    where
        T: Into<Bytes> + WasmCompatSend,
    {
        streaming(self.start(req))
    }
}

async fn emulator() -> EmulatorHandle {
    Emulator::builder().start("127.0.0.1:0").await.unwrap()
}

fn model_uri() -> String {
    format!("gpt://{EMULATOR_FOLDER_ID}/yandexgpt/latest")
}

/// rig's OpenAI client on the emulator's `/v1` (the key goes out as `Authorization: Bearer`).
fn openai(emulator: &EmulatorHandle, key: &str) -> OpenAI {
    OpenAIConfig::new(key).with_base_url(format!("http://{}/v1", emulator.endpoint())).connect(HyperClient::new())
}

/// The Chat Completions wire by name (for OpenAI itself `completion()` is the Responses API).
fn chat(emulator: &EmulatorHandle) -> Model<Chat> {
    openai(emulator, EMULATOR_API_KEY).chat(model_uri())
}

const QUESTION: &str = "Use add on 6 and 7: what is the sum?";
const ANSWER: &str = "The result of add is 13.";

fn pair_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]})
}

#[derive(Deserialize)]
struct Pair {
    a: i64,
    b: i64,
}

/// Adds, and records the arguments it was called with.
#[derive(Clone, Default)]
struct Add(Arc<Mutex<Vec<(i64, i64)>>>);

impl PortableTool for Add {
    const NAME: &'static str = "add";
    type Args = Pair;
    type Output = i64;
    type Error = std::convert::Infallible;

    fn description(&self) -> String {
        "Adds two integers".into()
    }

    fn parameters(&self) -> serde_json::Value {
        pair_schema()
    }

    async fn call(&self, p: Pair) -> Result<i64, std::convert::Infallible> {
        self.0.lock().unwrap().push((p.a, p.b));
        Ok(p.a + p.b)
    }
}

fn agent(model: Model<Chat>, add: &Add) -> rig_agent::Agent {
    AgentBuilder::new(model)
        .preamble("You are a calculator; use the tools.")
        .tool(add.clone())
        .default_max_turns(3)
        .build()
}

#[tokio::test]
async fn a_prompt_is_answered_over_chat_completions() {
    let emulator = emulator().await;
    let response = chat(&emulator).call("hello").await.unwrap();
    assert_eq!(response.text(), "Echo: hello");
    assert_eq!(response.finish_reason(), Some(FinishReason::Stop));
}

#[tokio::test]
async fn a_streamed_prompt_delivers_deltas_that_add_up_to_the_answer() {
    let emulator = emulator().await;
    let prompt = "stream this sentence, please, in several pieces";
    let mut stream = chat(&emulator).stream(prompt).unwrap();
    let (mut text, mut deltas) = (String::new(), 0);
    while let Some(item) = stream.next().await {
        if let Item::Event(StreamEvent::Text { text: delta, .. }) = item.unwrap() {
            text.push_str(&delta);
            deltas += 1;
        }
    }
    assert_eq!(text, format!("Echo: {prompt}"));
    assert!(deltas > 1, "{deltas}");
    assert_eq!(stream.finish().await.unwrap().text(), text);
}

#[tokio::test]
async fn a_tool_call_round_trips_through_the_chat_wire() {
    let emulator = emulator().await;
    let model = chat(&emulator);
    let add = ToolDefinition::new(ToolName::new("add").unwrap(), "Adds two integers", pair_schema());
    let mut request = CompletionRequest::new(QUESTION);
    request.tools = vec![add.clone()];
    let first = model.call(request).await.unwrap();
    assert_eq!(first.finish_reason(), Some(FinishReason::ToolCalls));
    let calls: Vec<_> = first.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.name.as_str(), "add");
    assert_eq!(serde_json::Value::Object(calls[0].function.arguments.clone()), json!({"a": 6, "b": 7}));
    let history = vec![
        Message::user(QUESTION),
        first.message().unwrap(),
        Message::tool_results(vec![calls[0].result(vec![ToolResultContent::text("13")])]),
    ];
    let mut request = CompletionRequest::from(history);
    request.tools = vec![add];
    let answer = model.call(request).await.unwrap();
    assert_eq!((answer.text(), answer.finish_reason()), (ANSWER.to_owned(), Some(FinishReason::Stop)));
}

#[tokio::test]
async fn an_agent_calls_the_tool_and_answers_with_its_result() {
    let emulator = emulator().await;
    let add = Add::default();
    let response = agent(chat(&emulator), &add).prompt(QUESTION).await.unwrap();
    assert_eq!(response.output(), ANSWER);
    assert_eq!(*add.0.lock().unwrap(), [(6, 7)]);
}

#[tokio::test]
async fn a_streaming_agent_calls_the_tool_and_streams_the_answer() {
    let emulator = emulator().await;
    let add = Add::default();
    let mut stream = agent(chat(&emulator), &add).prompt(QUESTION).stream();
    let (mut text, mut tool_calls, mut tool_results, mut last) = (String::new(), 0, 0, None);
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            MultiTurnStreamItem::StreamAssistantItem(Item::Event(StreamEvent::Text { text: t, .. })) => {
                text.push_str(&t)
            }
            MultiTurnStreamItem::ToolCall { .. } => tool_calls += 1,
            MultiTurnStreamItem::ToolResult { .. } => tool_results += 1,
            MultiTurnStreamItem::FinalResponse(response) => last = Some(response.output()),
            _ => {}
        }
    }
    assert_eq!((tool_calls, tool_results), (1, 1));
    assert_eq!(text, ANSWER);
    assert_eq!(last.as_deref(), Some(ANSWER));
    assert_eq!(*add.0.lock().unwrap(), [(6, 7)]);
}

#[tokio::test]
async fn a_rejected_key_is_a_provider_response_with_its_status() {
    let config = EmulatorConfig {
        auth: AuthMode::Require { api_keys: vec!["right".into()], iam_tokens: vec![], oauth_tokens: vec![] },
        ..Default::default()
    };
    let strict = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let wrong = openai(&strict, "wrong").chat(model_uri());
    let e = wrong.call("hi").await.unwrap_err();
    assert_eq!(e.provider_response().map(|r| r.status), Some(Some(StatusCode::UNAUTHORIZED)), "{e:?}");
    let right = openai(&strict, "right").chat(model_uri()).call("hi").await.unwrap();
    assert_eq!(right.text(), "Echo: hi");
}
