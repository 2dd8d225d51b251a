//! Using a tuned model: a tuning ends in a model URI, `gpt://<folder>/<base>/<version>@<suffix>`.
//! Keep that string (a config file, an environment variable) and name the model with it in any
//! later program; it answers like any other model. Here the URI comes from a tuning run on the
//! spot; in an application it comes from configuration.

use std::time::Duration;

use yandex_cloud_ml_sdk::Sdk;

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

/// The URI of a tuned model: `TUNED_MODEL_URI` if set, else one tuned now on one example.
async fn tuned_model_uri(sdk: &Sdk) -> Result<String, Box<dyn std::error::Error>> {
    if let Ok(uri) = std::env::var("TUNED_MODEL_URI") {
        return Ok(uri);
    }
    let path = std::env::temp_dir().join(format!("ycml-tuned-model-example-{}.jsonl", std::process::id()));
    std::fs::write(
        &path,
        r#"{"request": [{"role": "user", "text": "Who keeps the lighthouse?"}], "response": "Old Mara."}"#,
    )?;
    let train =
        sdk.datasets().completions().draft_from_path(&path).upload().poll_interval(Duration::from_millis(50)).await;
    std::fs::remove_file(&path)?;
    let tuned =
        sdk.models().completions("yandexgpt-lite").tune(&train?).poll_interval(Duration::from_millis(50)).await?;
    Ok(tuned.uri().to_owned())
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let uri = tuned_model_uri(sdk).await?;
    // The full URI is taken as it is: no folder or version is added.
    let model = sdk.models().completions(&uri);
    writeln!(out, "fine-tuned: {:?}, name: {:?}", model.fine_tuned(), model.name())?;
    writeln!(out, "answer: {}", model.run("Who keeps the lighthouse?").await?.text())?;
    Ok(())
}
