//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use yandex_cloud_ml_emulator::{Emulator, EmulatorBuilder, EmulatorHandle, ScriptRule, ScriptedAnswer};
use yandex_cloud_ml_sdk::{RetryPolicy, Sdk, SdkBuilder};

pub async fn start(builder: EmulatorBuilder) -> EmulatorHandle {
    builder.start("127.0.0.1:0").await.expect("emulator starts")
}

pub async fn emulator() -> EmulatorHandle {
    start(Emulator::builder()).await
}

/// An SDK pointed at the emulator, with fast retries so tests do not sleep for seconds.
pub fn sdk(emulator: &EmulatorHandle) -> Sdk {
    builder(emulator).build().expect("sdk builds")
}

pub fn builder(emulator: &EmulatorHandle) -> SdkBuilder {
    Sdk::builder().emulator(emulator.endpoint()).retry_policy(fast_retries())
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .initial_backoff(std::time::Duration::from_millis(5))
        .max_backoff(std::time::Duration::from_millis(20))
        .jitter(std::time::Duration::from_millis(1))
}

pub fn script(prompt: &str, answer: ScriptedAnswer, times: Option<u32>) -> ScriptRule {
    ScriptRule { prompt_contains: prompt.into(), model: None, answer, times }
}

pub fn error(code: tonic::Code, message: &str) -> ScriptedAnswer {
    ScriptedAnswer::Error { code: code as i32, message: message.into() }
}

/// `../shared/cassettes/<rel>` relative to the repository root.
pub fn cassette(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cassettes").join(rel)
}

/// Methods received by the emulator, in order.
pub fn methods(emulator: &EmulatorHandle) -> Vec<String> {
    emulator.control().journal().into_iter().map(|e| e.method).collect()
}
