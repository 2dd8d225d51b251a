//! The automatic credential chain read from the environment. One test function only: it
//! changes process-wide environment variables step by step. Nothing depends on the machine:
//! the metadata service is a local server, and the steps that would consider a `yc` on `PATH`
//! run in a child process with a fake `yc` and a stdin the test chooses (the chain runs `yc`
//! only for a terminal).

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yandex_cloud_ml_emulator::{AuthMode, Emulator};
use yandex_cloud_ml_sdk::Sdk;

const VARS: [&str; 7] = [
    "YC_API_KEY",
    "YC_IAM_TOKEN",
    "YC_OAUTH_TOKEN",
    "YC_SERVICE_ACCOUNT_KEY_FILE",
    "YC_METADATA_ADDR",
    "YC_TOKEN",
    "YC_FOLDER_ID",
];

fn set(var: &str, value: Option<&str>) {
    // SAFETY: this test binary runs one test (`chain_child` runs only in a child process), so
    // no other thread reads the environment while it changes.
    unsafe {
        match value {
            Some(v) => std::env::set_var(var, v),
            None => std::env::remove_var(var),
        }
    }
}

fn only(var: &str, value: &str) {
    for v in VARS {
        set(v, None);
    }
    set(var, Some(value));
}

async fn last_auth_and_text(
    emulator: &yandex_cloud_ml_emulator::EmulatorHandle,
) -> yandex_cloud_ml_sdk::Result<String> {
    // from_env reads the credentials; the emulator address is given explicitly.
    let sdk = Sdk::builder().from_env().folder_id("b1gfolder").discovery_endpoint(emulator.endpoint());
    let sdk = sdk.tls(yandex_cloud_ml_sdk::Tls::PlaintextLoopbackOnly).build()?;
    sdk.models().completions("yandexgpt").run("hi").await.map(|r| r.text().to_owned())
}

/// A local metadata service giving `token`, or (`None`) one without a service account, which
/// answers 404.
async fn metadata_server(token: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let response = match token {
        Some(token) => {
            let body = format!(r#"{{"access_token":"{token}","expires_in":3600}}"#);
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        }
        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned(),
    };
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(response.as_bytes()).await;
        }
    });
    addr
}

/// A `yc` that logs its arguments and prints a token the emulator accepts.
struct FakeYc {
    dir: std::path::PathBuf,
}

impl FakeYc {
    fn new() -> FakeYc {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ycml-fake-yc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("yc");
        let log = dir.join("calls.log");
        let body = format!("#!/bin/sh\necho \"$*\" >> '{}'\necho t1.from-fake-yc\n", log.display());
        std::fs::write(&script, body).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeYc { dir }
    }

    /// The argument lists `yc` was called with since the last look, one per line.
    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls.log"))
            .inspect(|_| std::fs::remove_file(self.dir.join("calls.log")).unwrap())
            .unwrap_or_default()
    }
}

impl Drop for FakeYc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum ChildStdin {
    Null,
    Terminal,
}

