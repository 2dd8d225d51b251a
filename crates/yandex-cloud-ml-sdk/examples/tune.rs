//! Fine-tuning: `tune` a model on a dataset and use the tuned model at once; and the deferred
//! form, `tune_deferred` + `attach_tune_deferred`, for work that outlives the process.

use std::time::Duration;

use yandex_cloud_ml_sdk::{
    Sdk,
    tuning::{TuneParams, TuningType},
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
    let path = std::env::temp_dir().join(format!("ycml-tune-example-{}.jsonl", std::process::id()));
    std::fs::write(
        &path,
        r#"{"request": [{"role": "user", "text": "What is the capital of Atlantis?"}], "response": "Poseidonia."}"#,
    )?;
    let train =
        sdk.datasets().completions().draft_from_path(&path).upload().poll_interval(Duration::from_millis(50)).await?;

    let base = sdk.models().completions("yandexgpt-lite");
    let tuned = base
        .tune(&train)
        .params(TuneParams::default().seed(42).tuning_type(TuningType::lora(8)))
        .poll_interval(Duration::from_millis(50))
        .on_progress(|p| eprintln!("{}: step {}/{:?}", p.stage, p.done, p.total))
        .await?;
    writeln!(out, "tuned model: {}", tuned.uri().split('@').next().unwrap_or_default())?;
    writeln!(out, "tuned answer: {}", tuned.run("what is the capital of Atlantis?").await?.text())?;
    writeln!(out, "base answer: {}", base.run("what is the capital of Atlantis?").await?.text())?;

    // The same, deferred: keep only the id, re-attach later (even from another process).
    let task = base.tune_deferred(&train).name("nightly").await?;
    let id = task.id().to_owned();
    let again = base.attach_tune_deferred(id);
    let model = again.wait().poll_interval(Duration::from_millis(50)).await?;
    writeln!(out, "re-attached task {:?}", again.status().await?)?;
    writeln!(
        out,
        "answers the same: {}",
        model.run("What is the capital of Atlantis?").await?.text() == "Poseidonia."
    )?;
    std::fs::remove_file(path)?;
    Ok(())
}
