//! Soak: many SDK calls (run, run_stream, run_deferred + wait, tokenize) under 20 % injected
//! transient failures on every RPC plus mid-stream cuts. Every call must either return exactly
//! the expected output (streams: every chunk once, none lost) or fail with a clear error:
//! a retryable error after the whole retry budget, or a mid-stream error after the chunks that
//! were delivered. The counts are asserted and printed.
//!
//! CI runs 1,000 calls; the full run is on demand:
//! `cargo test -p yandex-cloud-ml-sdk --release --test soak -- --ignored --nocapture`.

mod common;

use std::{collections::BTreeMap, time::Duration};

use futures_util::{StreamExt, stream};
use yandex_cloud_ml_emulator::{Emulator, FaultAction, FaultRule};
use yandex_cloud_ml_sdk::{
    Error,
    completions::{AlternativeStatus, GptModel},
};

const SEED: u64 = 20261125;
const TRANSIENT_RATE: f64 = 0.2;
const CUT_RATE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    /// Retryable failure on every attempt of the budget.
    BudgetExhausted,
    /// A stream cut after some chunks were delivered (never replayed).
    CutMidStream,
}

fn classify(e: &Error, attempts: u32) -> Outcome {
    assert!(e.is_retryable(), "only injected transient failures may surface: {e:?}");
    assert_eq!(e.attempts(), attempts, "the whole retry budget was used: {e:?}");
    Outcome::BudgetExhausted
}

async fn one_call(model: &GptModel, i: usize, expected_tokens: usize) -> Outcome {
    let prompt = format!("soak call {i} asks for an answer long enough to arrive in several chunks");
    let expected = format!("Echo: {prompt}");
    match i % 4 {
        0 => match model.run(prompt.as_str()).await {
            Ok(r) => {
                assert_eq!(r.text(), expected);
                Outcome::Ok
            }
            Err(e) => classify(&e, 5),
        },
        1 => {
            let mut s = match model.run_stream(prompt.as_str()).await {
                Ok(s) => s,
                Err(e) => return classify(&e, 5),
            };
            let (mut text, mut chunks) = (String::new(), 0);
            while let Some(chunk) = s.next().await {
                match chunk {
                    Ok(c) => {
                        assert!(!c.delta().is_empty() && !c.restated(), "every chunk adds text exactly once");
                        text.push_str(c.delta());
                        assert_eq!(text, c.text(), "no chunk lost or duplicated");
                        chunks += 1;
                        if c.is_final() {
                            assert_eq!(c.status(), AlternativeStatus::Final);
                        }
                    }
                    Err(e) => {
                        assert!(chunks >= 1 && e.is_retryable() && e.attempts() >= 1, "{e:?}");
                        assert!(expected.starts_with(&text), "delivered text is a prefix of the answer");
                        return Outcome::CutMidStream;
                    }
                }
            }
            assert_eq!(text, expected);
            Outcome::Ok
        }
        2 => {
            let op = match model.run_deferred(prompt.as_str()).await {
                Ok(op) => op,
                Err(e) => return classify(&e, 5),
            };
            match op.wait().poll_interval(Duration::from_millis(1)).await {
                Ok(r) => {
                    assert_eq!(r.text(), expected);
                    Outcome::Ok
                }
                Err(e) => classify(&e, 5),
            }
        }
        _ => match model.tokenize(prompt.as_str()).await {
            Ok(tokens) => {
                assert_eq!(tokens.len(), expected_tokens);
                Outcome::Ok
            }
            Err(e) => classify(&e, 5),
        },
    }
}

async fn soak(calls: usize, concurrency: usize) -> BTreeMap<Outcome, usize> {
    let emulator = common::start(
        Emulator::builder()
            .fault_seed(SEED)
            .fault(
                FaultRule::new(
                    "",
                    FaultAction::Fail { code: tonic::Code::Unavailable as i32, message: "injected".into() },
                )
                .probability(TRANSIENT_RATE),
            )
            .fault(
                FaultRule::new(
                    "TextGenerationService/Completion",
                    FaultAction::CutStream { after_chunks: 2, code: tonic::Code::Unavailable as i32 },
                )
                .probability(CUT_RATE),
            ),
    )
    .await;
    let reference = common::emulator().await;
    let expected_tokens = common::sdk(&reference)
        .models()
        .completions("yandexgpt")
        .tokenize("soak call 0 asks for an answer long enough to arrive in several chunks")
        .await
        .unwrap()
        .len();
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let started = std::time::Instant::now();
    let outcomes: Vec<Outcome> = stream::iter(0..calls)
        .map(|i| {
            let model = model.clone();
            async move { one_call(&model, i, expected_tokens).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut counts = BTreeMap::new();
    for o in outcomes {
        *counts.entry(o).or_insert(0) += 1;
    }
    let rpcs = emulator.control().stats().requests;
    println!(
        "soak: {calls} calls, {rpcs} RPCs received, {:.1} s, seed {SEED}: {counts:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(counts.values().sum::<usize>(), calls);
    counts
}

fn check(counts: &BTreeMap<Outcome, usize>, calls: usize) {
    let ok = counts.get(&Outcome::Ok).copied().unwrap_or(0);
    let cut = counts.get(&Outcome::CutMidStream).copied().unwrap_or(0);
    let exhausted = counts.get(&Outcome::BudgetExhausted).copied().unwrap_or(0);
    // With 5 attempts at 20 % failure, a budget is exhausted about once per 3,000 RPCs.
    assert!(exhausted * 200 <= calls, "too many exhausted budgets: {counts:?}");
    // Mid-stream cuts hit about 5 % of the quarter of calls that stream (minus retried openings).
    assert!(cut > 0 && cut * 20 < calls, "unexpected number of cuts: {counts:?}");
    assert!(ok * 100 >= calls * 97, "too few successes: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_short() {
    let calls = 1_000;
    let counts = soak(calls, 16).await;
    check(&counts, calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "full soak, run on demand"]
async fn soak_full() {
    let calls = std::env::var("YCML_SOAK_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let counts = soak(calls, 32).await;
    check(&counts, calls);
}
