//! Quickstart: one completion. With `YC_FOLDER_ID` and credentials (`YC_API_KEY`, …) in the
//! environment it asks Yandex Cloud (`Sdk::from_env()`); without them, an emulator started in
//! this process (see `connect/mod.rs`).

use yandex_cloud_ml_sdk::Sdk;

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let model = sdk.models().completions("yandexgpt");
    writeln!(out, "model: {}", model.uri())?;
    let result = model.run("hello").await?;
    writeln!(out, "answer: {}", result.text())?;
    writeln!(out, "status: {:?}, model version: {}", result.status(), result.model_version())?;
    let usage = result.usage();
    writeln!(out, "tokens: {} in + {} out = {}", usage.input_text_tokens, usage.completion_tokens, usage.total_tokens)?;
    Ok(())
}
