//! Every credential source against the emulator, token caching and refresh, and redaction.

mod common;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use yandex_cloud_ml_emulator::{AuthMode, Emulator, EmulatorHandle};
use yandex_cloud_ml_sdk::{Credentials, Sdk};

const CREATE: &str = "yandex.cloud.iam.v1.IamTokenService/Create";
const COMPLETION: &str = "yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion";

fn require(api_keys: &[&str], iam_tokens: &[&str], oauth_tokens: &[&str]) -> AuthMode {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
    AuthMode::Require { api_keys: v(api_keys), iam_tokens: v(iam_tokens), oauth_tokens: v(oauth_tokens) }
}

fn sdk_with(emulator: &EmulatorHandle, credentials: Credentials) -> Sdk {
    common::builder(emulator).credentials(credentials).build().unwrap()
}

fn count(emulator: &EmulatorHandle, method: &str) -> usize {
    common::methods(emulator).iter().filter(|m| *m == method).count()
}

async fn hello(sdk: &Sdk) -> yandex_cloud_ml_sdk::Result<String> {
    Ok(sdk.models().completions("yandexgpt").run("hello").await?.text().to_owned())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ycml-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn api_key_and_iam_token_are_sent_as_headers() {
    let emulator = common::start(Emulator::builder().auth(require(&["key-1"], &["t1.static"], &[]))).await;
    assert_eq!(hello(&sdk_with(&emulator, Credentials::api_key("key-1"))).await.unwrap(), "Echo: hello");
    assert_eq!(hello(&sdk_with(&emulator, Credentials::iam_token("t1.static"))).await.unwrap(), "Echo: hello");
    let e = hello(&sdk_with(&emulator, Credentials::iam_token("t1.other"))).await.unwrap_err();
    assert!(e.is_auth(), "{e}");
    let auth: Vec<String> = emulator
        .control()
        .journal()
        .into_iter()
        .filter(|e| e.method == COMPLETION)
        .map(|e| e.metadata["authorization"].clone())
        .collect();
    // Credentials are fingerprinted in the journal: the scheme stays, the secret does not.
    let schemes: Vec<&str> = auth.iter().map(|a| a.split(" ***").next().unwrap()).collect();
    assert_eq!(schemes, ["Api-Key", "Bearer", "Bearer"]);
    assert!(auth.iter().all(|a| a.contains(" ***")), "{auth:?}");
}

#[tokio::test]
async fn oauth_token_is_exchanged_once_and_cached() {
    let emulator = common::start(Emulator::builder().auth(require(&[], &[], &["y0_valid"]))).await;
    let sdk = sdk_with(&emulator, Credentials::oauth_token("y0_valid"));
    for _ in 0..3 {
        assert_eq!(hello(&sdk).await.unwrap(), "Echo: hello");
    }
    assert_eq!(count(&emulator, CREATE), 1);
    let journal = emulator.control().journal();
    let create = journal.iter().find(|e| e.method == CREATE).unwrap();
    assert!(!create.metadata.contains_key("authorization"), "IAM exchange is unauthenticated");
    // The journal shows which token was exchanged only as a fingerprint.
    let shown = create.request["yandexPassportOauthToken"].as_str().unwrap();
    assert!(shown.starts_with("***") && !shown.contains("y0_valid"), "{shown}");

    let bad = sdk_with(&emulator, Credentials::oauth_token("y0_revoked-secret"));
    let e = hello(&bad).await.unwrap_err();
    assert!(e.is_auth(), "{e}");
    let shown = e.to_string();
    assert!(shown.contains("IAM token exchange failed") && shown.contains("The OAuth token is invalid"), "{e}");
    assert!(!format!("{e} {e:?}").contains("y0_revoked-secret"), "secret leaked: {e:?}");
}

#[tokio::test]
async fn concurrent_calls_share_one_token_exchange() {
    let emulator = common::start(Emulator::builder().auth(require(&[], &[], &["y0_valid"]))).await;
    let sdk = sdk_with(&emulator, Credentials::oauth_token("y0_valid"));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let sdk = sdk.clone();
            tokio::spawn(async move { hello(&sdk).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(&emulator, CREATE), 1);
    assert_eq!(count(&emulator, COMPLETION), 64);
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_before_expiry() {
    let emulator = common::start(
        Emulator::builder().auth(require(&[], &[], &["y0_valid"])).token_lifetime(Duration::from_secs(2)),
    )
    .await;
    let sdk = sdk_with(&emulator, Credentials::oauth_token("y0_valid"));
    hello(&sdk).await.unwrap();
    assert_eq!(count(&emulator, CREATE), 1);
    // The cache refreshes after half the lifetime, well before the server would reject it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    hello(&sdk).await.unwrap();
    assert_eq!(count(&emulator, CREATE), 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    hello(&sdk).await.unwrap();
    assert_eq!(count(&emulator, CREATE), 3);
}

#[tokio::test]
async fn a_rejected_cached_token_is_replaced_and_the_call_retried_once() {
    let emulator = common::start(Emulator::builder().auth(require(&[], &[], &["y0_valid"]))).await;
    let sdk = sdk_with(&emulator, Credentials::oauth_token("y0_valid"));
    hello(&sdk).await.unwrap();
    emulator.control().reset(); // the emulator forgets every token it issued
    assert_eq!(hello(&sdk).await.unwrap(), "Echo: hello");
    assert_eq!(common::methods(&emulator), [COMPLETION, CREATE, COMPLETION]);
}

#[tokio::test]
async fn service_account_key_buys_tokens_with_a_ps256_jwt() {
    let emulator = common::start(Emulator::builder().auth(require(&[], &[], &[]))).await;
    let key = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-service-account-key.json");
    let sdk = sdk_with(&emulator, Credentials::service_account_key_file(&key).unwrap());
    assert_eq!(hello(&sdk).await.unwrap(), "Echo: hello");
    let journal = emulator.control().journal();
    let create = journal.iter().find(|e| e.method == CREATE).unwrap();
    let jwt = create.request["jwt"].as_str().unwrap();
    assert!(jwt.starts_with("***") && !jwt.contains('.'), "the signed JWT is not journaled: {jwt}");
    let debug = format!("{:?}", Credentials::service_account_key_file(&key).unwrap());
    assert!(debug.contains("ajetestkeyid0000000") && !debug.contains("PRIVATE"), "{debug}");
}

#[tokio::test]
async fn metadata_service_tokens() {
    let emulator = common::start(Emulator::builder().auth(require(&[], &["t1.from-metadata"], &[]))).await;
    let hits = Arc::new(AtomicUsize::new(0));
    let host = common::metadata_server("t1.from-metadata", hits.clone()).await;
    let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
    let sdk = sdk_with(&emulator, Credentials::metadata_service_at(url));
    assert_eq!(hello(&sdk).await.unwrap(), "Echo: hello");
    assert_eq!(hello(&sdk).await.unwrap(), "Echo: hello");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "token cached");

    let unreachable = sdk_with(&emulator, Credentials::metadata_service_at("http://127.0.0.1:9/computeMetadata/v1/x"));
    let e = hello(&unreachable).await.unwrap_err();
    assert!(e.is_auth() && e.to_string().contains("metadata service"), "{e}");
}

#[cfg(unix)]
#[tokio::test]
async fn yc_cli_tokens() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = common::start(Emulator::builder().auth(require(&[], &["t1.from-yc"], &[]))).await;
    let dir = temp_dir("yc");
    let args_file = dir.join("args");
    let script = dir.join("yc");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > {}\necho 'some banner'\necho t1.from-yc\n", args_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sdk = sdk_with(&emulator, Credentials::yc_cli_at(&script, Some("work")));
    assert_eq!(hello(&sdk).await.unwrap(), "Echo: hello");
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert_eq!(args.trim(), "iam create-token --no-user-output --profile work");

    let failing = dir.join("yc-fail");
    std::fs::write(&failing, "#!/bin/sh\necho 'not logged in' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = hello(&sdk_with(&emulator, Credentials::yc_cli_at(&failing, None))).await.unwrap_err();
    assert!(e.is_auth() && e.to_string().contains("not logged in"), "{e}");
}

#[tokio::test]
async fn the_emulator_default_and_explicit_none() {
    let emulator = common::start(Emulator::builder().auth(AuthMode::AcceptAny)).await;
    let e = hello(&sdk_with(&emulator, Credentials::none())).await.unwrap_err();
    assert!(e.is_auth(), "no header is rejected: {e}");
    let open = common::start(Emulator::builder().auth(AuthMode::Open)).await;
    assert_eq!(hello(&sdk_with(&open, Credentials::none())).await.unwrap(), "Echo: hello");
    assert!(!open.control().journal()[1].metadata.contains_key("authorization"));
}

#[test]
fn nothing_secret_in_debug_output() {
    let builder = Sdk::builder().folder_id("f").api_key("AQVN-super-secret");
    let sdk = builder.clone().build().unwrap();
    for text in [format!("{builder:?}"), format!("{sdk:?}"), format!("{:?}", sdk.models().completions("yandexgpt"))] {
        assert!(!text.contains("super-secret"), "{text}");
    }
}