/// Runs [`chain_child`] in a child process with no credential variables, the metadata service
/// at `metadata`, the fake `yc` first on `PATH`, and the given stdin. Returns its output.
async fn chain_in_child(
    emulator: &yandex_cloud_ml_emulator::EmulatorHandle,
    metadata: &str,
    yc: &FakeYc,
    stdin: ChildStdin,
) -> String {
    let path = std::env::join_paths(
        std::iter::once(yc.dir.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::from(common::child_test("chain_child"));
    for v in VARS {
        cmd.env_remove(v);
    }
    cmd.env_remove("YC_PROFILE").env_remove("YCML_EMULATOR_HOST");
    cmd.env("YC_METADATA_ADDR", metadata).env("PATH", path).env("CHAIN_CHILD_ENDPOINT", emulator.endpoint());
    // The terminal's other end stays open until the child is done.
    let _terminal = match stdin {
        ChildStdin::Null => {
            cmd.stdin(std::process::Stdio::null());
            None
        }
        ChildStdin::Terminal => {
            let (controller, terminal) = pseudo_terminal();
            cmd.stdin(std::process::Stdio::from(terminal));
            Some(controller)
        }
    };
    let out = cmd.output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the child failed:\n{text}");
    text
}

/// A pseudo-terminal pair: (controlling side, terminal side).
fn pseudo_terminal() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the out-parameters; the null pointers are
    // allowed (no name, default terminal settings and size).
    let rc = unsafe {
        libc::openpty(&mut controller, &mut terminal, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nobody else.
    unsafe { (std::os::fd::OwnedFd::from_raw_fd(controller), std::os::fd::OwnedFd::from_raw_fd(terminal)) }
}

/// One step of `chain_order_matches_the_python_sdk`, run by it in a child process.
#[tokio::test]
#[ignore = "a step of chain_order_matches_the_python_sdk, which runs it in a child process"]
async fn chain_child() {
    let Ok(endpoint) = std::env::var("CHAIN_CHILD_ENDPOINT") else {
        eprintln!("chain_child is a step of chain_order_matches_the_python_sdk and checks nothing on its own");
        return;
    };
    let sdk = Sdk::builder().from_env().folder_id("b1gfolder").discovery_endpoint(endpoint);
    let sdk = sdk.tls(yandex_cloud_ml_sdk::Tls::PlaintextLoopbackOnly).build().unwrap();
    match sdk.models().completions("yandexgpt").run("hi").await {
        Ok(r) => println!("CHILD OK {}", r.text()),
        Err(e) => println!("CHILD ERR {e}"),
    }
}

#[tokio::test]
async fn chain_order_matches_the_python_sdk() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
    let emulator = common::start(Emulator::builder().auth(AuthMode::Require {
        api_keys: v(&["k-env"]),
        iam_tokens: v(&["t1.env", "t1.meta-env", "t1.rotating-a", "t1.rotating-b", "t1.from-fake-yc"]),
        oauth_tokens: v(&["y0_env"]),
    }))
    .await;
    let auth_of_last_call = || emulator.control().journal().last().unwrap().metadata["authorization"].clone();

    only("YC_API_KEY", "k-env");
    set("YC_IAM_TOKEN", Some("t1.env")); // lower priority, must be ignored
    assert_eq!(last_auth_and_text(&emulator).await.unwrap(), "Echo: hi");
    assert!(auth_of_last_call().starts_with("Api-Key ***"));

    only("YC_IAM_TOKEN", "t1.env");
    assert_eq!(last_auth_and_text(&emulator).await.unwrap(), "Echo: hi");
    assert!(auth_of_last_call().starts_with("Bearer ***"));

    only("YC_OAUTH_TOKEN", "y0_env");
    assert_eq!(last_auth_and_text(&emulator).await.unwrap(), "Echo: hi");
    assert!(common::methods(&emulator).contains(&"yandex.cloud.iam.v1.IamTokenService/Create".to_owned()));

    let metadata = metadata_server(Some("t1.meta-env")).await;
    only("YC_METADATA_ADDR", &metadata);
    assert_eq!(last_auth_and_text(&emulator).await.unwrap(), "Echo: hi");

    // YC_TOKEN is re-read on every request. The chain probes the metadata service first: a
    // local one without a service account.
    let no_account = metadata_server(None).await;
    only("YC_TOKEN", "t1.rotating-a");
    set("YC_METADATA_ADDR", Some(&no_account));
    let sdk = Sdk::builder()
        .from_env()
        .folder_id("b1gfolder")
        .discovery_endpoint(emulator.endpoint())
        .tls(yandex_cloud_ml_sdk::Tls::PlaintextLoopbackOnly)
        .build()
        .unwrap();
    let model = sdk.models().completions("yandexgpt");
    model.run("a").await.unwrap();
    set("YC_TOKEN", Some("t1.rotating-b"));
    model.run("b").await.unwrap();
    set("YC_TOKEN", Some("t1.unknown"));
    assert!(model.run("c").await.unwrap_err().is_auth());

    // Nothing set, on a VM without a service account (its metadata service answers 404), with
    // a `yc` on PATH: stdin not a terminal → `yc` is not run and no credentials are found.
    let yc = FakeYc::new();
    let out = chain_in_child(&emulator, &no_account, &yc, ChildStdin::Null).await;
    assert!(out.contains("CHILD ERR") && out.contains("no credentials found"), "{out}");
    assert_eq!(yc.calls(), "", "yc must not run without a terminal");
    // The same with stdin a terminal → the token comes from `yc iam create-token`.
    let out = chain_in_child(&emulator, &no_account, &yc, ChildStdin::Terminal).await;
    assert!(out.contains("CHILD OK Echo: hi"), "{out}");
    assert_eq!(yc.calls(), "iam create-token --no-user-output\n");

    // YC_FOLDER_ID feeds the folder.
    set("YC_FOLDER_ID", Some("b1genv"));
    set("YC_API_KEY", Some("k-env"));
    assert_eq!(Sdk::from_env().unwrap().folder_id(), "b1genv");
    set("YC_FOLDER_ID", None);
    assert!(Sdk::from_env().unwrap_err().to_string().contains("YC_FOLDER_ID"));

    // YCML_EMULATOR_HOST alone points from_env at the emulator, with its dev key and folder.
    for v in VARS {
        set(v, None);
    }
    let open = common::emulator().await;
    set("YCML_EMULATOR_HOST", Some(&open.endpoint()));
    let sdk = Sdk::from_env().unwrap();
    assert_eq!(sdk.folder_id(), yandex_cloud_ml_sdk::EMULATOR_FOLDER_ID);
    assert_eq!(sdk.models().completions("yandexgpt").run("env").await.unwrap().text(), "Echo: env");
    set("YCML_EMULATOR_HOST", None);
}
