//! `tokenize`: see the prompt as the model sees it, chat template included.

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
    let tokens = sdk.models().completions("yandexgpt").tokenize("ping").await?;
    for token in &tokens {
        writeln!(out, "{:>7} {:?}{}", token.id, token.text, if token.special { " (special)" } else { "" })?;
    }
    writeln!(out, "{} tokens", tokens.len())?;
    Ok(())
}
