//! Embeddings at scale against one emulator process: many short texts through the SDK's
//! `run_many`, through bare tonic calls at the same concurrency, one at a time through both,
//! and through the official Python SDK's loop (texts per second, client CPU per text).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::Value;
use tonic::transport::Channel;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb, embeddings_service_client::EmbeddingsServiceClient,
};
use yandex_cloud_ml_sdk::Sdk;

use crate::{clients, measure};

fn text(i: usize) -> String {
    format!("short text number {i} about the weather")
}

/// Texts per second and client CPU per text of one way of embedding `n` texts.
struct Run {
    texts_per_s: f64,
    cpu_per_text: Duration,
}

async fn measured<F: std::future::Future<Output = ()>>(n: usize, work: F) -> Run {
    let (cpu, started) = (measure::cpu_time(), Instant::now());
    work.await;
    let (seconds, used) = (started.elapsed().as_secs_f64(), measure::cpu_time() - cpu);
    Run { texts_per_s: n as f64 / seconds, cpu_per_text: used / n as u32 }
}

async fn sdk_run_many(endpoint: &str, n: usize, concurrency: usize) -> Run {
    let sdk = Sdk::builder().emulator(endpoint).folder_id(clients::FOLDER).build().expect("sdk");
    let model = sdk.models().text_embeddings("doc");
    model.run("warm up").await.expect("warm-up call");
    measured(n, async {
        let vectors = model.run_many((0..n).map(text)).concurrency(concurrency).await.expect("run_many");
        assert_eq!(vectors.len(), n);
    })
    .await
}

async fn bare(endpoint: &str, n: usize, concurrency: usize) -> Run {
    let channel = Channel::from_shared(format!("http://{endpoint}")).expect("uri").connect().await.expect("connect");
    let client = EmbeddingsServiceClient::new(channel);
    let auth: tonic::metadata::AsciiMetadataValue = format!("Api-Key {}", clients::API_KEY).parse().expect("ascii");
    let call = |i: usize| {
        let (mut client, auth) = (client.clone(), auth.clone());
        async move {
            let mut r = tonic::Request::new(pb::TextEmbeddingRequest {
                model_uri: format!("emb://{}/text-search-doc/latest", clients::FOLDER),
                text: text(i),
                dim: None,
            });
            r.metadata_mut().insert("authorization", auth);
            client.text_embedding(r).await.expect("bare call").into_inner()
        }
    };
    call(0).await;
    measured(n, async {
        // In input order, as run_many gives them.
        let done = futures_util::stream::iter(0..n).map(call).buffered(concurrency).count().await;
        assert_eq!(done, n);
    })
    .await
}

fn python(python: &Path, endpoint: &str, n: usize) -> Option<Run> {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/embed.py");
    let out = Command::new(python).arg(script).args([endpoint, &n.to_string()]).output().ok()?;
    if !out.status.success() {
        eprintln!("python embed bench failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(Run {
        texts_per_s: v["texts"].as_f64()? / v["seconds"].as_f64()?,
        cpu_per_text: Duration::from_secs_f64(v["cpu_us_per_text"].as_f64()? / 1e6),
    })
}

/// The report: `n` texts at `concurrency`, and `n_serial` one at a time (also for Python).
pub async fn report(endpoint: &str, n: usize, n_serial: usize, concurrency: usize, py: Option<&Path>) -> String {
    let rows = [
        (format!("SDK `run_many`, {concurrency} in flight"), n, Some(sdk_run_many(endpoint, n, concurrency).await)),
        (format!("bare tonic, {concurrency} in flight"), n, Some(bare(endpoint, n, concurrency).await)),
        ("SDK, one at a time".to_owned(), n_serial, Some(sdk_run_many(endpoint, n_serial, 1).await)),
        ("bare tonic, one at a time".to_owned(), n_serial, Some(bare(endpoint, n_serial, 1).await)),
        (
            "official Python SDK, its loop (one at a time)".to_owned(),
            n_serial,
            py.and_then(|p| python(p, endpoint, n_serial)),
        ),
    ];
    let mut out = String::from(
        "### Embeddings: short texts against the built-in embedder\n\n| client | texts | texts/s | client CPU per text |\n|---|---:|---:|---:|\n",
    );
    for (name, texts, run) in rows {
        match run {
            Some(r) => out.push_str(&format!(
                "| {name} | {texts} | {:.0} | {:.1} µs |\n",
                r.texts_per_s,
                r.cpu_per_text.as_secs_f64() * 1e6
            )),
            None => out.push_str(&format!("| {name} | {texts} | not run (no --python) | |\n")),
        }
    }
    out
}

/// The local embedding model (feature `local-model`): texts per second one at a time and four
/// at a time through the SDK against the emulator binary, the emulator's peak RSS, and the
/// reference runner on the same weights (`scripts/embedding-reference.py`, numpy) for the ratio.
pub async fn local_report(endpoint: &str, emulator_pid: u32, n: usize, reference: Option<(&Path, &Path)>) -> String {
    let single = sdk_run_many(endpoint, n, 1).await;
    let four = sdk_run_many(endpoint, n, 4).await;
    let rss = std::fs::read_to_string(format!("/proc/{emulator_pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_owned())))
        .unwrap_or_else(|| "unknown".into());
    let reference_rate = reference.and_then(|(python, model)| {
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/embedding-reference.py");
        let texts: Vec<String> = (0..20).map(text).collect();
        let out = Command::new(python).arg(script).arg(model).args(["--bench", "3"]).args(&texts).output().ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["texts_per_second"].as_f64()
    });
    let mut out = String::from(
        "### The local embedding model (all-MiniLM-L6-v2, 384 dimensions)\n\n| way | texts/s |\n|---|---:|\n",
    );
    out.push_str(&format!("| emulator, one text at a time (SDK `run`) | {:.1} |\n", single.texts_per_s));
    out.push_str(&format!("| emulator, 4 in flight (SDK `run_many`) | {:.1} |\n", four.texts_per_s));
    match reference_rate {
        Some(r) => out.push_str(&format!(
            "| reference runner (numpy, same weights, one at a time) | {r:.1} |\n\nEmulator one at a time / reference: {:.0} %. ",
            single.texts_per_s / r * 100.0
        )),
        None => out.push_str("| reference runner | not run (no --reference-python) |\n\n"),
    }
    out.push_str(&format!("Emulator peak RSS: {rss}.\n"));
    out
}
