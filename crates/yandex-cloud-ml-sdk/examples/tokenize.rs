//! `tokenize`: see the prompt as the model sees it, chat template included.

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
    let tokens = sdk.models().completions("yandexgpt").tokenize("ping").await?;
    for token in &tokens {
        writeln!(out, "{:>7} {:?}{}", token.id, token.text, if token.special { " (special)" } else { "" })?;
    }
    writeln!(out, "{} tokens", tokens.len())?;
    Ok(())
}
