//! Dataset upload throughput: one file sent to the emulator's storage by a bare HTTP PUT (the
//! floor), by the SDK in one PUT, and by the SDK in parts at parallelism 1 and 4. Each run is
//! a fresh process, so its peak RSS is its own; the SDK streams the file, so its memory should
//! not grow with the file.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tonic::transport::Channel;
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1::{self as pb, dataset_service_client::DatasetServiceClient};
use yandex_cloud_ml_sdk::Sdk;

use crate::{clients, measure};

const MIB: u64 = 1 << 20;

/// A file of valid completion rows, `size_mib` MiB, made once and reused.
pub fn test_file(size_mib: u64) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ycml-bench-upload-{size_mib}mib.jsonl"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= size_mib * MIB) {
        return path;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create the test file"));
    let padding = "x".repeat(900);
    let (mut written, mut i) = (0u64, 0u64);
    while written < size_mib * MIB {
        let line = format!(
            "{{\"request\": [{{\"role\": \"user\", \"text\": \"question {i}\"}}], \"response\": \"answer {i} {padding}\"}}\n"
        );
        out.write_all(line.as_bytes()).expect("write the test file");
        written += line.len() as u64;
        i += 1;
    }
    out.flush().expect("flush the test file");
    path
}

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("authorization", format!("Api-Key {}", clients::API_KEY).parse().expect("ascii"));
    r
}

/// One measured upload in this process; prints `{seconds, peak_rss_kib, …}` as JSON.
pub async fn one(endpoint: &str, file: &Path, mode: &str, parallelism: usize) {
    let size = std::fs::metadata(file).expect("the test file").len();
    let rss_before = measure::current_rss_kib();
    let started = Instant::now();
    match mode {
        "bare" => bare_put(endpoint, file, size).await,
        _ => {
            let sdk = Sdk::builder().emulator(endpoint).folder_id(clients::FOLDER).build().expect("sdk");
            let chunk = if mode == "single" { 5 * 1024 * MIB } else { 100 * MIB };
            let op = sdk
                .datasets()
                .completions()
                .draft_from_path(file)
                .chunk_size(chunk)
                .parallelism(parallelism)
                .upload_timeout(Duration::from_secs(600))
                .upload_deferred()
                .await
                .expect("upload");
            // Only the upload is measured; the validation it started is not needed.
            let _ = op.cancel().await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"seconds": seconds, "bytes": size, "rss_before_kib": rss_before, "peak_rss_kib": measure::peak_rss_kib()})
    );
}

/// A dataset and its upload URL through the generated client, then one streamed PUT.
async fn bare_put(endpoint: &str, file: &Path, size: u64) {
    let channel = Channel::from_shared(format!("http://{endpoint}")).expect("uri").connect().await.expect("connect");
    let mut datasets = DatasetServiceClient::new(channel);
    let create = pb::CreateDatasetRequest {
        folder_id: clients::FOLDER.into(),
        task_type: "TextToTextGeneration".into(),
        upload_format: "jsonlines".into(),
        ..Default::default()
    };
    let id = datasets.create(authorized(create)).await.expect("create").into_inner().dataset_id;
    let url = datasets
        .get_upload_draft_url(authorized(pb::GetUploadDraftUrlRequest { dataset_id: id, size_bytes: size as i64 }))
        .await
        .expect("upload url")
        .into_inner()
        .upload_url;
    let uri: http::Uri = url.parse().expect("url");
    let stream = tokio::net::TcpStream::connect(uri.authority().expect("host").as_str()).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let reader = tokio::fs::File::open(file).await.expect("open");
    let body = StreamBody::new(
        tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10).map_ok(|b: Bytes| http_body::Frame::data(b)),
    );
    let request = http::Request::put(uri.path_and_query().expect("path").as_str())
        .header("host", uri.authority().expect("host").as_str())
        .header("content-length", size)
        .body(body)
        .expect("request");
    let response = sender.send_request(request).await.expect("put");
    assert!(response.status().is_success(), "bare PUT: {}", response.status());
    let _ = response.into_body().collect().await;
}

/// Runs every mode in its own process and returns the report's section.
pub fn report(endpoint: &str, size_mib: u64) -> String {
    let file = test_file(size_mib);
    let mut out = format!(
        "### Dataset upload of a {size_mib} MiB file to the emulator (in-memory storage; each run a fresh process)\n\n\
         | client | MiB/s | client peak RSS MiB | RSS growth MiB |\n|---|---:|---:|---:|\n"
    );
    let modes = [
        ("bare HTTP PUT (hyper, one request)", "bare", 1),
        ("this SDK, one PUT", "single", 1),
        ("this SDK, 100 MiB parts, parallelism 1", "multipart", 1),
        ("this SDK, 100 MiB parts, parallelism 4", "multipart", 4),
    ];
    for (name, mode, parallelism) in modes {
        let run = Command::new(std::env::current_exe().expect("exe"))
            .args(["upload-one", "--endpoint", endpoint, "--mode", mode, "--parallelism", &parallelism.to_string()])
            .arg("--file")
            .arg(&file)
            .output()
            .expect("upload phase");
        let v: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|_| {
            panic!("upload {mode} failed: {}", String::from_utf8_lossy(&run.stderr));
        });
        let mib = v["bytes"].as_f64().unwrap_or(0.0) / MIB as f64;
        let peak = v["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
        let before = v["rss_before_kib"].as_f64().unwrap_or(0.0) / 1024.0;
        out.push_str(&format!(
            "| {name} | {:.0} | {peak:.1} | {:.1} |\n",
            mib / v["seconds"].as_f64().unwrap_or(1.0),
            peak - before
        ));
    }
    out
}
