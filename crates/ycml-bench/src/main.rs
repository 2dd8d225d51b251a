//! `ycml-bench`: measures, in one run against one emulator process, the bare generated tonic
//! client (the floor), this SDK and the official Python SDK, and prints a table with ratios.
//! Run it through `scripts/bench.sh`, which builds in release mode and provides Python.

mod batch;
mod chat;
mod clients;
mod embed;
mod hostile;
#[cfg(feature = "local-model")]
mod local_model;
mod measure;
mod memory;
mod upload;

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::measure::{Sample, drive};

#[derive(Parser)]
#[command(about = "SDK vs bare tonic vs Python SDK, against one emulator process")]
struct Args {
    /// Seconds measured per load level and round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds per load level; bare tonic and the SDK alternate and the median round counts,
    /// which cancels most of the noise of a shared machine.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python interpreter with the official SDK (skip the Python columns without it).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Also write the report (markdown) to this file.
    #[arg(long)]
    write: Option<PathBuf>,
    #[command(subcommand)]
    phase: Option<Phase>,
}

#[derive(Subcommand)]
enum Phase {
    /// Internal: `n` sequential calls of one client, for profilers (callgrind, perf).
    Loop {
        #[arg(long)]
        endpoint: String,
        /// `sdk` or `bare`.
        #[arg(long)]
        client: String,
        #[arg(long, default_value_t = 2_000)]
        n: usize,
        /// Streamed calls (`run_stream`) instead of `run`; prints the chunks per call.
        #[arg(long)]
        stream: bool,
        /// Calls in flight at once; above 1 the loop runs on the multi-thread runtime (for
        /// perf, where threads interleaving is the point).
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// The hardening probes against the emulator while a good client calls (prints its own
    /// report; the other tables are not run).
    Hostile {
        /// Seconds of the good client alone, and again under attack.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Dataset upload throughput and client memory: bare PUT vs the SDK (prints its own
    /// report; the other tables are not run).
    Upload {
        /// Size of the file in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
    },
    /// Embeddings: many short texts through `run_many`, bare tonic and the Python SDK's loop
    /// (prints its own report; the other tables are not run).
    Embed {
        /// Texts embedded with concurrency.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
        texts: u32,
        /// Texts embedded one at a time (each client, the Python SDK's loop too).
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..))]
        serial: u32,
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
        concurrency: u32,
    },
    /// The OpenAI-compatible API: `sdk.chat()` against a bare hyper client, SSE deltas/s, and
    /// what the upstream engine adds (prints its own report; the other tables are not run).
    Chat {
        /// Calls one at a time, per client.
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..))]
        calls: u32,
        /// Streamed calls one at a time, per client.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
        streams: u32,
    },
    /// The local embedding model: texts/s one at a time and 4 at a time, peak RSS, against the
    /// numpy reference runner on the same weights (prints its own report).
    EmbedLocal {
        /// The model directory (`scripts/fetch-embedding-model.sh` prints it).
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
        texts: u32,
        /// A Python with numpy, safetensors and tokenizers, for `scripts/embedding-reference.py`.
        #[arg(long)]
        reference_python: Option<PathBuf>,
    },
    /// Batch inference of many rows in the emulator, and the SDK reading the results (prints
    /// its own report; the other tables are not run).
    Batch {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
    },
    /// The real local model: tokens/s of one and of 4 and 8 concurrent streams, time to first
    /// token, prompt speed, load time, peak RSS, against candle's own loop on the same weights
    /// (feature `local-model`; prints its own report).
    #[cfg(feature = "local-model")]
    LocalModel {
        /// The GGUF file (`scripts/fetch-model.sh` prints its path).
        #[arg(long)]
        model: PathBuf,
        /// Generations the emulator runs at once.
        #[arg(long, default_value_t = 4)]
        slots: usize,
    },
    /// Internal: candle's own loop over `ids`, in a fresh process (see `local-model`).
    #[cfg(feature = "local-model")]
    LocalReference {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        ids: String,
        #[arg(long)]
        long_ids: String,
    },
    /// Internal: read a batch task's results, in a fresh process so its peak RSS is its own.
    BatchRead {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        task: String,
    },
    /// Internal: one measured upload, in a fresh process so its peak RSS is its own.
    UploadOne {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        file: PathBuf,
        /// `bare`, `single` or `multipart`.
        #[arg(long)]
        mode: String,
        #[arg(long, default_value_t = 1)]
        parallelism: usize,
    },
    /// Internal: SDK calls all in flight at once, in a fresh process so its peak RSS is its own.
    Inflight {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 10_000)]
        n: usize,
    },
}

