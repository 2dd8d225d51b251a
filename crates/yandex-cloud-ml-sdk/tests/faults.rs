//! Behaviour under injected faults: retries that never duplicate or lose output, deadlines
//! under stalls, idempotent retries of mutating calls, and authentication under load.

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use yandex_cloud_ml_emulator::{AuthMode, Emulator, FaultAction, FaultRule, ScriptedAnswer};
use yandex_cloud_ml_sdk::{Credentials, ErrorKind, completions::StreamInterrupted};

const COMPLETION: &str = "TextGenerationService/Completion";
const LONG: &str = "a long prompt that makes the answer arrive in many separate streamed chunks";

fn cut(after_chunks: u32) -> FaultAction {
    FaultAction::CutStream { after_chunks, code: tonic::Code::Unavailable as i32 }
}

fn count(e: &yandex_cloud_ml_emulator::EmulatorHandle, method: &str) -> usize {
    common::methods(e).iter().filter(|m| m.ends_with(method)).count()
}

#[tokio::test]
async fn a_stream_is_never_replayed_after_its_first_chunk() {
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, cut(2)).first_calls(1))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let mut stream = model.run_stream(LONG).await.unwrap();
    let mut received = Vec::new();
    let error = loop {
        match stream.next().await {
            Some(Ok(chunk)) => received.push(chunk.text().to_owned()),
            Some(Err(e)) => break e,
            None => panic!("the cut must surface as an error"),
        }
    };
    assert_eq!(received.len(), 2, "exactly the chunks sent before the cut, once each");
    assert!(error.is_retryable() && error.attempts() == 1, "{error:?}");
    assert!(stream.next().await.is_none(), "the stream is over after the error");
    assert_eq!(count(&emulator, COMPLETION), 1, "no replay");
    assert_eq!(stream.current().unwrap().text(), received[1], "the partial answer stays available");
    // The error says how far the stream got.
    let chars = received[1].chars().count() as u64;
    let progress = error.details::<StreamInterrupted>().unwrap();
    assert_eq!((progress.chunks, progress.text_chars), (2, chars));
    let expected = format!("the stream broke after 2 chunks with {chars} characters of text");
    assert!(error.to_string().contains(&expected), "{error}");
}

#[tokio::test]
async fn failures_before_the_first_chunk_are_retried_transparently() {
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, cut(0)).first_calls(2))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let result = model.run_stream(LONG).await.unwrap().final_result().await.unwrap();
    assert_eq!(result.text(), format!("Echo: {LONG}"));
    assert_eq!(count(&emulator, COMPLETION), 3);
    // A unary run reads its only message inside the retry loop, so a cut is retried too.
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, cut(0)).first_calls(2))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    assert_eq!(model.run("x").await.unwrap().text(), "Echo: x");
}

#[tokio::test]
async fn a_stalled_attempt_is_abandoned_at_the_attempt_timeout_and_retried() {
    let stall = FaultAction::StallStream { after_chunks: 0 };
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, stall).first_calls(1))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let started = Instant::now();
    let result =
        model.run("stalled").attempt_timeout(Duration::from_millis(200)).timeout(Duration::from_secs(5)).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(result.text(), "Echo: stalled");
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(count(&emulator, COMPLETION), 2);
}

#[tokio::test]
async fn a_stall_after_output_ends_at_the_overall_deadline_and_frees_the_server() {
    let stall = FaultAction::StallStream { after_chunks: 1 };
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, stall))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let started = Instant::now();
    let mut stream = model.run_stream(LONG).timeout(Duration::from_millis(300)).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    let error = stream.next().await.unwrap().unwrap_err();
    let elapsed = started.elapsed();
    assert!(error.is_timeout(), "{error:?}");
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1300), "{elapsed:?}");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(2);
    let ended = || {
        let stats = emulator.control().stats();
        stats.streams_cancelled + stats.deadlines_exceeded
    };
    while ended() == 0 {
        assert!(Instant::now() < deadline, "the server kept the stalled request: {:?}", emulator.control().stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Counted once: the stall ended the call, the fault did not count as a client leaving.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ended(), 1, "{:?}", emulator.control().stats());
}

