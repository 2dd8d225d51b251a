//! With payload logging on and every log level captured (the SDK's and its libraries' TRACE
//! output), no credential of any kind appears in the logs, errors or `Debug` output.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex, atomic::AtomicUsize},
};

use yandex_cloud_ml_emulator::{AuthMode, Emulator};
use yandex_cloud_ml_sdk::Credentials;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credential_reaches_the_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt().with_env_filter("trace").with_writer(move || writer.clone()).with_ansi(false).init();

    let emulator = common::start(Emulator::builder().auth(AuthMode::Require {
        api_keys: vec!["AQVN-api-key-secret".into()],
        iam_tokens: vec!["t1.static-iam-secret".into(), "t1.metadata-secret".into(), "t1.yc-cli-secret".into()],
        oauth_tokens: vec!["y0_oauth-secret".into()],
    }))
    .await;
    let key_file =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-service-account-key.json");
    let metadata = common::metadata_server("t1.metadata-secret", Arc::new(AtomicUsize::new(0))).await;
    let mut kinds = vec![
        Credentials::api_key("AQVN-api-key-secret"),
        Credentials::iam_token("t1.static-iam-secret"),
        Credentials::oauth_token("y0_oauth-secret"),
        Credentials::service_account_key_file(&key_file).unwrap(),
        Credentials::metadata_service_at(format!(
            "http://{metadata}/computeMetadata/v1/instance/service-accounts/default/token"
        )),
    ];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let script = std::env::temp_dir().join(format!("ycml-secrets-yc-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\necho t1.yc-cli-secret\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        kinds.push(Credentials::yc_cli_at(&script, None));
    }
    for credentials in kinds {
        let debug = format!("{credentials:?}");
        let sdk = common::builder(&emulator).credentials(credentials).log_payloads(true).build().unwrap();
        let answer = sdk.models().completions("yandexgpt").run("hello").await.unwrap();
        assert_eq!(answer.text(), "Echo: hello", "{debug}");
        // A rejected credential's error must not show it either.
        emulator.control().expire_tokens();
        let _ = format!("{:?}", sdk.models().completions("yandexgpt").run("again").await);
    }
    let bad = common::builder(&emulator).credentials(Credentials::oauth_token("y0_rejected-secret")).build().unwrap();
    let e = bad.models().completions("yandexgpt").run("hello").await.unwrap_err();
    tracing::error!(error = %e, debug = ?e, "the error as a program would log it");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("request payload") && text.contains("Echo: hello"), "payload logging is on");
    let key_material = std::fs::read_to_string(&key_file).unwrap();
    let private_key_line = key_material.split("\\n").nth(2).unwrap().to_owned();
    for secret in [
        "AQVN-api-key-secret",
        "t1.static-iam-secret",
        "y0_oauth-secret",
        "y0_rejected-secret",
        "t1.metadata-secret",
        "t1.yc-cli-secret",
        "t1.emulator.", // every token the emulator issues
        "eyJ",          // any JWT (its header starts like this)
        &private_key_line,
    ] {
        assert!(!text.contains(secret), "`{secret}` leaked into the logs");
    }
}
