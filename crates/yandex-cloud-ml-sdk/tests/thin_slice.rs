//! The foundation's end-to-end slice: `run("hello")` through the SDK to the emulator and back.

mod common;

use yandex_cloud_ml_emulator::{Emulator, SYNTHETIC_MODEL_VERSION};
use yandex_cloud_ml_sdk::{Sdk, completions::AlternativeStatus};

#[tokio::test]
async fn run_hello_returns_text_usage_and_model_version() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let result = sdk.models().completions("yandexgpt").run("hello").await.unwrap();
    assert_eq!(result.text(), "Echo: hello");
    assert_eq!(result.status(), AlternativeStatus::Final);
    assert_eq!(result.model_version(), SYNTHETIC_MODEL_VERSION);
    let usage = result.usage();
    assert!(usage.input_text_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(usage.total_tokens, usage.input_text_tokens + usage.completion_tokens);

    // Discovery ran once, unauthenticated, then the call went to the discovered endpoint.
    let journal = emulator.control().journal();
    assert_eq!(journal[0].method, "yandex.cloud.endpoint.ApiEndpointService/List");
    assert!(!journal[0].metadata.contains_key("authorization"));
    assert_eq!(journal[1].method, "yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion");
    assert!(journal[1].metadata["authorization"].starts_with("Api-Key ***"));
    assert_eq!(journal[1].request["modelUri"], format!("gpt://{}/yandexgpt/latest", sdk.folder_id()));
}

#[tokio::test]
async fn one_builder_call_points_the_sdk_at_the_emulator() {
    let emulator = common::emulator().await;
    let sdk = Sdk::builder().emulator(emulator.endpoint()).build().unwrap();
    let result = sdk.models().completions_with_version("yandexgpt-lite", "rc").run("ping").await.unwrap();
    assert_eq!(result.text(), "Echo: ping");
    let journal = emulator.control().journal();
    assert_eq!(journal.last().unwrap().request["modelUri"], format!("gpt://{}/yandexgpt-lite/rc", sdk.folder_id()));
}

#[tokio::test]
async fn one_channel_is_reused_across_clones_and_calls() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let model = sdk.models().completions("yandexgpt");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let model = model.clone();
        tasks.push(tokio::spawn(async move { model.run(format!("n{i}")).await.unwrap().text().to_owned() }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), format!("Echo: n{i}"));
    }
    let discoveries = common::methods(&emulator).iter().filter(|m| m.ends_with("ApiEndpointService/List")).count();
    assert_eq!(discoveries, 1, "discovery is cached");
}

#[tokio::test]
async fn emulator_rejects_wrong_folder_and_bad_key_like_the_cloud() {
    let emulator = common::start(Emulator::builder().require_api_key("right").folder("b1gallowed")).await;
    let wrong_key =
        Sdk::builder().emulator(emulator.endpoint()).folder_id("b1gallowed").api_key("wrong").build().unwrap();
    let e = wrong_key.models().completions("yandexgpt").run("x").await.unwrap_err();
    assert!(e.is_auth() && e.code() == Some(yandex_cloud_ml_sdk::Code::Unauthenticated), "{e}");

    let wrong_folder =
        Sdk::builder().emulator(emulator.endpoint()).folder_id("b1gother").api_key("right").build().unwrap();
    let e = wrong_folder.models().completions("yandexgpt").run("x").await.unwrap_err();
    assert_eq!(e.code(), Some(yandex_cloud_ml_sdk::Code::PermissionDenied), "{e}");
    assert!(e.message().contains("b1gother"));

    let ok = Sdk::builder().emulator(emulator.endpoint()).folder_id("b1gallowed").api_key("right").build().unwrap();
    assert_eq!(ok.models().completions("yandexgpt").run("x").await.unwrap().text(), "Echo: x");

    let bad_uri = ok.models().completions("gpt://b1gallowed/yandexgpt");
    let e = bad_uri.run("x").await.unwrap_err();
    assert!(e.is_invalid_argument() && e.message().contains("model_uri"), "{e}");
}