/// The emulator child process, its addresses and its control token.
struct EmulatorProcess {
    child: Child,
    endpoint: String,
    control: String,
    token: String,
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_emulator(config: Value) -> EmulatorProcess {
    let exe = std::env::current_exe().expect("current exe").with_file_name("ycml-emulator");
    let path = std::env::temp_dir().join(format!("ycml-bench-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).expect("config");
    let mut child = Command::new(&exe)
        .args(["--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it with `cargo build --release -p yandex-cloud-ml-emulator`)",
                exe.display()
            )
        });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut endpoint, mut control, mut token) = (String::new(), String::new(), String::new());
    while endpoint.is_empty() || control.is_empty() {
        let line = lines.next().expect("emulator output").expect("line");
        if let Some(a) = line.strip_prefix("listening on ") {
            endpoint = a.to_owned();
        } else if let Some(rest) = line.strip_prefix("control on http://") {
            // `control on http://ADDR (authorization: Bearer TOKEN)`
            let (addr, auth) = rest.split_once(' ').expect("control line");
            control = addr.to_owned();
            token = auth.trim_end_matches(')').rsplit(' ').next().unwrap_or_default().to_owned();
        }
    }
    EmulatorProcess { child, endpoint, control, token }
}

/// A plain HTTP/1.1 request to the emulator's control API.
fn control(emulator: &EmulatorProcess, method: &str, path: &str, body: &Value) {
    let mut sock = std::net::TcpStream::connect(&emulator.control).expect("control connect");
    let body = body.to_string();
    write!(
        sock,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        emulator.token,
        body.len()
    )
    .expect("control write");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut sock, &mut response).expect("control read");
    assert!(response.starts_with("HTTP/1.1 200"), "control {path}: {response}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The SDK against bare tonic and the Python SDK at one concurrency.
struct Ratios {
    concurrency: usize,
    p50: f64,
    p99: f64,
    cpu: f64,
    sdk_rps: f64,
    python_rps: Option<f64>,
    python_cpu: Option<f64>,
}

/// Unary results of one client at one concurrency.
struct Unary {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: Option<f64>,
    errors: u64,
}

impl From<&Sample> for Unary {
    fn from(s: &Sample) -> Unary {
        Unary {
            rps: s.rps(),
            p50_ms: ms(s.percentile(0.5)),
            p99_ms: ms(s.percentile(0.99)),
            cpu_us: Some(us(s.cpu_per_call())),
            errors: s.errors,
        }
    }
}

fn python(python: &PathBuf, endpoint: &str, mode: &str, concurrency: usize, seconds: f64) -> Option<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/bench.py");
    let out = Command::new(python)
        .arg(script)
        .args([endpoint, mode, &concurrency.to_string(), &seconds.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("python bench failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

async fn inflight(endpoint: String, n: usize) {
    let model = clients::sdk_model(&endpoint);
    clients::sdk_run(model.clone()).await.expect("warm-up call");
    let rss_before = measure::current_rss_kib();
    let cpu_before = measure::cpu_time();
    let started = Instant::now();
    let calls: Vec<_> = (0..n).map(|_| tokio::spawn(clients::sdk_run(model.clone()))).collect();
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for c in calls {
        if let Err(e) = c.await.expect("task") {
            *errors.entry(e).or_default() += 1;
        }
    }
    let cpu = measure::cpu_time() - cpu_before;
    println!(
        "{}",
        json!({
            "n": n, "errors": errors.values().sum::<usize>(), "error_kinds": errors, "wall_s": started.elapsed().as_secs_f64(),
            "rss_before_kib": rss_before, "peak_rss_kib": measure::peak_rss_kib(),
            "cpu_us_per_call": us(cpu) / n as f64,
        })
    );
}

/// The round with the median throughput.
fn median(mut rounds: Vec<Sample>) -> Sample {
    rounds.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
    rounds.swap_remove(rounds.len() / 2)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}; {rustc}; release build")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.phase {
        Some(Phase::Inflight { endpoint, n }) => return inflight(endpoint, n).await,
        Some(Phase::Hostile { seconds }) => {
            let emulator = start_emulator(json!({}));
            let report = hostile::run(&emulator.endpoint, emulator.child.id(), Duration::from_secs_f64(seconds)).await;
            drop(emulator);
            let report = format!("{report}\n\n{}", memory::report().await);
            println!("Machine: {}\n\n{report}", machine());
            if let Some(path) = args.write {
                std::fs::write(&path, report).expect("write report");
            }
            return;
        }
        #[cfg(feature = "local-model")]
        Some(Phase::LocalModel { model, slots }) => {
            let report = local_model::report(&model, slots).await;
            println!("Machine: {}\n\n{report}", machine());
            if let Some(path) = args.write {
                std::fs::write(&path, report).expect("write report");
            }
            return;
        }
        #[cfg(feature = "local-model")]
        Some(Phase::LocalReference { model, ids, long_ids }) => {
            return local_model::reference_main(&model, &ids, &long_ids);
        }
        Some(Phase::BatchRead { endpoint, task }) => return batch::read_one(&endpoint, &task).await,
        Some(Phase::Embed { texts, serial, concurrency }) => {
            let emulator = start_emulator(json!({"journal_capacity": 0}));
            let (texts, serial, concurrency) = (texts as usize, serial as usize, concurrency as usize);
            let report = embed::report(&emulator.endpoint, texts, serial, concurrency, args.python.as_deref()).await;
            println!("Machine: {}\n\n{report}", machine());
            if let Some(path) = args.write {
                std::fs::write(&path, report).expect("write report");
            }
            return;
        }
        Some(Phase::Chat { calls, streams }) => {
            let upstream = start_emulator(json!({"journal_capacity": 0}));
            let forwarding = start_emulator(json!({
                "journal_capacity": 0,
                "upstream_openai": format!("http://{}/v1", upstream.endpoint),
                "upstream_api_key": clients::API_KEY,
            }));
            let report = chat::report(&upstream.endpoint, &forwarding.endpoint, calls as usize, streams as usize).await;
            println!("Machine: {}\n\n{report}", machine());
            if let Some(path) = args.write {
                std::fs::write(&path, report).expect("write report");
            }
            return;
        }
        Some(Phase::EmbedLocal { model, texts, reference_python }) => {
            let emulator = start_emulator(json!({"journal_capacity": 0, "embedding_model": model}));
            let reference = reference_python.as_deref().map(|p| (p, model.as_path()));
            let report = embed::local_report(&emulator.endpoint, emulator.child.id(), texts as usize, reference).await;
            println!("Machine: {}\n\n{report}", machine());
            if let Some(path) = args.write {
                std::fs::write(&path, report).expect("write report");
            }
            return;
        }
        Some(Phase::Batch { rows }) => {
            let emulator = start_emulator(json!({"journal_capacity": 0}));
            let report = batch::report(&emulator.endpoint, rows).await;
            println!("Machine: {}\n\n{report}", machine());
            if let Some(path) = args.write {
                std::fs::write(&path, report).expect("write report");
            }
            return;
        }
        Some(Phase::UploadOne { endpoint, file, mode, parallelism }) => {
            return upload::one(&endpoint, &file, &mode, parallelism).await;
        }
        Some(Phase::Upload { size_mib }) => {
            let emulator = start_emulator(json!({"journal_capacity": 0}));
            let report = upload::report(&emulator.endpoint, size_mib);
            println!("Machine: {}\n\n{report}", machine());
            if let Some(path) = args.write {
                std::fs::write(&path, report).expect("write report");
            }
            return;
        }
        Some(Phase::Loop { endpoint, client, n, stream, concurrency }) => {
            let sdk = client == "sdk";
            let calls = move |n: usize, bare: clients::Bare, model: yandex_cloud_ml_sdk::completions::GptModel| async move {
                let mut chunks = 0;
                for _ in 0..n {
                    chunks += match (stream, sdk) {
                        (false, true) => clients::sdk_run(model.clone()).await.map(|()| 1),
                        (false, false) => bare.clone().run().await.map(|()| 1),
                        (true, true) => clients::sdk_stream(model.clone()).await.map(|(_, c)| c),
                        (true, false) => bare.clone().stream().await.map(|(_, c)| c),
                    }
                    .expect("call");
                }
                chunks
            };
            if concurrency > 1 {
                // The multi-thread runtime, one client of each kind shared by every task, as in
                // the main benchmark (for perf, where the threads' interleaving is the point).
                let (bare, model) = (clients::Bare::connect(&endpoint).await, clients::sdk_model(&endpoint));
                let tasks: Vec<_> = (0..concurrency)
                    .map(|_| tokio::spawn(calls(n / concurrency, bare.clone(), model.clone())))
                    .collect();
                for task in tasks {
                    task.await.expect("loop task");
                }
                return;
            }
            // One thread, so instruction counts do not depend on how threads interleave; the
            // clients are made on it (a bare channel spawns its worker where it is made).
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let one = async move {
                let (bare, model) = (clients::Bare::connect(&endpoint).await, clients::sdk_model(&endpoint));
                calls(n, bare, model).await
            };
            let chunks = std::thread::spawn(move || runtime.block_on(one)).join().expect("loop");
            if stream {
                eprintln!("{} chunks per call", chunks / n.max(1));
            }
            return;
        }
        None => {}
    }
    let seconds = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_millis(500);
    // No journal: the emulator should spend its time answering, not recording.
    let emulator = start_emulator(json!({"journal_capacity": 0}));
    let endpoint = emulator.endpoint.clone();
    let mut report = String::new();
    let mut line = |s: String| {
        println!("{s}");
        report.push_str(&s);
        report.push('\n');
    };
    line(format!("Machine: {}", machine()));
    line(String::new());

    // Unary run at three concurrency levels.
    line(format!(
        "### Unary `run` (requests/s, latency, client CPU per call; median of {} rounds of {} s, bare and SDK alternating)",
        args.rounds, args.seconds
    ));
    line(String::new());
    line("| client | concurrency | req/s | p50 ms | p99 ms | client CPU µs/call | errors |".into());
    line("|---|---:|---:|---:|---:|---:|---:|".into());
    let bare = clients::Bare::connect(&endpoint).await;
    let model = clients::sdk_model(&endpoint);
    let mut ratios = Vec::new();
    for concurrency in [1, 16, 256] {
        let (mut bare_rounds, mut sdk_rounds) = (Vec::new(), Vec::new());
        for round in 0..args.rounds.max(1) {
            // Which client goes first alternates, so neither always runs on a warmer machine.
            for bare_turn in if round % 2 == 0 { [true, false] } else { [false, true] } {
                if bare_turn {
                    let b = bare.clone();
                    bare_rounds.push(drive(concurrency, warmup, seconds, move || b.clone().run()).await);
                } else {
                    let m = model.clone();
                    sdk_rounds.push(drive(concurrency, warmup, seconds, move || clients::sdk_run(m.clone())).await);
                }
            }
        }
        // Ratios pair each SDK round with the bare round next to it in time, which cancels the
        // drift of a shared machine better than a ratio of two medians.
        let paired = |of: fn(&Unary) -> f64| {
            let mut ratios: Vec<f64> =
                bare_rounds.iter().zip(&sdk_rounds).map(|(b, s)| of(&Unary::from(s)) / of(&Unary::from(b))).collect();
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        };
        let (p50, p99, cpu) = (paired(|u| u.p50_ms), paired(|u| u.p99_ms), paired(|u| u.cpu_us.unwrap_or(f64::NAN)));
        let (bare_sample, sdk_sample) = (median(bare_rounds), median(sdk_rounds));
        let py = args.python.as_ref().and_then(|p| python(p, &endpoint, "unary", concurrency, args.seconds)).map(|v| {
            Unary {
                rps: v["calls"].as_f64().unwrap_or(0.0) / v["seconds"].as_f64().unwrap_or(1.0),
                p50_ms: v["p50_ms"].as_f64().unwrap_or(0.0),
                p99_ms: v["p99_ms"].as_f64().unwrap_or(0.0),
                cpu_us: v["cpu_us_per_call"].as_f64(),
                errors: v["errors"].as_u64().unwrap_or(0),
            }
        });
        let (bare_u, sdk_u) = (Unary::from(&bare_sample), Unary::from(&sdk_sample));
        for (name, u) in [("bare tonic", Some(&bare_u)), ("this SDK", Some(&sdk_u)), ("Python SDK", py.as_ref())] {
            if let Some(u) = u {
                line(format!(
                    "| {name} | {concurrency} | {:.0} | {:.3} | {:.3} | {} | {} |",
                    u.rps,
                    u.p50_ms,
                    u.p99_ms,
                    u.cpu_us.map_or("-".into(), |c| format!("{c:.1}")),
                    u.errors
                ));
            }
        }
        ratios.push(Ratios {
            concurrency,
            p50,
            p99,
            cpu,
            sdk_rps: sdk_u.rps,
            python_rps: py.as_ref().map(|p| sdk_u.rps / p.rps),
            python_cpu: py.as_ref().and_then(|p| Some(p.cpu_us? / sdk_u.cpu_us?)),
        });
    }
    line(String::new());

    // Streaming.
    line("### `run_stream` (one stream at a time)".into());
    line(String::new());
    line("| client | time to first chunk p50 ms | chunks/s | client CPU µs/chunk |".into());
    line("|---|---:|---:|---:|".into());
    for (name, is_sdk) in [("bare tonic", false), ("this SDK", true)] {
        let firsts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let chunks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (f, c, b, m) = (firsts.clone(), chunks.clone(), bare.clone(), model.clone());
        let sample = drive(1, warmup, seconds, move || {
            let (f, c, b, m) = (f.clone(), c.clone(), b.clone(), m.clone());
            async move {
                let (first, n) = if is_sdk { clients::sdk_stream(m).await? } else { b.stream().await? };
                f.lock().unwrap().push(first);
                c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        })
        .await;
        let mut firsts = firsts.lock().unwrap().clone();
        firsts.sort_unstable();
        // Warm-up streams are counted in `chunks` too; scale by the measured share.
        let total = chunks.load(std::sync::atomic::Ordering::Relaxed) as f64;
        let per_stream = total / firsts.len().max(1) as f64;
        let measured_chunks = per_stream * sample.calls as f64;
        line(format!(
            "| {name} | {:.3} | {:.0} | {:.1} |",
            ms(firsts[firsts.len() / 2]),
            measured_chunks / sample.elapsed.as_secs_f64(),
            us(sample.cpu) / measured_chunks.max(1.0)
        ));
    }
    if let Some(v) = args.python.as_ref().and_then(|p| python(p, &endpoint, "stream", 1, args.seconds)) {
        line(format!(
            "| Python SDK | {:.3} | {:.0} | - |",
            v["ttfc_p50_ms"].as_f64().unwrap_or(0.0),
            v["chunks_per_s"].as_f64().unwrap_or(0.0)
        ));
    }
    line(String::new());

    // 10,000 requests in flight, replies delayed by the emulator.
    control(
        &emulator,
        "POST",
        "/faults",
        &json!({"method": "TextGenerationService/Completion", "action": {"kind": "delay", "ms": 3000}}),
    );
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["inflight", "--endpoint", &endpoint, "--n", "10000"])
        .output()
        .expect("inflight phase");
    control(&emulator, "DELETE", "/faults", &json!({}));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    line("### 10,000 `run` calls in flight at once (emulator delays each reply by 3 s)".into());
    line(String::new());
    line(format!(
        "this SDK: peak RSS {:.1} MiB (before the calls {:.1} MiB, so ≈{:.1} KiB per call in flight), client CPU {:.1} µs/call, all done in {:.2} s, {} errors {}",
        v["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        v["rss_before_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        (v["peak_rss_kib"].as_f64().unwrap_or(0.0) - v["rss_before_kib"].as_f64().unwrap_or(0.0)) / 10_000.0,
        v["cpu_us_per_call"].as_f64().unwrap_or(0.0),
        v["wall_s"].as_f64().unwrap_or(0.0),
        v["errors"],
        v["error_kinds"]
    ));
    line(String::new());

    // The emulator's own ceiling: bare clients on four connections.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(clients::Bare::connect(&endpoint).await);
    }
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max = drive(128, warmup, seconds, move || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        channels[i % channels.len()].clone().run()
    })
    .await;
    line(format!(
        "### Emulator alone\n\nhighest unary rate seen: {:.0} requests/s (bare tonic load, 4 connections × 32 in flight; the load generator shares the 2 cores)",
        max.rps()
    ));
    line(String::new());

    line("### Ratios (targets: SDK/bare ≤ 1.05 in p50 latency and CPU per call; Python/SDK ≥ 20× CPU per call)".into());
    line(String::new());
    line(
        "SDK/bare columns: the median over rounds of the SDK's figure divided by that of the bare round run next \
         to it; the other columns come from the table above."
            .into(),
    );
    line(String::new());
    line(
        "| concurrency | SDK/bare p50 | SDK/bare p99 | SDK/bare CPU per call | SDK/Python throughput | \
         Python/SDK CPU per call | SDK rate / emulator's highest |"
            .into(),
    );
    line("|---:|---:|---:|---:|---:|---:|---:|".into());
    let times = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.1}×"));
    for r in ratios {
        line(format!(
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0} % |",
            r.concurrency,
            r.p50,
            r.p99,
            r.cpu,
            times(r.python_rps),
            times(r.python_cpu),
            100.0 * r.sdk_rps / max.rps()
        ));
    }
    if let Some(path) = args.write {
        std::fs::write(&path, report).expect("write report");
        println!("\nwritten to {}", path.display());
    }
}
