//! The automatic credential chain read from the environment. One test function only: it
//! changes process-wide environment variables step by step.

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
    // SAFETY: this test binary has a single test, so no other thread reads the environment
    // while it changes.
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

async fn metadata_server(token: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0; 4096];
            let _ = sock.read(&mut buf).await;
            let body = format!(r#"{{"access_token":"{token}","expires_in":3600}}"#);
            let _ = sock
                .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes())
                .await;
        }
    });
    addr
}

#[tokio::test]
async fn chain_order_matches_the_python_sdk() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
    let emulator = common::start(Emulator::builder().auth(AuthMode::Require {
        api_keys: v(&["k-env"]),
        iam_tokens: v(&["t1.env", "t1.meta-env", "t1.rotating-a", "t1.rotating-b"]),
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

    let metadata = metadata_server("t1.meta-env").await;
    only("YC_METADATA_ADDR", &metadata);
    assert_eq!(last_auth_and_text(&emulator).await.unwrap(), "Echo: hi");

    // YC_TOKEN is re-read on every request.
    only("YC_TOKEN", "t1.rotating-a");
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

    for v in VARS {
        set(v, None);
    }
    let e = last_auth_and_text(&emulator).await.unwrap_err();
    assert!(e.is_auth() && e.to_string().contains("no credentials found"), "{e}");

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
