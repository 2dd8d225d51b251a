//! The emulator in front of an OpenAI-compatible server: emulator A forwards generation to
//! emulator B's `/v1`, and the SDK's gRPC and chat calls against A give what B's model gives;
//! an upstream that is down or slow is a clear status after a bounded wait.

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_emulator::{EmulatorConfig, EmulatorHandle, FaultAction, FaultRule};
use yandex_cloud_ml_sdk::{Code, completions::AlternativeStatus, tools::FunctionTool};

async fn in_front_of(upstream: &str, timeout: Duration) -> EmulatorHandle {
    let config = EmulatorConfig {
        upstream_openai: Some(upstream.to_owned()),
        upstream_timeout_ms: timeout.as_millis() as u64,
        upstream_api_key: Some(yandex_cloud_ml_emulator::UpstreamKey(yandex_cloud_ml_sdk::EMULATOR_API_KEY.into())),
        ..EmulatorConfig::default()
    };
    common::start(yandex_cloud_ml_emulator::Emulator::builder().config(config)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_and_chat_calls_through_a_get_what_b_answers() {
    let b = common::emulator().await;
    let a = in_front_of(&format!("http://{}/v1", b.endpoint()), Duration::from_secs(10)).await;
    let (via_a, direct) = (common::sdk(&a), common::sdk(&b));
    let prompt = "tell me about platypuses, the egg-laying mammals of eastern Australia";
    let model = |sdk: &yandex_cloud_ml_sdk::Sdk| sdk.models().completions("yandexgpt");

    let (got, want) = (model(&via_a).run(prompt).await.unwrap(), model(&direct).run(prompt).await.unwrap());
    assert_eq!((got.text(), got.status()), (want.text(), AlternativeStatus::Final));
    assert!(got.model_version().starts_with("upstream"), "{}", got.model_version());

    // The stream passes B's chunks on one for one, as they come (A's end is a chunk of its own).
    let count = |sdk: yandex_cloud_ml_sdk::Sdk| async move {
        let mut stream = model(&sdk).run_stream(prompt).await.unwrap();
        let mut chunks: Vec<String> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let text = chunk.unwrap().text().to_owned();
            if chunks.last() != Some(&text) {
                chunks.push(text);
            }
        }
        chunks
    };
    let (got, direct_chunks) = (count(via_a.clone()).await, count(direct.clone()).await);
    assert_eq!(got, direct_chunks);
    assert!(got.len() > 3, "{got:?}");
    assert_eq!(got.last().unwrap(), want.text());

    let tool = FunctionTool::new(
        "calculator",
        json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
    );
    let tooled = |sdk: &yandex_cloud_ml_sdk::Sdk| model(sdk).configure(|c| c.tool(tool.clone())).unwrap();
    let question = "use the calculator for 7@8";
    let (got, want) = (tooled(&via_a).run(question).await.unwrap(), tooled(&direct).run(question).await.unwrap());
    assert_eq!(got.status(), AlternativeStatus::ToolCalls);
    assert_eq!(got.tool_calls(), want.tool_calls());
    let result = yandex_cloud_ml_sdk::tools::ToolResult::function("calculator", "-5");
    let history = |r: &yandex_cloud_ml_sdk::completions::CompletionResult| {
        vec![yandex_cloud_ml_sdk::completions::Message::user(question), r.into(), result.clone().into()]
    };
    let (got, want) =
        (tooled(&via_a).run(history(&got)).await.unwrap(), tooled(&direct).run(history(&want)).await.unwrap());
    assert_eq!(got.text(), want.text());
    assert_eq!(got.text(), "The result of calculator is -5.");

    // The OpenAI-compatible API of A forwards as well.
    let chat = via_a.chat().completions("yandexgpt").run(prompt).await.unwrap();
    assert_eq!(chat.text(), want_text(&direct, prompt).await);
}

async fn want_text(sdk: &yandex_cloud_ml_sdk::Sdk, prompt: &str) -> String {
    sdk.models().completions("yandexgpt").run(prompt).await.unwrap().text().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_error_keeps_its_status() {
    let fault = FaultAction::Fail { code: tonic::Code::InvalidArgument as i32, message: "bad prompt".into() };
    let b = common::start(
        yandex_cloud_ml_emulator::Emulator::builder().fault(FaultRule::new("TextGenerationService/Completion", fault)),
    )
    .await;
    let a = in_front_of(&format!("http://{}/v1", b.endpoint()), Duration::from_secs(10)).await;
    let e = common::sdk(&a).models().completions("yandexgpt").run("x").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert!(e.to_string().contains("bad prompt"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_is_down_or_slow_fails_fast_and_clearly() {
    // Down: a closed loopback port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let a = in_front_of(&format!("http://{closed}/v1"), Duration::from_secs(10)).await;
    let sdk = common::builder(&a).retry_policy(yandex_cloud_ml_sdk::RetryPolicy::none()).build().unwrap();
    let started = Instant::now();
    let e = sdk.models().completions("yandexgpt").run("x").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    assert!(e.to_string().contains(&closed.to_string()) && e.to_string().contains("not reachable"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // Slow: B holds every answer for 3 s; A waits at most 300 ms.
    let delay = FaultAction::Delay { ms: 3000 };
    let b = common::start(
        yandex_cloud_ml_emulator::Emulator::builder().fault(FaultRule::new("TextGenerationService/Completion", delay)),
    )
    .await;
    let a = in_front_of(&format!("http://{}/v1", b.endpoint()), Duration::from_millis(300)).await;
    let sdk = common::builder(&a).retry_policy(yandex_cloud_ml_sdk::RetryPolicy::none()).build().unwrap();
    let started = Instant::now();
    let e = sdk.models().completions("yandexgpt").run("x").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::DeadlineExceeded), "{e}");
    assert!(e.to_string().contains("did not answer within 300ms"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// A stand-in for vLLM or llama.cpp's server on a loopback port: each connection gets the
/// next canned HTTP answer. Returns its `/v1` URL.
async fn canned_upstream(answers: Vec<String>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for answer in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Read the request head and its body (content-length), then answer and close.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(head) = text.find("\r\n\r\n") {
                    let length = text[..head]
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= head + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            socket.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    url
}

fn sse(events: &[&str]) -> String {
    let body: String = events.iter().map(|e| format!("data: {e}\r\n\r\n")).collect();
    format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}")
}

#[tokio::test(flavor = "multi_thread")]
async fn vllm_style_answers_keep_their_tool_calls_and_endings() {
    let chunk = |delta: &str, finish: &str| format!(r#"{{"choices":[{{"index":0,"delta":{delta}{finish}}}]}}"#);
    let text_then_call = sse(&[
        &chunk(r#"{"role":"assistant","content":"\n\n"}"#, ""),
        &chunk(
            r#"{"tool_calls":[{"index":0,"id":"chatcmpl-tool-1","type":"function","function":{"name":"calculator","arguments":""}}]}"#,
            "",
        ),
        &chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"expression\": \"7@8\"}"}}]}"#, ""),
        &chunk("{}", r#","finish_reason":"tool_calls""#),
        "[DONE]",
    ]);
    let cut = sse(&[
        &chunk(r#"{"content":"Once upon"}"#, ""),
        &chunk(r#"{"content":" a"}"#, r#","finish_reason":"length""#),
        "[DONE]",
    ]);
    let broken = sse(&[&chunk(r#"{"content":"half an ans"}"#, "")]);
    let json = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n\
                {\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"whole\"},\"finish_reason\":\"stop\"}]}"
        .to_owned();
    let refused = "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n\
                   {\"error\":{\"message\":\"bad key\"}}"
        .to_owned();
    let upstream = canned_upstream(vec![text_then_call, cut, broken, json, refused]).await;
    let a = in_front_of(&upstream, Duration::from_secs(10)).await;
    let sdk = common::builder(&a).retry_policy(yandex_cloud_ml_sdk::RetryPolicy::none()).build().unwrap();
    let tool =
        FunctionTool::new("calculator", json!({"type": "object", "properties": {"expression": {"type": "string"}}}));
    let model = sdk.models().completions("yandexgpt");

    let calls = model.configure(|c| c.tool(tool)).unwrap().run("7@8?").await.unwrap();
    assert_eq!(calls.status(), AlternativeStatus::ToolCalls, "text before the calls does not hide them");
    assert_eq!(calls.tool_calls()[0].function().unwrap().arguments, json!({"expression": "7@8"}));

    let truncated = model.run("a story").await.unwrap();
    assert_eq!((truncated.text(), truncated.status()), ("Once upon a", AlternativeStatus::TruncatedFinal));

    let e = model.run("x").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    assert!(e.to_string().contains("ended before the answer did"), "{e}");

    assert_eq!(model.run("x").await.unwrap().text(), "whole");

    let e = model.run("x").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "not the client's credentials: {e}");
    assert!(e.to_string().contains("--upstream-api-key"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_closes_the_upstream_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 65536];
        let _ = socket.read(&mut buf).await.unwrap();
        let event = r#"data: {"choices":[{"index":0,"delta":{"content":"the first words"}}]}"#;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{event}\n\n\r\n", event.len() + 2);
        socket.write_all(format!("{head}{chunk}").as_bytes()).await.unwrap();
        // A server that would go on generating: it learns the client left when the socket closes.
        let started = Instant::now();
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
                Ok(Ok(_)) => continue,
                Err(_) => break None,
            }
        };
        let _ = closed_tx.send(closed);
    });
    let a = in_front_of(&url, Duration::from_secs(30)).await;
    let model = common::sdk(&a).models().completions("yandexgpt");
    let mut stream = model.run_stream("a long story").await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.text(), "the first words");
    drop(stream);
    let closed = closed_rx.await.unwrap().expect("the upstream connection stays open after the client left");
    assert!(closed < Duration::from_secs(5), "{closed:?}");
}
