//! Batch inference at scale: a 100,000-row batch run by the emulator's built-in engine (rows
//! per second), then its results read by the SDK in a fresh process (time and peak RSS: the
//! results stream, so memory should not grow with them).

use std::{
    io::Write,
    process::Command,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::{Value, json};
use yandex_cloud_ml_sdk::Sdk;

use crate::{clients, measure};

fn sdk(endpoint: &str) -> Sdk {
    Sdk::builder().emulator(endpoint).folder_id(clients::FOLDER).build().expect("sdk")
}

/// Uploads `rows` prompts, runs the batch and returns the task id and the seconds it ran.
async fn run_batch(endpoint: &str, rows: usize) -> (String, f64) {
    let sdk = sdk(endpoint);
    let path = std::env::temp_dir().join(format!("ycml-bench-batch-{rows}.jsonl"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("prompts file"));
    for i in 0..rows {
        writeln!(out, "{}", json!({"request": [{"role": "user", "text": format!("benchmark prompt number {i}")}]}))
            .expect("write prompts");
    }
    out.flush().expect("flush prompts");
    drop(out);
    let dataset = sdk
        .datasets()
        .batch_requests()
        .draft_from_path(&path)
        .upload()
        .poll_interval(Duration::from_millis(50))
        .await
        .expect("upload the prompts");
    let _ = std::fs::remove_file(&path);
    let started = Instant::now();
    let task = sdk.models().completions("yandexgpt-lite").batch().run_deferred(&dataset).await.expect("batch");
    let result = task.wait().poll_interval(Duration::from_millis(50)).await.expect("batch completes");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(result.info().rows, rows as u64, "every row answered");
    (task.id().to_owned(), seconds)
}

/// Reads every result of a task in this process; prints its time and peak RSS as JSON.
pub async fn read_one(endpoint: &str, task: &str) {
    let task = sdk(endpoint).batch().get(task).await.expect("task");
    let rss_before = measure::current_rss_kib();
    let started = Instant::now();
    let mut results = std::pin::pin!(task.results());
    let mut n = 0u64;
    while let Some(record) = results.next().await {
        let record = record.expect("a result");
        assert!(record.response.is_some());
        n += 1;
    }
    println!(
        "{}",
        json!({"rows": n, "seconds": started.elapsed().as_secs_f64(), "rss_before_kib": rss_before, "peak_rss_kib": measure::peak_rss_kib()})
    );
}

pub async fn report(endpoint: &str, rows: usize) -> String {
    let (task, seconds) = run_batch(endpoint, rows).await;
    let read = Command::new(std::env::current_exe().expect("exe"))
        .args(["batch-read", "--endpoint", endpoint, "--task", &task])
        .output()
        .expect("read phase");
    let v: Value = serde_json::from_slice(&read.stdout)
        .unwrap_or_else(|_| panic!("reading results failed: {}", String::from_utf8_lossy(&read.stderr)));
    let read_s = v["seconds"].as_f64().unwrap_or(0.0);
    let peak = v["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    let before = v["rss_before_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    format!(
        "### Batch inference of {rows} rows (emulator with the built-in engine)\n\n\
         | step | time s | rate | client peak RSS MiB |\n|---|---:|---:|---:|\n\
         | emulator runs the batch (from `run_deferred` to COMPLETED, polled every 50 ms) | {seconds:.2} | {:.0} rows/s | - |\n\
         | SDK reads the {} results (`task.results()`, fresh process) | {read_s:.2} | {:.0} rows/s | {peak:.1} (+{:.1}) |\n",
        rows as f64 / seconds,
        v["rows"],
        v["rows"].as_f64().unwrap_or(0.0) / read_s.max(1e-9),
        peak - before
    )
}
