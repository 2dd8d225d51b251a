//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// `testdata/cassettes/<rel>` in the repository (recordings of the official Python SDK's test
/// suite; origin in NOTICE).
pub fn cassette(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cassettes").join(rel)
}

/// A command that runs the ignored test `name` of the current test binary on its own, in a child
/// process: for steps that need an environment or a stdin of their own. The caller sets them.
pub fn child_test(name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
    cmd
}

/// Methods received by the emulator, in order.
pub fn methods(emulator: &EmulatorHandle) -> Vec<String> {
    emulator.control().journal().into_iter().map(|e| e.method).collect()
}

/// A one-shot HTTP server playing the VM metadata service.
pub async fn metadata_server(token: &'static str, hits: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let hits = hits.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                let ok = request.starts_with("get /computemetadata/v1/instance/service-accounts/default/token")
                    && request.contains("metadata-flavor: google");
                hits.fetch_add(1, Ordering::SeqCst);
                let body = format!(r#"{{"access_token":"{token}","expires_in":3600,"token_type":"Bearer"}}"#);
                let response = if ok {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n".to_owned()
                };
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    addr.to_string()
}

/// The HTTP exchanges of a vcrpy YAML cassette under `testdata/cassettes/<rel>`: object
/// storage (binary bodies, base64 under `!!binary`) or the OpenAI-compatible API (text).
pub fn storage_cassette(rel: &str) -> Vec<yandex_cloud_ml_emulator::replay::StorageInteraction> {
    use base64::Engine as _;
    use yaml_rust2::{Yaml, YamlLoader};
    let text = std::fs::read_to_string(cassette(rel)).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let binary = text.contains("!!binary");
    let text_of = |y: &Yaml| y.as_str().unwrap_or_default().to_owned();
    docs[0]["interactions"]
        .as_vec()
        .expect("a vcrpy cassette has interactions")
        .iter()
        .map(|it| {
            let (request, response) = (&it["request"], &it["response"]);
            let mut recorded = yandex_cloud_ml_emulator::replay::StorageInteraction::new(
                &text_of(&request["method"]),
                &text_of(&request["uri"]),
                text_of(&request["body"]).into_bytes(),
                response["status"]["code"].as_i64().unwrap_or(200) as u16,
            );
            let body = text_of(&response["body"]["string"]);
            recorded.body = if binary {
                // Base64, split over lines.
                let body: String = body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default()
            } else {
                body.into_bytes()
            };
            if let Some(headers) = response["headers"].as_hash() {
                for (name, values) in headers {
                    for value in values.as_vec().into_iter().flatten() {
                        recorded.headers.push((text_of(name), text_of(value)));
                    }
                }
            }
            recorded
        })
        .collect()
}
