//! The memory probes of `ycml-bench hostile`: the data paths that once let the emulator's
//! memory grow without bound (validation of rows with huge ignored fields or many tiny
//! messages, tuning on huge prompts, uploads that trickle), each against a fresh release
//! emulator whose peak RSS is read afterwards, next to the figures the hardening issue found.

use std::{path::Path, time::Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1::{
    self as dpb, dataset_service_client::DatasetServiceClient,
};
use yandex_cloud_ml_sdk::{Sdk, datasets::Dataset};

use crate::{EmulatorProcess, clients, start_emulator};

fn sdk_for(emulator: &EmulatorProcess) -> Sdk {
    Sdk::builder()
        .emulator(&emulator.endpoint)
        .folder_id(clients::FOLDER)
        .api_key(clients::API_KEY)
        .build()
        .expect("sdk")
}

fn peak_mib(emulator: &EmulatorProcess) -> f64 {
    crate::hostile::peak_rss_mib(emulator.child.id())
}

/// Writes `rows` JSON lines to a file in `dir` and uploads it as a completion dataset.
async fn upload(sdk: &Sdk, dir: &Path, name: &str, rows: impl Iterator<Item = String>) -> Dataset {
    let path = dir.join(name);
    let mut file = tokio::fs::File::create(&path).await.expect("create");
    for row in rows {
        file.write_all(row.as_bytes()).await.expect("write");
        file.write_all(b"\n").await.expect("write");
    }
    file.flush().await.expect("flush");
    let dataset = sdk.datasets().completions().draft_from_path(&path).upload().await.expect("upload");
    let _ = tokio::fs::remove_file(&path).await;
    dataset
}

/// 16 rows of ~4 MB whose ignored field holds 2 million zeros (64 MB).
fn wide_rows() -> impl Iterator<Item = String> {
    let zeros = format!("[{}0]", "0,".repeat(1_999_999));
    (0..16).map(move |i| {
        format!(r#"{{"request": [{{"role": "user", "text": "q{i}"}}], "response": "a{i}", "ignored": {zeros}}}"#)
    })
}

/// 8 rows of 130,000 tiny messages (~32 MB).
fn tiny_message_rows() -> impl Iterator<Item = String> {
    let many = r#"{"role": "user", "text": "a"},"#.repeat(130_000);
    (0..8).map(move |_| format!(r#"{{"request": [{many}{{"role": "user", "text": "end"}}], "response": "r"}}"#))
}

/// 16 rows whose prompt is ~4 MB of words (64 MB).
fn huge_prompt_rows() -> impl Iterator<Item = String> {
    let prompt = "word ".repeat(800_000);
    (0..16).map(move |i| {
        json!({"request": [{"role": "user", "text": format!("{i} {prompt}")}], "response": format!("a{i}")}).to_string()
    })
}

/// Starts a PUT to a presigned URL declaring `length` bytes and sends one byte.
async fn trickle(url: &str, length: u64) -> tokio::net::TcpStream {
    let uri: http::Uri = url.parse().expect("url");
    let host = uri.authority().expect("host").as_str().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("connect");
    let head = format!(
        "PUT {} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {length}\r\n\r\nx",
        uri.path_and_query().expect("path")
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream
}

/// Runs the three probes; returns the report's section.
pub async fn report() -> String {
    let dir = std::env::temp_dir().join(format!("ycml-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut out = vec![
        "### Memory of the data paths (`ycml-bench hostile`, a fresh release emulator per probe)".to_owned(),
        String::new(),
        "| probe | emulator peak RSS | outcome | found by the hardening issue |".to_owned(),
        "|---|---:|---|---|".to_owned(),
    ];

    // Validation: one dataset with huge ignored fields and three of tiny messages, at once.
    let emulator = start_emulator(json!({"journal_capacity": 0}));
    let sdk = sdk_for(&emulator);
    let started = Instant::now();
    let (wide, tiny1, tiny2, tiny3) = tokio::join!(
        upload(&sdk, &dir, "wide.jsonl", wide_rows()),
        upload(&sdk, &dir, "tiny1.jsonl", tiny_message_rows()),
        upload(&sdk, &dir, "tiny2.jsonl", tiny_message_rows()),
        upload(&sdk, &dir, "tiny3.jsonl", tiny_message_rows()),
    );
    let rows: u64 = [&wide, &tiny1, &tiny2, &tiny3].iter().map(|d| d.info().rows).sum();
    out.push(format!(
        "| validating 64 MB of rows with 2 million ignored zeros each, and 3 × 32 MB of rows of 130,000 tiny messages, at once | {:.0} MiB | {rows} rows READY in {:.1} s | 1,381 MiB for the first alone; 4,976 MiB for four such validations |",
        peak_mib(&emulator),
        started.elapsed().as_secs_f64()
    ));
    drop(emulator);

    // Tuning: three tunings on 16 rows of ~4 MB prompts.
    let emulator = start_emulator(json!({"journal_capacity": 0}));
    let sdk = sdk_for(&emulator);
    let train = upload(&sdk, &dir, "huge.jsonl", huge_prompt_rows()).await;
    let mut peaks = Vec::new();
    for _ in 0..3 {
        sdk.models().completions("yandexgpt-lite").tune(&train).await.expect("tune");
        peaks.push(format!("{:.0}", peak_mib(&emulator)));
    }
    out.push(format!(
        "| three tunings on 16 rows of ~4 MB prompts (64 MB) | {} MiB after each | 3 tuned models | 1,144 / 2,142 / 3,132 MiB |",
        peaks.join(" / ")
    ));
    drop(emulator);

    // Uploads that trickle: three PUTs declaring 300 MiB each sending one byte, under a 1 GiB
    // budget, while a 200 MiB dataset goes up.
    let emulator = start_emulator(json!({"journal_capacity": 0, "max_stored_bytes": 1u64 << 30}));
    let sdk = sdk_for(&emulator);
    let mut raw = DatasetServiceClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", emulator.endpoint))
            .expect("uri")
            .connect()
            .await
            .expect("connect"),
    );
    let mut held = Vec::new();
    for _ in 0..3 {
        let create = dpb::CreateDatasetRequest {
            folder_id: clients::FOLDER.into(),
            task_type: "TextToTextGeneration".into(),
            upload_format: "jsonlines".into(),
            ..Default::default()
        };
        let id = raw.create(crate::hostile::authorized(create)).await.expect("create").into_inner().dataset_id;
        let url = dpb::GetUploadDraftUrlRequest { dataset_id: id, size_bytes: 300 << 20 };
        let url = raw.get_upload_draft_url(crate::hostile::authorized(url)).await.expect("url").into_inner().upload_url;
        held.push(trickle(&url, 300 << 20).await);
    }
    let row = json!({"request": [{"role": "user", "text": "x".repeat(10_000)}], "response": "y"}).to_string();
    let path = dir.join("big.jsonl");
    std::fs::write(&path, (0..20_000).map(|_| row.as_str()).collect::<Vec<_>>().join("\n")).expect("write");
    let started = Instant::now();
    let outcome = match sdk.datasets().completions().draft_from_path(&path).upload().await {
        Ok(d) => format!("the 200 MiB dataset is {} after {:.1} s", d.status(), started.elapsed().as_secs_f64()),
        Err(e) => format!("the 200 MiB upload failed: {e}"),
    };
    out.push(format!(
        "| 3 PUTs declaring 300 MiB each that send one byte, under a 1 GiB budget, while a 200 MiB dataset goes up | {:.0} MiB | {outcome} | 3 trickles declaring 5 GiB held 15 of 16 GiB; a real 2 GiB upload got `503 SlowDown` |",
        peak_mib(&emulator)
    ));
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
    out.join("\n")
}