#[tokio::test]
async fn dropping_a_pending_call_cancels_it_on_the_server() {
    let stall = FaultAction::StallStream { after_chunks: 0 };
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, stall))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let call = tokio::spawn(async move { model.run("never").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    call.abort();
    let deadline = Instant::now() + Duration::from_secs(2);
    while emulator.control().stats().streams_cancelled == 0 {
        assert!(Instant::now() < deadline, "the server did not notice the cancellation");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn retried_deferred_calls_reuse_one_idempotency_key_and_one_operation() {
    // The first async call is processed but its answer is lost (the client sees UNAVAILABLE
    // after the server created the operation): the retry carries the same key and gets the
    // same operation back.
    let lost_answer = FaultAction::LoseResponse { code: tonic::Code::Unavailable as i32 };
    // Two one-time scripted answers: the retry must not use up the second one.
    let text = |t: &str| ScriptedAnswer::Text { text: t.into() };
    let emulator = common::start(
        Emulator::builder()
            .fault(FaultRule::new("TextGenerationAsyncService/Completion", lost_answer).first_calls(1))
            .script(common::script("once", text("first answer"), Some(1)))
            .script(common::script("once", text("second answer"), Some(1))),
    )
    .await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let op = model.run_deferred("once").await.unwrap();
    let entries: Vec<_> = emulator
        .control()
        .journal()
        .into_iter()
        .filter(|e| e.method.ends_with("TextGenerationAsyncService/Completion"))
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].metadata["idempotency-key"], entries[1].metadata["idempotency-key"]);
    assert_eq!(entries[0].metadata["x-client-request-id"], entries[1].metadata["x-client-request-id"]);
    assert_eq!(emulator.control().operations(), vec![op.id().to_owned()]);
    assert_eq!(op.wait().poll_interval(Duration::from_millis(5)).await.unwrap().text(), "first answer");
    assert_eq!(model.run("once").await.unwrap().text(), "second answer");
}

#[tokio::test]
async fn failing_and_slow_operations() {
    let emulator = common::start(
        Emulator::builder()
            .fault(
                FaultRule::new("Async", FaultAction::FailOperation { code: 13, message: "boom".into() }).first_calls(1),
            )
            .fault(FaultRule::new("Async", FaultAction::SlowOperation { polls: 5 })),
    )
    .await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let failed = model.run_deferred("a").await.unwrap();
    let e = failed.wait().poll_interval(Duration::from_millis(1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OperationFailed);
    assert!(e.message().contains("boom"));
    let slow = model.run_deferred("b").await.unwrap();
    assert_eq!(slow.wait().poll_interval(Duration::from_millis(1)).await.unwrap().text(), "Echo: b");
    assert!(count(&emulator, "OperationService/Get") >= 6);
}

#[tokio::test]
async fn iam_outages_are_retried_and_reported_as_auth_errors_when_they_persist() {
    let unavailable = FaultAction::Fail { code: tonic::Code::Unavailable as i32, message: "iam down".into() };
    let emulator = common::start(
        Emulator::builder().fault(FaultRule::new("IamTokenService/Create", unavailable.clone()).first_calls(2)),
    )
    .await;
    let sdk = common::builder(&emulator).credentials(Credentials::oauth_token("y0_x")).build().unwrap();
    assert_eq!(sdk.models().completions("yandexgpt").run("x").await.unwrap().text(), "Echo: x");
    assert_eq!(count(&emulator, "IamTokenService/Create"), 3);

    let emulator =
        common::start(Emulator::builder().fault(FaultRule::new("IamTokenService/Create", unavailable))).await;
    let sdk = common::builder(&emulator).credentials(Credentials::oauth_token("y0_x")).build().unwrap();
    let e = sdk.models().completions("yandexgpt").run("x").await.unwrap_err();
    assert!(e.is_auth() && e.to_string().contains("iam down"), "{e}");
}

#[tokio::test]
async fn token_expiry_under_load_triggers_exactly_one_exchange() {
    let emulator = common::start(Emulator::builder().auth(AuthMode::Require {
        api_keys: vec![],
        iam_tokens: vec![],
        oauth_tokens: vec!["y0_load".into()],
    }))
    .await;
    let sdk = common::builder(&emulator).credentials(Credentials::oauth_token("y0_load")).build().unwrap();
    let model = sdk.models().completions("yandexgpt");
    model.run("warm up").await.unwrap();
    assert_eq!(count(&emulator, "IamTokenService/Create"), 1);
    emulator.control().expire_tokens();
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let model = model.clone();
            tokio::spawn(async move { model.run(format!("call {i}")).await.map(|r| r.text().to_owned()) })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), format!("Echo: call {i}"));
    }
    assert_eq!(count(&emulator, "IamTokenService/Create"), 2, "one exchange for 100 concurrent rejections");
}

