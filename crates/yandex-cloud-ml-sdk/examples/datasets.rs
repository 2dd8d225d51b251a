//! Datasets: upload a file of examples (progress reported as it goes), then list, read and
//! delete it. `read` needs the `parquet` feature (`cargo run --example datasets --features
//! parquet`); without it the example stops after listing.

use std::time::Duration;

use yandex_cloud_ml_sdk::{Sdk, datasets::DatasetStatus};

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    // A `jsonlines` file of completions: a request (messages) and the expected response.
    let path = std::env::temp_dir().join(format!("ycml-example-{}.jsonl", std::process::id()));
    let rows = [
        r#"{"request": [{"role": "user", "text": "What is our refund window?"}], "response": "30 days."}"#,
        r#"{"request": [{"role": "user", "text": "Do you ship abroad?"}], "response": "Yes, worldwide."}"#,
    ];
    std::fs::write(&path, rows.join("\n"))?;

    let dataset = sdk
        .datasets()
        .completions()
        .draft_from_path(&path)
        .name("support answers")
        .upload()
        .poll_interval(Duration::from_millis(50))
        .on_progress(|p| eprintln!("{}: {}/{:?}", p.stage, p.done, p.total))
        .await?;
    let info = dataset.info();
    writeln!(out, "uploaded {} rows; status {:?}", info.rows, info.status)?;

    let ready = sdk.datasets().list().status(DatasetStatus::Ready).await?;
    writeln!(out, "ready datasets: {}", ready.len())?;

    #[cfg(feature = "parquet")]
    {
        use futures_util::StreamExt;
        use yandex_cloud_ml_sdk::datasets::CompletionRecord;
        let mut records = std::pin::pin!(dataset.read_as::<CompletionRecord>());
        while let Some(record) = records.next().await {
            let record = record?;
            writeln!(out, "{} -> {}", record.request[0].text, record.response.unwrap_or_default())?;
        }
    }

    dataset.delete().await?;
    writeln!(out, "deleted")?;
    std::fs::remove_file(path)?;
    Ok(())
}
