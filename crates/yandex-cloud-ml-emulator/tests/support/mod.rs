//! Prerequisites of the tests that need more than the repository: the official Python SDK and
//! the local model. Each is provided on first use by its script under `scripts/` (which takes a
//! lock, so parallel test processes do the work once, and caches it under
//! `$XDG_CACHE_HOME/yandex-cloud-ml-sdk-rs`); if it cannot be had, the test fails with the
//! reason. Only `YCML_SKIP_MODEL=1` skips the local-model tests, and says so on the terminal.
#![allow(dead_code)] // each test file uses a part

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The file name of the model `scripts/fetch-model.sh` provides.
pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// `scripts/<name>` in the repository.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

/// Runs a provisioning script once per process and returns the path on the last line of its
/// stdout, or why it failed.
fn provide(cell: &'static OnceLock<Result<PathBuf, String>>, name: &str) -> Result<PathBuf, String> {
    cell.get_or_init(|| {
        let out = Command::new("bash").arg(script(name)).output().map_err(|e| format!("cannot run bash: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let path = stdout.lines().last().map(PathBuf::from).filter(|p| p.exists());
        match path {
            Some(path) if out.status.success() => Ok(path),
            _ => Err(format!("scripts/{name} failed ({}):\n{stderr}{stdout}", out.status)),
        }
    })
    .clone()
}

/// The local embedding model's directory for `test`: `$YCML_EMBEDDING_MODEL`, or the one
/// `scripts/fetch-embedding-model.sh` fetches; `None` only under `YCML_SKIP_MODEL=1` (said on
/// the terminal, as for the generation model).
pub fn embedding_model(test: &str) -> Option<PathBuf> {
    if std::env::var_os("YCML_SKIP_MODEL").is_some_and(|v| v == "1") {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: YCML_SKIP_MODEL=1 (it needs the local embedding model; unset the variable to run it) ***\n"
        );
        return None;
    }
    if let Some(p) = std::env::var_os("YCML_EMBEDDING_MODEL") {
        let p = PathBuf::from(p);
        assert!(
            p.is_dir(),
            "YCML_EMBEDDING_MODEL={} is not a directory; unset it to let the test fetch it",
            p.display()
        );
        return Some(p);
    }
    static MODEL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    Some(provide(&MODEL, "fetch-embedding-model.sh").unwrap_or_else(|e| {
        panic!("{test} needs the local embedding model, which could not be fetched: {e}\n(YCML_SKIP_MODEL=1 skips such tests)")
    }))
}

/// A Python interpreter with the pinned official SDK: `$YCML_PYTHON`, or the environment
/// `scripts/python-sdk.sh` installs.
pub fn python_with_sdk() -> PathBuf {
    if let Some(p) = std::env::var_os("YCML_PYTHON") {
        let p = PathBuf::from(p);
        let imports = Command::new(&p).args(["-c", "import yandex_cloud_ml_sdk, pyarrow, openai"]).output();
        assert!(
            imports.is_ok_and(|o| o.status.success()),
            "YCML_PYTHON={} cannot import yandex_cloud_ml_sdk, pyarrow and openai; unset it to let the test install them",
            p.display()
        );
        return p;
    }
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    provide(&PYTHON, "python-sdk.sh").unwrap_or_else(|e| panic!("the official Python SDK could not be installed: {e}"))
}

/// The local model for `test`: `$YCML_MODEL`, or the file `scripts/fetch-model.sh` fetches.
/// `None` only under `YCML_SKIP_MODEL=1`, announced on the terminal (past the test harness's
/// output capture) so a skipped test is never mistaken for a passed one.
pub fn local_model(test: &str) -> Option<PathBuf> {
    if std::env::var_os("YCML_SKIP_MODEL").is_some_and(|v| v == "1") {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: YCML_SKIP_MODEL=1 (it needs the local model; unset the variable to run it) ***\n"
        );
        return None;
    }
    if let Some(p) = std::env::var_os("YCML_MODEL") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "YCML_MODEL={} is not a file; unset it to let the test fetch the model", p.display());
        return Some(p);
    }
    static MODEL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    Some(provide(&MODEL, "fetch-model.sh").unwrap_or_else(|e| {
        panic!("{test} needs the local model, which could not be fetched: {e}\n(YCML_SKIP_MODEL=1 skips such tests)")
    }))
}
