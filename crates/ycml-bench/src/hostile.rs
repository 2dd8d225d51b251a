//! `ycml-bench hostile`: the probes of the hardening issue run against the release emulator
//! (journal on, default limits) while a well-behaved SDK client keeps calling. Prints the good
//! client's latency and errors with and without the attack, what the attackers got back, and
//! the emulator's peak memory.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tonic::{Request, transport::Channel};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb, text_generation_service_client::TextGenerationServiceClient,
    tokenizer_service_client::TokenizerServiceClient,
};

use crate::{
    clients,
    measure::{Sample, drive},
};

const MODEL: &str = "gpt://b1gbenchfolder/yandexgpt/latest";

/// Outcomes of the attackers, by attack and status.
type Outcomes = Arc<Mutex<BTreeMap<String, BTreeMap<String, u64>>>>;

fn record(outcomes: &Outcomes, attack: &str, result: Result<(), tonic::Status>) {
    let status = match result {
        Ok(()) => "OK".to_owned(),
        Err(s) => format!("{:?}", s.code()),
    };
    *outcomes.lock().unwrap().entry(attack.into()).or_default().entry(status).or_default() += 1;
}

pub(crate) fn authorized<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", format!("Api-Key {}", clients::API_KEY).parse().unwrap());
    r
}

fn completion(prompt: String, stream: bool) -> pb::CompletionRequest {
    pb::CompletionRequest {
        model_uri: MODEL.into(),
        completion_options: Some(pb::CompletionOptions { stream, ..Default::default() }),
        messages: vec![pb::Message { role: "user".into(), content: Some(pb::message::Content::Text(prompt)) }],
        ..Default::default()
    }
}

fn with_schema(schema: Value) -> pb::CompletionRequest {
    let s = yandex_cloud_ml_proto::json::object_to_struct(schema.as_object().unwrap()).unwrap();
    pb::CompletionRequest {
        response_format: Some(pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema { schema: Some(s) })),
        ..completion("fill it".into(), false)
    }
}

async fn complete(channel: &Channel, r: pb::CompletionRequest) -> Result<(), tonic::Status> {
    let mut stream = TextGenerationServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .completion(authorized(r))
        .await?
        .into_inner();
    while stream.message().await?.is_some() {}
    Ok(())
}

/// Each attack, looping until `stop`.
async fn attack(name: &'static str, channel: Channel, stop: Arc<AtomicBool>, outcomes: Outcomes) {
    while !stop.load(Ordering::Relaxed) {
        let result = match name {
            "schema minItems 1e12" => complete(&channel, with_schema(json!({"type": "array", "minItems": 1e12}))).await,
            "schema minLength 1e7" => {
                complete(&channel, with_schema(json!({"type": "string", "minLength": 10_000_000}))).await
            }
            "100 KB prompt, no max_tokens" => complete(&channel, completion("word ".repeat(20_000), false)).await,
            "100 KB prompt, streamed" => complete(&channel, completion("word ".repeat(20_000), true)).await,
            "Tokenize 3.9 MB" => TokenizerServiceClient::new(channel.clone())
                .max_encoding_message_size(8 << 20)
                .tokenize(authorized(pb::TokenizeRequest { model_uri: MODEL.into(), text: "x ".repeat(1_950_000) }))
                .await
                .map(drop),
            "grpc-timeout 18446744073709551615S" => {
                let mut r = authorized(pb::TokenizeRequest { model_uri: MODEL.into(), text: "hi".into() });
                r.metadata_mut().insert("grpc-timeout", "18446744073709551615S".parse().unwrap());
                TokenizerServiceClient::new(channel.clone()).tokenize(r).await.map(drop)
            }
            "journal flood, 20 KB bodies" => TokenizerServiceClient::new(channel.clone())
                .tokenize(authorized(pb::TokenizeRequest { model_uri: MODEL.into(), text: "y".repeat(20_000) }))
                .await
                .map(drop),
            other => unreachable!("{other}"),
        };
        record(&outcomes, name, result);
    }
}

const ATTACKS: [&str; 7] = [
    "schema minItems 1e12",
    "schema minLength 1e7",
    "100 KB prompt, no max_tokens",
    "100 KB prompt, streamed",
    "Tokenize 3.9 MB",
    "grpc-timeout 18446744073709551615S",
    "journal flood, 20 KB bodies",
];

/// Lets this process open more descriptors than the default soft limit (for the idle flood).
fn raise_fd_limit() -> u64 {
    // SAFETY: get/setrlimit read and write the struct we pass and nothing else.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        limit.rlim_cur
    }
}

pub(crate) fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn row(name: &str, s: &Sample) -> String {
    format!(
        "| {name} | {:.0} | {:.3} | {:.3} | {} |",
        s.rps(),
        s.percentile(0.5).as_secs_f64() * 1e3,
        s.percentile(0.99).as_secs_f64() * 1e3,
        s.errors
    )
}

/// Runs the hostile benchmark; returns the report.
pub async fn run(endpoint: &str, emulator_pid: u32, seconds: Duration) -> String {
    let mut report = Vec::new();
    let fd_limit = raise_fd_limit();
    let model = clients::sdk_model(endpoint);
    let good = |model: yandex_cloud_ml_sdk::completions::GptModel| move || clients::sdk_run(model.clone());
    let warmup = Duration::from_millis(500);
    let baseline = drive(8, warmup, seconds, good(model.clone())).await;
    let rss_before = peak_rss_mib(emulator_pid);

    // The attack: 1,100 idle connections, then every probe in a loop on its own connections.
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        match tokio::net::TcpStream::connect(endpoint).await {
            Ok(s) => idle.push(s),
            Err(_) => break,
        }
    }
    let opened = idle.len();
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Outcomes = Arc::default();
    let mut attackers = Vec::new();
    for name in ATTACKS {
        let channel = Channel::from_shared(format!("http://{endpoint}")).unwrap().connect().await.expect("connect");
        attackers.push(tokio::spawn(attack(name, channel, stop.clone(), outcomes.clone())));
    }
    let under_attack = drive(8, warmup, seconds, good(model)).await;
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }
    drop(idle);
    let peak = peak_rss_mib(emulator_pid);

    report.push("### Hostile clients (`ycml-bench hostile`)".to_owned());
    report.push(String::new());
    report.push(format!(
        "A well-behaved SDK client (8 calls in flight) for {:.0} s alone, then {:.0} s while {opened} idle TCP \
         connections are held open (this process's descriptor limit: {fd_limit}) and every probe below runs in a \
         loop on its own connection. Release emulator, journal on, default limits.",
        seconds.as_secs_f64(),
        seconds.as_secs_f64()
    ));
    report.push(String::new());
    report.push("| good client | req/s | p50 ms | p99 ms | errors |".into());
    report.push("|---|---:|---:|---:|---:|".into());
    report.push(row("alone", &baseline));
    report.push(row("under attack", &under_attack));
    report.push(String::new());
    report.push("| probe | answers |".into());
    report.push("|---|---|".into());
    for (attack, statuses) in outcomes.lock().unwrap().iter() {
        let answers: Vec<String> = statuses.iter().map(|(s, n)| format!("{n} × {s}")).collect();
        report.push(format!("| {attack} | {} |", answers.join(", ")));
    }
    report.push(String::new());
    report
        .push(format!("Emulator peak RSS: {rss_before:.1} MiB after the good client alone, {peak:.1} MiB at the end."));
    report.join("\n")
}