#[tokio::test]
async fn injected_latency_is_applied() {
    let delay = FaultAction::Delay { ms: 150 };
    let emulator = common::start(Emulator::builder().fault(FaultRule::new(COMPLETION, delay))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    model.run("warm").await.unwrap();
    let started = Instant::now();
    model.run("slow").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    let e = model.run("slow").timeout(Duration::from_millis(50)).await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_off_by_a_connection_goaway_are_retried() {
    // A small connection window makes h2 on the emulator close the connection (GOAWAY,
    // ENHANCE_YOUR_CALM) when a burst of requests arrives; calls that never reached the server
    // must be retried on a new connection instead of failing as CANCELLED.
    let config = yandex_cloud_ml_emulator::EmulatorConfig {
        connection_window_bytes: 65_535,
        journal_capacity: 0,
        ..Default::default()
    };
    let emulator = common::start(
        Emulator::builder().config(config).fault(FaultRule::new(COMPLETION, FaultAction::Delay { ms: 300 })),
    )
    .await;
    // Jittered backoff spreads the retries of the cut-off calls over time.
    let retry = yandex_cloud_ml_sdk::RetryPolicy::default()
        .initial_backoff(Duration::from_millis(20))
        .jitter(Duration::from_millis(300))
        .max_backoff(Duration::from_millis(500));
    let sdk = common::builder(&emulator).retry_policy(retry).build().unwrap();
    let model = sdk.models().completions("yandexgpt");
    model.run("warm").await.unwrap();
    let calls: Vec<_> = (0..600)
        .map(|i| {
            let model = model.clone();
            tokio::spawn(async move { model.run(format!("burst {i}")).await.map(|r| r.text().to_owned()) })
        })
        .collect();
    let mut failures = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        match call.await.unwrap() {
            Ok(text) => assert_eq!(text, format!("Echo: burst {i}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{} failed, first: {:?}", failures.len(), failures.first());

    // The same burst without retries shows the GOAWAY really happened: some calls fail, and
    // they fail as retryable transport errors, not as final cancellations.
    let no_retry = common::builder(&emulator).retry_policy(yandex_cloud_ml_sdk::RetryPolicy::none()).build().unwrap();
    let model = no_retry.models().completions("yandexgpt");
    model.run("warm").await.unwrap();
    let calls: Vec<_> = (0..3000)
        .map(|i| {
            let model = model.clone();
            tokio::spawn(async move { model.run(format!("b{i}")).await })
        })
        .collect();
    let mut cut = 0;
    for call in calls {
        if let Err(e) = call.await.unwrap() {
            assert!(e.is_retryable(), "{e:?}");
            cut += 1;
        }
    }
    assert!(cut > 0, "the burst did not trigger a GOAWAY");
}
