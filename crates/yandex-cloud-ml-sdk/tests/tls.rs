//! The production path: TLS with certificate checks, against the emulator serving TLS. A
//! certificate the SDK cannot trust, or one for another host, fails at once (no retries) with
//! an error that says what to do.

mod common;

use std::time::{Duration, Instant};

use yandex_cloud_ml_emulator::{Emulator, EmulatorHandle, TlsIdentity};
use yandex_cloud_ml_sdk::{ErrorKind, Sdk, SdkBuilder, Tls};

async fn tls_emulator(identity: &TlsIdentity) -> EmulatorHandle {
    let emulator = Emulator::builder().tls(identity.clone()).start("127.0.0.1:0").await.unwrap();
    assert!(emulator.is_tls());
    emulator
}

fn builder(address: String) -> SdkBuilder {
    Sdk::builder().discovery_endpoint(address).tls(Tls::Enabled).folder_id("b1gfolder").api_key("key")
}

#[tokio::test]
async fn discovery_and_run_over_tls_with_a_custom_ca() {
    let identity = TlsIdentity::localhost().unwrap();
    let emulator = tls_emulator(&identity).await;
    let sdk = builder(emulator.endpoint()).ca_certificate_pem(identity.certificate_pem.clone()).build().unwrap();
    let result = sdk.models().completions("yandexgpt").run("over tls").await.unwrap();
    assert_eq!(result.text(), "Echo: over tls");
    let methods = common::methods(&emulator);
    assert_eq!(methods[0], "yandex.cloud.endpoint.ApiEndpointService/List");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_at_once_naming_the_remedy() {
    let identity = TlsIdentity::localhost().unwrap();
    let emulator = tls_emulator(&identity).await;
    let sdk = builder(emulator.endpoint()).build().unwrap();
    let started = Instant::now();
    let e = sdk.models().completions("yandexgpt").run("hi").timeout(Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("ca_certificate_pem") && e.to_string().contains("--ca-cert"), "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert!(e.attempts() <= 1, "not retried: {e}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_at_once() {
    let identity = TlsIdentity::self_signed(&["other.example"]).unwrap();
    let emulator = tls_emulator(&identity).await;
    let sdk = builder(format!("localhost:{}", emulator.address().port()))
        .ca_certificate_pem(identity.certificate_pem.clone())
        .build()
        .unwrap();
    let started = Instant::now();
    let e = sdk.models().completions("yandexgpt").run("hi").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.to_string().contains("not valid for name \"localhost\""), "{e}");
    assert!(e.to_string().contains("if the host name is wrong, check the endpoint address"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}
