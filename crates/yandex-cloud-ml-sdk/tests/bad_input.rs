//! Rows of docs/bad-input.md that no other test covers: each bad input gets the error the
//! document promises, word for word where it quotes one, and nothing is sent that should not be.

mod common;

use std::time::Duration;

use serde_json::json;
use yandex_cloud_ml_emulator::{AuthMode, Emulator, EmulatorConfig};
use yandex_cloud_ml_sdk::{
    Credentials, ErrorKind, Remedy, Sdk, Tls,
    completions::Message,
    tools::{ToolCall, ToolChoice},
};

#[tokio::test]
async fn configurations_and_messages_that_cannot_be_sent() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");

    let e = model.configure(|c| c.tool_choice(ToolChoice::Required)).unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    assert!(e.message().starts_with("tool_choice is `required` but no tools are configured"), "{e}");

    // A stored conversation whose tool call carries arguments the API cannot represent.
    let call = ToolCall::new("f", json!("not an object"));
    let e = model.run([Message::user("q"), Message::assistant_tool_calls([call])]).await.unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    assert!(e.message().contains("arguments of the call to `f` must be a JSON object"), "{e}");

    // Messages the API cannot carry, named by their position.
    use yandex_cloud_ml_sdk::tools::ToolResult;
    for (messages, problem) in [
        (vec![Message::user("q"), Message::new("", "x")], "message 1 has an empty role"),
        (vec![Message::tool_results([])], "message 0 has an empty list of tool results"),
        (
            vec![Message::tool_results([ToolResult::function("", "x")])],
            "message 0 has a tool result without a function name",
        ),
        (vec![Message::assistant_tool_calls([])], "message 0 has an empty list of tool calls"),
    ] {
        let e = model.run(messages).await.unwrap_err();
        assert!(e.is_invalid_input(), "{e}");
        assert_eq!(e.message(), problem);
    }

    let spaced = common::sdk(&emulator).models().completions("yandex gpt");
    let e = spaced.run("hi").await.unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    assert!(e.message().starts_with("model URI `gpt://"), "{e}");
    assert!(e.message().contains("is empty or contains whitespace"), "{e}");
    assert!(emulator.control().journal().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn operation_ids_that_name_nothing() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let e = model.attach_deferred("").status().await.unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    assert_eq!(e.message(), "operation id is empty: pass the id returned by the deferred call");
    let e = model.attach_deferred("d7enotthere000000000").status().await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.message(), "Operation d7enotthere000000000 not found");
}

#[tokio::test]
async fn discovery_off_and_no_address_for_the_service() {
    let sdk = Sdk::builder()
        .folder_id("b1gfolder")
        .api_key("k")
        .disable_discovery()
        .tls(Tls::PlaintextLoopbackOnly)
        .build()
        .unwrap();
    let e = sdk.models().completions("yandexgpt").run("hi").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    assert_eq!(e.message(), "endpoint discovery is disabled, so the `ai-foundation-models` service needs an address");
    assert_eq!(e.remedy(), Some(&Remedy::SetServiceEndpoint { service: "ai-foundation-models".into() }));
    let shown = e.to_string();
    assert!(shown.contains("; use SdkBuilder::service_endpoint(\"ai-foundation-models\", \"host:port\")"), "{shown}");
}

#[tokio::test]
async fn tool_call_arguments_of_another_type() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sum {
        numbers: Vec<i64>,
    }
    let call = ToolCall::new("sum", json!({"numbers": "two"}));
    let e = call.function().unwrap().arguments_as::<Sum>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.message().starts_with("arguments of the call to `sum` do not match the expected type: "), "{e}");
    assert!(e.message().ends_with(r#"arguments were {"numbers":"two"}"#), "{e}");
}

#[tokio::test]
async fn the_largest_durations_are_capped_not_overflowed() {
    // A call with no practical deadline, and tokens that never expire.
    let config = EmulatorConfig { token_lifetime_secs: u64::MAX, ..Default::default() };
    let auth = AuthMode::Require { api_keys: vec![], iam_tokens: vec![], oauth_tokens: vec!["y0_forever".into()] };
    let emulator = common::start(Emulator::builder().config(config).auth(auth)).await;
    let sdk = common::builder(&emulator).credentials(Credentials::oauth_token("y0_forever")).build().unwrap();
    let model = sdk.models().completions("yandexgpt");
    for _ in 0..2 {
        assert_eq!(model.run("forever").timeout(Duration::MAX).await.unwrap().text(), "Echo: forever");
    }
    let exchanges = common::methods(&emulator).iter().filter(|m| m.ends_with("IamTokenService/Create")).count();
    assert_eq!(exchanges, 1, "the token is cached, not refreshed in a loop");
}
