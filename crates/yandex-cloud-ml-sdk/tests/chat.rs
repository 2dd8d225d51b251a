//! `sdk.chat()` against the emulator's OpenAI-compatible API: the same answers as the gRPC
//! API gives, streams, tools, structured output, images, embeddings, the listing, errors,
//! retries and cut streams.

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_emulator::{AuthMode, Emulator, FaultAction, FaultRule};
use yandex_cloud_ml_sdk::{
    Code, ErrorKind, Sdk,
    chat::{ApiErrorBody, ChatMessage, ChatResponseFormat, ContentPart, FinishReason, ReasoningEffort},
    completions::{AlternativeStatus, StreamInterrupted},
    tools::{FunctionTool, ToolChoice},
};

const COMPLETION: &str = "TextGenerationService/Completion";

#[tokio::test]
async fn run_answers_like_the_grpc_api_with_usage() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let chat = sdk.chat().completions("qwen3-235b-a22b-fp8");
    assert_eq!(chat.uri(), format!("gpt://{}/qwen3-235b-a22b-fp8/latest", sdk.folder_id()));
    let result = chat.run("hello").await.unwrap();
    let grpc = sdk.models().completions("qwen3-235b-a22b-fp8").run("hello").await.unwrap();
    assert_eq!(result.text(), grpc.text());
    assert_eq!(result.status(), AlternativeStatus::Final);
    assert_eq!(result.finish_reason(), Some(&FinishReason::Stop));
    assert_eq!(result.model(), chat.uri());
    assert!(result.id().starts_with("chatcmpl-"), "{}", result.id());
    assert!(result.server_request_id().is_some_and(|id| !id.is_empty()));
    let usage = result.usage().unwrap();
    assert_eq!(usage.input_text_tokens, grpc.usage().input_text_tokens);
    assert_eq!(usage.total_tokens, usage.input_text_tokens + usage.completion_tokens);
    // Results serialize and come back equal.
    let text = serde_json::to_string(&result).unwrap();
    assert_eq!(serde_json::from_str::<yandex_cloud_ml_sdk::chat::ChatResult>(&text).unwrap(), result);
}

#[tokio::test]
async fn streams_deltas_that_add_up_then_a_finish_and_a_usage_step() {
    let emulator = common::emulator().await;
    let chat = common::sdk(&emulator).chat().completions("yandexgpt");
    let prompt = "tell me about platypuses, the egg-laying mammals of eastern Australia";
    let mut stream = chat.run_stream(prompt).await.unwrap();
    assert!(!stream.request_id().is_empty());
    assert!(stream.server_request_id().is_some());
    let mut deltas = Vec::new();
    while let Some(delta) = stream.next().await {
        deltas.push(delta.unwrap());
    }
    assert!(deltas.len() > 4, "{deltas:?}");
    let text: String = deltas.iter().map(|d| d.delta()).collect();
    assert_eq!(text, format!("Echo: {prompt}"));
    let (usage, finish) = (&deltas[deltas.len() - 1], &deltas[deltas.len() - 2]);
    assert_eq!(finish.status(), AlternativeStatus::Final);
    assert_eq!(finish.text(), text);
    assert!(usage.usage().unwrap().completion_tokens > 0);
    assert!(usage.is_usage() && usage.status() == AlternativeStatus::Final, "{usage:?}");
    assert!(deltas[..deltas.len() - 2].iter().all(|d| d.status() == AlternativeStatus::Partial));
    assert!(deltas.iter().all(|d| d.role().as_str() == "assistant"));
    let whole = chat.run_stream(prompt).await.unwrap().final_result().await.unwrap();
    assert_eq!((whole.text(), whole.status()), (text.as_str(), AlternativeStatus::Final));
    assert!(whole.usage().is_some());
}

