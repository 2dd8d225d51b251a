//! Retries, request metadata and deadlines.

mod common;

use std::time::{Duration, Instant};

use tonic::Code as GrpcCode;
use yandex_cloud_ml_emulator::Emulator;
use yandex_cloud_ml_sdk::{Code, ErrorKind, RetryPolicy};

const COMPLETION: &str = "yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion";

fn completion_entries(e: &yandex_cloud_ml_emulator::EmulatorHandle) -> Vec<yandex_cloud_ml_emulator::JournalEntry> {
    e.control().journal().into_iter().filter(|j| j.method == COMPLETION).collect()
}

#[tokio::test]
async fn transient_failures_are_retried_with_one_request_id_and_attempt_headers() {
    let emulator = common::start(Emulator::builder().script(common::script(
        "flaky",
        common::error(GrpcCode::Unavailable, "try again"),
        Some(2),
    )))
    .await;
    let sdk = common::builder(&emulator).data_logging(false).build().unwrap();
    let result = sdk.models().completions("yandexgpt").run("flaky call").await.unwrap();
    assert_eq!(result.text(), "Echo: flaky call");

    let entries = completion_entries(&emulator);
    assert_eq!(entries.len(), 3);
    let ids: Vec<&str> = entries.iter().map(|e| e.metadata["x-client-request-id"].as_str()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one request id for all attempts: {ids:?}");
    let attempts: Vec<Option<&str>> =
        entries.iter().map(|e| e.metadata.get("x-retry-attempt").map(String::as_str)).collect();
    assert_eq!(attempts, [None, Some("1"), Some("2")]);
    assert!(entries.iter().all(|e| e.metadata["x-data-logging-enabled"] == "false"));
    assert!(entries.iter().all(|e| !e.metadata.contains_key("idempotency-key")), "not a mutating call");
    assert!(entries.iter().all(|e| e.metadata.contains_key("grpc-timeout")), "deadline propagated");
}

#[tokio::test]
async fn the_retry_budget_is_bounded_and_reported() {
    let emulator = common::start(Emulator::builder().script(common::script(
        "down",
        common::error(GrpcCode::ResourceExhausted, "quota"),
        None,
    )))
    .await;
    let sdk = common::sdk(&emulator);
    let e = sdk.models().completions("yandexgpt").run("down").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted));
    assert_eq!(e.attempts(), 5);
    assert!(e.is_retryable());
    assert!(e.to_string().contains("5 attempts"), "{e}");
    assert_eq!(completion_entries(&emulator).len(), 5);
}

#[tokio::test]
async fn no_retry_policy_makes_one_attempt_and_sends_no_retry_headers() {
    let emulator = common::start(Emulator::builder().script(common::script(
        "down",
        common::error(GrpcCode::Unavailable, "x"),
        None,
    )))
    .await;
    let sdk = common::builder(&emulator).retry_policy(RetryPolicy::none()).build().unwrap();
    let e = sdk.models().completions("yandexgpt").run("down").await.unwrap_err();
    assert_eq!(e.attempts(), 1);
    let entries = completion_entries(&emulator);
    assert_eq!(entries.len(), 1);
    let keys: Vec<&String> = entries[0].metadata.keys().collect();
    for k in &keys {
        assert!(!k.starts_with("yc-ml-sdk") && *k != "x-retry-attempt" && *k != "idempotency-key", "{keys:?}");
    }
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("gpt://bad-uri");
    let e = model.run("x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rpc);
    assert_eq!(e.code(), Some(Code::InvalidArgument));
    assert_eq!(e.attempts(), 1);
    assert!(e.client_request_id().is_some());
    assert_eq!(e.method(), Some("/yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion"));
}

#[tokio::test]
async fn per_call_retry_policy_overrides_the_sdk_one() {
    let emulator = common::start(Emulator::builder().script(common::script(
        "down",
        common::error(GrpcCode::Unavailable, "x"),
        None,
    )))
    .await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let e = model.run("down").retry_policy(common::fast_retries().max_attempts(2)).await.unwrap_err();
    assert_eq!(e.attempts(), 2);
}

#[tokio::test]
async fn the_overall_deadline_bounds_a_slow_stream() {
    let emulator = common::start(Emulator::builder().stream_chunk_delay(Duration::from_millis(400))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let started = Instant::now();
    let long = "word ".repeat(40);
    let e = model.run(long.as_str()).timeout(Duration::from_millis(300)).await;
    // A non-streaming run gets one message, so it is not slowed down by chunk pacing.
    assert!(e.is_ok());
    let mut stream = model.run_stream(long.as_str()).timeout(Duration::from_millis(600)).await.unwrap();
    let mut got = 0;
    let error = loop {
        match futures_util::StreamExt::next(&mut stream).await {
            Some(Ok(_)) => got += 1,
            Some(Err(e)) => break e,
            None => panic!("stream finished despite the deadline"),
        }
    };
    let elapsed = started.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(got >= 1, "chunks before the deadline are delivered");
    assert!(elapsed < Duration::from_millis(1500), "deadline honoured within tolerance: {elapsed:?}");
    drop(stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = emulator.control().stats();
    assert_eq!(stats.streams_cancelled + stats.deadlines_exceeded, 1, "the server stopped generating: {stats:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_as_a_transport_error_within_the_deadline() {
    let sdk = yandex_cloud_ml_sdk::Sdk::builder()
        .emulator("127.0.0.1:9")
        .retry_policy(common::fast_retries())
        .build()
        .unwrap();
    let started = Instant::now();
    let e = sdk.models().completions("yandexgpt").run("x").timeout(Duration::from_secs(2)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(e.kind(), ErrorKind::Transport | ErrorKind::Timeout), "{e:?}");
    assert!(e.to_string().contains("endpoint discovery failed"), "{e}");
}

#[tokio::test]
async fn discovery_failures_share_the_calls_retry_budget() {
    // A closed port: discovery fails every time. One budget of 5 attempts for the whole call,
    // discovery included (it used to run its own 5 attempts inside each of the call's 5).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let sdk = yandex_cloud_ml_sdk::Sdk::builder()
        .emulator(closed.to_string())
        .retry_policy(common::fast_retries())
        .build()
        .unwrap();
    let e = sdk.models().completions("yandexgpt").run("x").timeout(Duration::from_secs(30)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert_eq!(e.attempts(), 5, "{e}");
    assert!(e.to_string().contains("endpoint discovery failed"), "{e}");
}

#[tokio::test]
async fn a_request_over_the_message_limit_is_refused_once_not_retried() {
    let emulator = common::start(Emulator::builder()).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let huge = "x".repeat(5 << 20);
    let started = Instant::now();
    let e = model.run(huge.as_str()).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e:?}");
    assert_eq!(e.attempts(), 1, "{e:?}");
    assert!(!e.is_retryable());
    assert!(e.message().contains("bytes encoded") && e.to_string().contains("send less"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}
