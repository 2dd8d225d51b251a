//! Quickstart: start the emulator in-process and run a completion against it.
//! With real credentials, build the SDK with `Sdk::from_env()?` instead.

use yandex_cloud_ml_emulator::Emulator;
use yandex_cloud_ml_sdk::Sdk;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(&mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start("127.0.0.1:0").await?;
    let sdk = Sdk::builder().emulator(emulator.endpoint()).build()?;

    let model = sdk.models().completions("yandexgpt");
    writeln!(out, "model: {}", model.uri())?;
    let result = model.run("hello").await?;
    writeln!(out, "answer: {}", result.text())?;
    writeln!(out, "status: {:?}, model version: {}", result.status(), result.model_version())?;
    let usage = result.usage();
    writeln!(out, "tokens: {} in + {} out = {}", usage.input_text_tokens, usage.completion_tokens, usage.total_tokens)?;
    Ok(())
}