#[tokio::test]
async fn a_tool_call_round_trip_by_call_id_unary_and_streamed() {
    let emulator = common::emulator().await;
    let tool = FunctionTool::new(
        "calculator",
        json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
    )
    .with_description("evaluates arithmetic");
    let chat = common::sdk(&emulator).chat().completions("yandexgpt").configure(|c| c.tool(tool.clone())).unwrap();
    let question = "use the calculator for 7@8";
    let first = chat.run(question).await.unwrap();
    assert_eq!(first.status(), AlternativeStatus::ToolCalls);
    let call = &first.tool_calls()[0];
    assert_eq!(call.name(), "calculator");
    assert!(call.arguments_json().unwrap()["expression"].is_string());
    let second = chat.run(vec![ChatMessage::user(question), (&first).into(), call.result("-5")]).await.unwrap();
    assert_eq!(second.text(), "The result of calculator is -5.");

    let mut stream = chat.run_stream(question).await.unwrap();
    let mut calls = Vec::new();
    while let Some(delta) = stream.next().await {
        calls.extend(delta.unwrap().tool_calls().to_vec());
    }
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name(), "calculator");
    let streamed = chat.run_stream(question).await.unwrap().final_result().await.unwrap();
    let answer = chat.run(vec![ChatMessage::user(question), (&streamed).into(), streamed.tool_calls()[0].result("-5")]);
    assert_eq!(answer.await.unwrap().text(), "The result of calculator is -5.");

    // tool_choice none keeps the model from calling.
    let none = chat.configure(|c| c.tool_choice(ToolChoice::None)).unwrap().run(question).await.unwrap();
    assert!(none.tool_calls().is_empty());
}

#[tokio::test]
async fn structured_output_follows_the_schema_and_json_mode_gives_json() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Numbers {
        numbers: Vec<i64>,
    }
    let emulator = common::emulator().await;
    let chat = common::sdk(&emulator).chat().completions("yandexgpt");
    let typed = chat.configure(|c| c.response_format(ChatResponseFormat::from_type::<Numbers>())).unwrap();
    let numbers: Numbers = typed.run("collect all numbers from: 5, 4, a, 1").await.unwrap().parse().unwrap();
    assert!(!numbers.numbers.is_empty());
    let json_mode = chat.configure(|c| c.response_format(ChatResponseFormat::Json).temperature(0.0)).unwrap();
    let value: serde_json::Value = json_mode.run("anything").await.unwrap().parse().unwrap();
    assert!(value.is_object());
    // Reasoning effort and extra parameters are accepted.
    let effort = chat.configure(|c| c.reasoning_effort(ReasoningEffort::High).extra("top_p", json!(0.5))).unwrap();
    assert!(!effort.run("hi").await.unwrap().text().is_empty());
}

#[tokio::test]
async fn image_parts_are_sent_and_a_model_reading_text_sees_a_marker() {
    let emulator = common::emulator().await;
    let chat = common::sdk(&emulator).chat().completions("gemma-3-27b-it");
    let png = [0x89, b'P', b'N', b'G', 0, 1, 2];
    let message =
        ChatMessage::user_parts([ContentPart::text("What is depicted"), ContentPart::image("image/png", png)]);
    let result = chat.run(message).await.unwrap();
    assert_eq!(result.text(), "Echo: What is depicted\n[image]");
}

#[tokio::test]
async fn embeddings_equal_the_grpc_vectors_and_honour_dimensions() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let http = sdk.chat().text_embeddings("text-search-doc").run("hello").await.unwrap();
    let grpc = sdk.models().text_embeddings("doc").run("hello").await.unwrap();
    assert_eq!(http.as_slice(), grpc.as_slice());
    assert_eq!(http.num_tokens(), grpc.num_tokens());
    let small = sdk.chat().text_embeddings("text-search-doc").with_dimensions(32).unwrap().run("hello").await.unwrap();
    assert_eq!(small.len(), 32);
    let e = sdk.chat().text_embeddings("no-such-model").run("hello").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    assert_eq!(e.details::<ApiErrorBody>().unwrap().status, 404);
}

#[tokio::test]
async fn the_listing_names_the_folder_models() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let models = sdk.chat().models().await.unwrap();
    let names: Vec<&str> = models.iter().filter(|m| m.is_completions()).filter_map(|m| m.name()).collect();
    assert!(names.contains(&"qwen3-235b-a22b-fp8") && names.contains(&"yandexgpt"), "{names:?}");
    assert!(models.iter().any(|m| m.is_embeddings() && m.name() == Some("text-search-doc")));
    assert!(models.iter().all(|m| m.uri.contains(sdk.folder_id())));
}

