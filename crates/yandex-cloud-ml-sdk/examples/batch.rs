//! Batch inference: a file of prompts → a dataset → a batch run with progress → the answers,
//! each next to its prompt. `results` needs the `parquet` feature
//! (`cargo run --example batch --features parquet`).

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
    // One prompt per line: `{"request": [{"role": "user", "text": …}]}`.
    let path = std::env::temp_dir().join(format!("ycml-batch-example-{}.jsonl", std::process::id()));
    let prompts = ["Name a prime number", "Name a colour", "Name a planet"];
    let lines: Vec<String> =
        prompts.iter().map(|p| serde_json::json!({"request": [{"role": "user", "text": p}]}).to_string()).collect();
    std::fs::write(&path, lines.join("\n"))?;
    let dataset = sdk
        .datasets()
        .batch_requests()
        .draft_from_path(&path)
        .upload()
        .poll_interval(Duration::from_millis(50))
        .await?;

    let model = sdk.models().completions("yandexgpt-lite").configure(|c| c.temperature(0.2))?;
    let task = model.batch().run_deferred(&dataset).await?;
    let answers = task
        .wait()
        .poll_interval(Duration::from_millis(50))
        .on_progress(|p| eprintln!("{}: {}/{:?} batches", p.stage, p.done, p.total))
        .await?;
    writeln!(out, "{} answers in dataset {}", answers.info().rows, answers.id())?;

    #[cfg(feature = "parquet")]
    {
        use futures_util::StreamExt;
        let mut results = std::pin::pin!(task.results());
        while let Some(record) = results.next().await {
            let record = record?;
            writeln!(out, "{} => {}", record.request[0].text, record.response.unwrap_or_default())?;
        }
    }
    std::fs::remove_file(path)?;
    Ok(())
}
