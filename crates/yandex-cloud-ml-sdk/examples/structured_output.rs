//! Structured output: JSON mode, a JSON schema, and typed results with `run_structured`.

use serde::Deserialize;
use serde_json::json;
use yandex_cloud_ml_sdk::{Sdk, completions::ResponseFormat};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Numbers {
    numbers: Vec<i64>,
}

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

    let json_mode = model.configure(|c| c.response_format(ResponseFormat::Json))?;
    writeln!(out, "json mode: {}", json_mode.run("Reply with JSON: what is 2+2?").await?.text())?;

    let schema = json!({"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}}});
    let schema_mode = model.configure(|c| c.response_format(ResponseFormat::json_schema(schema)))?;
    writeln!(out, "schema: {}", schema_mode.run("collect all numbers from: 5, 4, a, 1").await?.text())?;

    let typed: Numbers = model.run_structured::<Numbers>("collect all numbers from: 5, 4, a, 1").await?;
    writeln!(out, "typed: {typed:?}, sum {}", typed.numbers.iter().sum::<i64>())?;
    Ok(())
}