#[tokio::test]
async fn server_errors_keep_status_code_message_and_request_ids() {
    let emulator = common::start(Emulator::builder().auth(AuthMode::Require {
        api_keys: vec!["good".into()],
        iam_tokens: vec![],
        oauth_tokens: vec![],
    }))
    .await;
    let bad = common::builder(&emulator).api_key("wrong").build().unwrap();
    let e = bad.chat().completions("yandexgpt").run("hi").await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Http, Some(Code::Unauthenticated)));
    assert!(e.is_auth());
    assert!(e.server_request_id().is_some() && e.client_request_id().is_some(), "{e}");
    let good = common::builder(&emulator).api_key("good").build().unwrap();
    let e =
        good.chat().completions("yandexgpt").configure(|c| c.temperature(1.5)).unwrap().run("hi").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert!(e.to_string().contains("temperature"), "{e}");
    let details = e.details::<ApiErrorBody>().unwrap();
    assert_eq!((details.status, details.kind.as_deref()), (400, Some("invalid_request_error")));
    assert_eq!(e.attempts(), 1);
}

#[tokio::test]
async fn unavailable_is_retried_after_the_servers_retry_after() {
    let fault = FaultAction::Fail { code: tonic::Code::Unavailable as i32, message: "overloaded".into() };
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, fault).first_calls(1))).await;
    let chat = common::sdk(&emulator).chat().completions("yandexgpt");
    let started = Instant::now();
    let result = chat.run("again").await.unwrap();
    assert_eq!(result.text(), "Echo: again");
    // The emulator says `Retry-After: 1`; the SDK's own backoff here is milliseconds.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    // With less time left than the server asks to wait, the call gives up at once.
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(
        COMPLETION,
        FaultAction::Fail { code: tonic::Code::ResourceExhausted as i32, message: "quota".into() },
    )))
    .await;
    let chat = common::sdk(&emulator).chat().completions("yandexgpt");
    let e = chat.run("x").timeout(Duration::from_millis(500)).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    assert!(e.to_string().contains("retry after"), "{e}");
}

#[tokio::test]
async fn internal_errors_are_not_retried_by_default_and_headers_are_the_python_sdks() {
    let fault = FaultAction::Fail { code: tonic::Code::Internal as i32, message: "boom".into() };
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, fault))).await;
    let sdk = common::sdk(&emulator);
    let e = sdk.chat().completions("yandexgpt").run("x").await.unwrap_err();
    assert_eq!((e.code(), e.attempts()), (Some(Code::Internal), 1), "{e}");
    assert_eq!(e.method(), Some("chat/completions"));
    sdk.chat().models().await.unwrap();
    let journal = emulator.control().journal();
    let call = journal.iter().find(|e| e.method.ends_with(COMPLETION)).unwrap();
    assert!(call.metadata["authorization"].starts_with("Api-Key ***"), "{:?}", call.metadata);
    assert_eq!(call.metadata["x-client-request-id"].len(), 36);
    let listing = journal.iter().find(|e| e.method == "v1/models").unwrap();
    assert_eq!(listing.metadata["openai-project"], sdk.folder_id());
    assert!(listing.metadata["user-agent"].starts_with("yandex-cloud-ml-sdk-rust/"));
}

