//! `run_deferred` and `attach_deferred`: start a generation, keep only its id, and pick the
//! result up later (possibly from another process).

use std::time::Duration;

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

    let operation = model.run_deferred("Write a haiku about gRPC").await?;
    let id = operation.id().to_owned();
    writeln!(out, "started operation {id}; running: {}", operation.status().await?.is_running())?;

    // Later: re-attach by id alone (no RPC until you ask) and wait for the result.
    let attached = model.attach_deferred(id);
    let result = attached.wait().poll_interval(Duration::from_millis(100)).timeout(Duration::from_secs(60)).await?;
    writeln!(out, "result: {}", result.text())?;
    Ok(())
}
