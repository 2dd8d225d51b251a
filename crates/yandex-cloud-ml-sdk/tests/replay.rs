//! Replays of real recorded traffic: the SDK must send the recorded requests and decode the
//! recorded responses.

mod common;

use yandex_cloud_ml_emulator::replay::{Cassette, ReplayServer};
use yandex_cloud_ml_sdk::{AlternativeStatus, Sdk, Tls};

const FOLDER: &str = "b1ghsjum2v37c2un8h64";

async fn replay(cassette: &str) -> (ReplayServer, Sdk) {
    let cassette = Cassette::load(common::cassette(cassette)).unwrap();
    let server = ReplayServer::start(cassette, "127.0.0.1:0").await.unwrap();
    let sdk = Sdk::builder()
        .folder_id(FOLDER)
        .api_key("replay")
        .discovery_endpoint(server.endpoint())
        .tls(Tls::PlaintextLoopbackOnly)
        .build()
        .unwrap();
    (server, sdk)
}

#[tokio::test]
async fn run_replays_discovery_and_completion() {
    let (server, sdk) = replay("models/test_run.gprc.json").await;
    let result = sdk.models().completions("yandexgpt").run("hello").await.unwrap();
    assert_eq!(result.text(), "Hi there! How are you?");
    assert_eq!(result.status(), AlternativeStatus::Final);
    assert_eq!(result.model_version(), "07.03.2024");
    let u = result.usage();
    assert_eq!((u.input_text_tokens, u.completion_tokens, u.total_tokens, u.reasoning_tokens), (15, 8, 23, 0));

    server.verify_requests().unwrap();
    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(exchanges[0].method, "/yandex.cloud.endpoint.ApiEndpointService/List");
    assert!(!exchanges[0].metadata.contains_key("authorization"));
    assert_eq!(exchanges[1].method, "/yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion");
    let md = &exchanges[1].metadata;
    assert_eq!(md["authorization"], "Api-Key replay");
    assert!(md["user-agent"].starts_with("yandex-cloud-ml-sdk-rust/"), "{}", md["user-agent"]);
    assert_eq!(md["x-client-request-id"].len(), 36);
    assert!(!md.contains_key("idempotency-key"), "sync completion is not mutating");
    assert_eq!(server.unused(), 0);
}