#[tokio::test]
async fn a_stream_cut_mid_way_fails_without_replaying_what_was_delivered() {
    let cut = FaultAction::CutStream { after_chunks: 3, code: tonic::Code::Internal as i32 };
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, cut).first_calls(1))).await;
    let chat = common::sdk(&emulator).chat().completions("yandexgpt");
    let mut stream = chat.run_stream("a long prompt that makes the answer arrive in many chunks").await.unwrap();
    let mut text = String::new();
    let error = loop {
        match stream.next().await {
            Some(Ok(delta)) => text.push_str(delta.delta()),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without the error"),
        }
    };
    assert!(!text.is_empty());
    assert!(error.to_string().contains("stream cut by fault injection"), "{error}");
    assert!(!error.is_retryable(), "a retry would deliver the text again");
    assert!(error.client_request_id() == Some(stream.request_id()), "{error}");
    let interrupted = error.details::<StreamInterrupted>().unwrap();
    assert_eq!(interrupted.text_chars, text.chars().count() as u64);
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn bad_local_input_is_refused_before_sending() {
    let emulator = common::emulator().await;
    let chat = common::sdk(&emulator).chat().completions("yandexgpt");
    let e = chat.run(Vec::<ChatMessage>::new()).await.unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    let e = chat.run(ChatMessage::assistant_tool_calls([])).await.unwrap_err();
    assert!(e.to_string().contains("messages[0] (assistant): it has neither content nor tool calls"), "{e}");
    let e = chat.run(ChatMessage::user_parts([])).await.unwrap_err();
    assert!(e.to_string().contains("it has an empty list of parts"), "{e}");
    let e = chat.configure(|c| c.extra("model", json!("x"))).unwrap_err();
    assert!(e.to_string().contains("own setter"), "{e}");
    let e = common::sdk(&emulator).chat().text_embeddings("text-search-doc").with_dimensions(0).unwrap_err();
    assert!(e.is_invalid_input());
    // An endpoint the SDK cannot derive the API's URL from says how to set it.
    let sdk = Sdk::builder().folder_id("f").api_key("k").endpoint("gw.example.com:443").build().unwrap();
    let e = sdk.chat().completions("yandexgpt").run("hi").await.unwrap_err();
    assert!(e.to_string().contains("chat_base_url"), "{e}");
}

/// One raw HTTP/1.1 exchange with the emulator: the status and the body.
async fn raw(
    emulator: &yandex_cloud_ml_emulator::EmulatorHandle,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(emulator.endpoint()).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: {auth}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn bad_http_input_gets_openai_shaped_errors() {
    let emulator = common::start(Emulator::builder().require_api_key("good")).await;
    let key = "Bearer good";
    let (status, body) = raw(&emulator, "POST", "/v1/chat/completions", key, "not json").await;
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("not JSON"), "{body}");
    // Credentials are checked before the body is looked at.
    assert_eq!(raw(&emulator, "POST", "/v1/chat/completions", "Bearer bad", "not json").await.0, 401);
    let no_messages = r#"{"model":"gpt://f/yandexgpt/latest"}"#;
    assert!(
        raw(&emulator, "POST", "/v1/chat/completions", key, no_messages).await.1.contains("`messages` is required")
    );
    let several = r#"{"model":"gpt://f/yandexgpt/latest","messages":[{"role":"user","content":"x"}],"n":2}"#;
    assert_eq!(raw(&emulator, "POST", "/v1/chat/completions", key, several).await.0, 400);
    let bad_image = r#"{"model":"gpt://f/m/latest","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}"#;
    assert!(raw(&emulator, "POST", "/v1/chat/completions", key, bad_image).await.1.contains("data:image"));
    let texts = serde_json::json!({"model": "emb://f/text-search-doc/latest", "input": vec!["x"; 3000]}).to_string();
    assert!(raw(&emulator, "POST", "/v1/embeddings", key, &texts).await.1.contains("at most 2048"));
    let (status, body) = raw(&emulator, "GET", "/v1/models/yandexgpt", key, "").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not served"), "{body}");
    let (status, body) = raw(&emulator, "GET", "/v1/chat/completions", key, "").await;
    assert_eq!(status, 404, "a wrong method is answered in OpenAI's shape too: {body}");
    assert!(raw(&emulator, "POST", "/v1/chat/completions", key, "[1]").await.1.contains("must be a JSON object"));
    assert!(
        raw(&emulator, "POST", "/v1/chat/completions", key, r#"{"messages":[]}"#)
            .await
            .1
            .contains("`model` is required")
    );
    let effort = r#"{"model":"gpt://f/m/latest","messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}"#;
    assert!(raw(&emulator, "POST", "/v1/chat/completions", key, effort).await.1.contains("is not low, medium or high"));
    let (status, body) = raw(&emulator, "POST", "/v1/chat/completions", key, &"x".repeat(5 << 20)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than the limit"), "{body}");
    // A wrong key sent as OpenAI clients send keys.
    assert!(
        raw(&emulator, "POST", "/v1/chat/completions", "Bearer bad", "{}").await.1.contains("The token is invalid")
    );
}
