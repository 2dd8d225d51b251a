//! `configure`: temperature, token limit and reasoning; every value is validated.

use yandex_cloud_ml_sdk::{
    Sdk,
    completions::{AlternativeStatus, ReasoningMode},
};

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let base = sdk.models().completions_with_version("yandexgpt", "rc");

    let model = base.configure(|c| c.temperature(0.2).max_tokens(3).reasoning_mode(ReasoningMode::EnabledHidden))?;
    writeln!(out, "config: {:?}", model.config())?;
    let result = model.run("explain ownership in Rust in one long paragraph").await?;
    assert_eq!(result.status(), AlternativeStatus::TruncatedFinal);
    writeln!(out, "truncated answer: {:?} ({} reasoning tokens)", result.text(), result.usage().reasoning_tokens)?;

    // Invalid settings never reach the network.
    let error = base.configure(|c| c.temperature(1.7)).unwrap_err();
    writeln!(out, "rejected: {error}")?;
    Ok(())
}
