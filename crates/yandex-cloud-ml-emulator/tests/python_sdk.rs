//! The official Python SDK (PyPI `yandex-cloud-ml-sdk`, pinned in `python/requirements.txt`)
//! pointed at the emulator: run, run_stream, run_deferred + wait, attach_deferred, tokenize,
//! a tool-call round trip, JSON-schema output, a dataset upload and read, a tuning whose model
//! answers what it learned, and a batch run, all as if it were the cloud.
//!
//! The interpreter is `$YCML_PYTHON`, or the virtual environment `scripts/python-sdk.sh`
//! installs on first use (network access to PyPI); if neither works the tests fail.

mod support;

use std::path::{Path, PathBuf};

use support::python_with_sdk;

use yandex_cloud_ml_emulator::Emulator;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Runs `tests/python/<script>` with the official SDK against `emulator`; returns its stdout
/// after checking that it succeeded and printed `done`.
async fn python_script(script: &str, emulator: &yandex_cloud_ml_emulator::EmulatorHandle, done: &str) -> String {
    let python = tokio::task::spawn_blocking(python_with_sdk).await.unwrap();
    let output = tokio::process::Command::new(&python)
        .arg(python_dir().join(script))
        .arg(emulator.endpoint())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python {script} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(done), "{stdout}");
    stdout
}

/// The emulator the interop scripts expect: their API key and folder.
async fn interop_emulator() -> yandex_cloud_ml_emulator::EmulatorHandle {
    Emulator::builder()
        .require_api_key("python-interop-key")
        .folder("b1gpythoninterop")
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

/// Checks that the script's output has an `ok <check>` line for each check.
fn assert_checks(stdout: &str, checks: &[&str]) {
    for check in checks {
        assert!(stdout.lines().any(|l| l == format!("ok {check}")), "missing check {check}:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdk_works_against_the_emulator() {
    let emulator = interop_emulator().await;
    let stdout = python_script("interop.py", &emulator, "all python interop checks passed").await;
    assert_checks(
        &stdout,
        &[
            "run",
            "run_stream final",
            "run_deferred + wait",
            "attach_deferred",
            "tokenize",
            "tool round trip",
            "json schema output",
            "dataset upload",
            "dataset read",
            "tune",
            "tuned model run",
            "base model unchanged",
            "embeddings run",
            "embeddings dimensions",
            "embeddings query model",
            "embeddings tune",
            "tuned embeddings run",
            "tuned embeddings closer",
            "batch run",
            "batch labels",
            "batch answers",
        ],
    );
    // The Python SDK used the emulator like the cloud: discovery first, credentials on the rest.
    let journal = emulator.control().journal();
    assert_eq!(journal[0].method, "yandex.cloud.endpoint.ApiEndpointService/List");
    let completion = journal.iter().find(|e| e.method.ends_with("TextGenerationService/Completion")).unwrap();
    assert!(completion.metadata["authorization"].starts_with("Api-Key ***"));
    assert!(completion.metadata["user-agent"].contains("yandex-ai-studio-sdk"));
}

/// The OpenAI-compatible API: the official Python SDK's `sdk.chat` and the stock `openai`
/// package (pinned) against the emulator: run, streams, tools, JSON schema, embeddings, the
/// listing and errors.
#[tokio::test(flavor = "multi_thread")]
async fn python_openai_clients_work_against_the_emulator() {
    let emulator = interop_emulator().await;
    let stdout = python_script("chat_interop.py", &emulator, "all chat interop checks passed").await;
    assert_checks(
        &stdout,
        &[
            "sdk.chat run",
            "sdk.chat run_stream",
            "sdk.chat run_stream ends",
            "sdk.chat tool round trip",
            "sdk.chat streamed tool call",
            "sdk.chat json schema",
            "sdk.chat embeddings",
            "sdk.chat models",
            "openai run",
            "openai stream usage",
            "openai tool round trip",
            "openai streamed tool call",
            "openai json schema",
            "openai embeddings",
            "openai models",
            "openai error",
            "openai auth error",
        ],
    );
    // Both clients' chat calls went through admission as the gRPC method they stand for.
    let journal = emulator.control().journal();
    let chat = journal.iter().filter(|e| e.method.ends_with("TextGenerationService/Completion")).count();
    assert!(chat >= 10, "{chat} chat calls journaled");
}

/// The same SDK against the emulator running a real model (feature `local-model`; the model is
/// fetched on first use by `scripts/fetch-model.sh`): one run and one stream.
#[cfg(feature = "local-model")]
#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdk_works_against_the_real_local_model() {
    let Some(model) = support::local_model("official_python_sdk_works_against_the_real_local_model") else { return };
    let emulator = Emulator::builder().model(model).start("127.0.0.1:0").await.unwrap();
    python_script("interop_local_model.py", &emulator, "all local model checks passed").await;
}
