//! The official Python SDK (PyPI `yandex-cloud-ml-sdk`, pinned in `python/requirements.txt`)
//! pointed at the emulator: run, run_stream, run_deferred + wait, attach_deferred, tokenize,
//! a tool-call round trip, JSON-schema output, a dataset upload and read, a tuning whose model
//! answers what it learned, and a batch run, all as if it were the cloud.
//!
//! The interpreter is `$YCML_PYTHON` (`.ci/run` installs it); without it the test creates a
//! virtual environment with the pinned packages under Cargo's test temp directory.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use yandex_cloud_ml_emulator::Emulator;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

fn has_sdk(python: &Path) -> bool {
    Command::new(python).args(["-c", "import yandex_cloud_ml_sdk, pyarrow"]).output().is_ok_and(|o| o.status.success())
}

/// A Python interpreter with the pinned official SDK.
fn python_with_sdk() -> PathBuf {
    if let Some(p) = std::env::var_os("YCML_PYTHON") {
        let p = PathBuf::from(p);
        assert!(has_sdk(&p), "YCML_PYTHON={} cannot import yandex_cloud_ml_sdk; run .ci/run or unset it", p.display());
        return p;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-sdk-venv");
    let python = venv.join("bin/python");
    if has_sdk(&python) {
        return python;
    }
    let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 is installed");
    assert!(status.success(), "python3 -m venv failed");
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "-r"])
        .arg(python_dir().join("requirements.txt"))
        .status()
        .expect("pip runs");
    assert!(status.success(), "installing the pinned Python SDK from PyPI failed");
    python
}

#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdk_works_against_the_emulator() {
    let python = tokio::task::spawn_blocking(python_with_sdk).await.unwrap();
    let emulator = Emulator::builder()
        .require_api_key("python-interop-key")
        .folder("b1gpythoninterop")
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let output = tokio::process::Command::new(&python)
        .arg(python_dir().join("interop.py"))
        .arg(emulator.endpoint())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python interop failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("all python interop checks passed"), "{stdout}");
    for check in [
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
        "batch run",
        "batch labels",
        "batch answers",
    ] {
        assert!(stdout.lines().any(|l| l == format!("ok {check}")), "missing check {check}:\n{stdout}");
    }
    // The Python SDK used the emulator like the cloud: discovery first, credentials on the rest.
    let journal = emulator.control().journal();
    assert_eq!(journal[0].method, "yandex.cloud.endpoint.ApiEndpointService/List");
    let completion = journal.iter().find(|e| e.method.ends_with("TextGenerationService/Completion")).unwrap();
    assert!(completion.metadata["authorization"].starts_with("Api-Key ***"));
    assert!(completion.metadata["user-agent"].contains("yandex-ai-studio-sdk"));
}

/// The same SDK against the emulator running a real model (feature `local-model`; the model is
/// fetched by `scripts/fetch-model.sh`): one run and one stream.
#[cfg(feature = "local-model")]
#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdk_works_against_the_real_local_model() {
    let home = std::env::var_os("HOME").unwrap_or_default();
    let model = std::env::var_os("YCML_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(&home).join(".cache/yandex-cloud-ml-sdk-rs/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    if !model.is_file() {
        assert!(std::env::var_os("YCML_REQUIRE_MODEL").is_none(), "the local model {} is missing", model.display());
        eprintln!("skipped: no local model at {} (run scripts/fetch-model.sh)", model.display());
        return;
    }
    let python = tokio::task::spawn_blocking(python_with_sdk).await.unwrap();
    let emulator = Emulator::builder().model(model).start("127.0.0.1:0").await.unwrap();
    let output = tokio::process::Command::new(&python)
        .arg(python_dir().join("interop_local_model.py"))
        .arg(emulator.endpoint())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python interop failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("all local model checks passed"), "{stdout}");
}
