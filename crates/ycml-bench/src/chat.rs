//! The OpenAI-compatible API against emulator processes: `sdk.chat()` run against a bare hyper
//! client sending the same JSON (latency and client CPU per call, one call at a time), SSE
//! deltas per second through both, and what the upstream engine adds: the same gRPC calls to
//! an emulator forwarding to another, against calling that other directly.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::json;
use yandex_cloud_ml_sdk::Sdk;

use crate::{clients, measure};

fn sdk(endpoint: &str) -> Sdk {
    Sdk::builder().emulator(endpoint).folder_id(clients::FOLDER).api_key(clients::API_KEY).build().expect("sdk")
}

/// `n` calls one at a time: sorted latencies and client CPU per call.
async fn serial<F, Fut>(n: usize, mut call: F) -> (Vec<Duration>, Duration, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    for _ in 0..n.div_ceil(10) {
        call().await;
    }
    let cpu = measure::cpu_time();
    let (mut latencies, mut units) = (Vec::with_capacity(n), 0);
    for _ in 0..n {
        let started = Instant::now();
        units += call().await;
        latencies.push(started.elapsed());
    }
    let used = measure::cpu_time() - cpu;
    latencies.sort_unstable();
    (latencies, used / n as u32, units)
}

fn p50(latencies: &[Duration]) -> Duration {
    latencies[latencies.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// The bare client: one pooled hyper connection, the request the SDK sends, the answer parsed
/// as JSON (or its events counted).
struct Bare {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    auth: String,
}

impl Bare {
    fn new(endpoint: &str) -> Bare {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true); // as the SDK's
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Bare {
            client,
            url: format!("http://{endpoint}/v1/chat/completions"),
            auth: format!("Api-Key {}", clients::API_KEY),
        }
    }

    /// Sends the request for `prompt` (its JSON built for each call, as any client must);
    /// returns the events of a stream, or 1 for a JSON answer, read into the least a caller
    /// needs (the text).
    async fn call(&self, prompt: &str, stream: bool) -> usize {
        let request = http::Request::post(&self.url)
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(Full::new(body(prompt, stream)))
            .expect("request");
        let response = self.client.request(request).await.expect("bare call");
        assert!(response.status().is_success(), "{}", response.status());
        let mut body = response.into_body();
        if !stream {
            let bytes = body.collect().await.expect("body").to_bytes();
            let answer: Answer = serde_json::from_slice(&bytes).expect("json");
            assert!(!answer.choices[0].message.content.is_empty());
            return 1;
        }
        let mut events = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("frame").into_data() {
                events += data.windows(6).filter(|w| w == b"data: ").count();
            }
        }
        events
    }
}

#[derive(serde::Deserialize)]
struct Answer {
    choices: Vec<Choice>,
}

#[derive(serde::Deserialize)]
struct Choice {
    message: Text,
}

#[derive(serde::Deserialize)]
struct Text {
    content: String,
}

fn body(prompt: &str, stream: bool) -> Bytes {
    let body = json!({
        "model": format!("gpt://{}/yandexgpt/latest", clients::FOLDER),
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
    });
    Bytes::from(body.to_string())
}

/// The report. `upstream` is an emulator whose engine forwards to `endpoint`'s `/v1`.
pub async fn report(endpoint: &str, upstream: &str, n: usize, streams: usize) -> String {
    let chat = sdk(endpoint).chat().completions("yandexgpt");
    let bare = Bare::new(endpoint);
    // Rounds alternate the clients, so a noisy moment hits both; the medians are reported.
    let rounds = 7;
    let (mut sdk_rounds, mut bare_rounds) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (lat, cpu, _) =
            serial(n / rounds, || async { chat.run(clients::PROMPT).await.map(|_| 1).expect("sdk run") }).await;
        sdk_rounds.push((p50(&lat), cpu));
        let (lat, cpu, _) = serial(n / rounds, || bare.call(clients::PROMPT, false)).await;
        bare_rounds.push((p50(&lat), cpu));
    }
    let median = |rounds: &mut Vec<(Duration, Duration)>| {
        let mut p50s: Vec<Duration> = rounds.iter().map(|r| r.0).collect();
        let mut cpus: Vec<Duration> = rounds.iter().map(|r| r.1).collect();
        p50s.sort_unstable();
        cpus.sort_unstable();
        (p50s[p50s.len() / 2], cpus[cpus.len() / 2])
    };
    let ((sdk_p50, sdk_cpu), (bare_p50, bare_cpu)) = (median(&mut sdk_rounds), median(&mut bare_rounds));

    let streamed = |model: yandex_cloud_ml_sdk::chat::ChatModel| async move {
        let mut stream = model.run_stream(clients::STREAM_PROMPT).await.expect("sdk stream");
        let mut deltas = 0;
        while let Some(delta) = stream.next().await {
            delta.expect("delta");
            deltas += 1;
        }
        deltas
    };
    let (sdk_stream_lat, sdk_stream_cpu, sdk_deltas) = serial(streams, || streamed(chat.clone())).await;
    let (bare_stream_lat, bare_stream_cpu, bare_events) =
        serial(streams, || bare.call(clients::STREAM_PROMPT, true)).await;
    let per_second = |units: usize, lat: &[Duration]| units as f64 / lat.iter().sum::<Duration>().as_secs_f64();

    let mut out = String::from(
        "### The OpenAI-compatible API (`sdk.chat()`) against a bare hyper client\n\n\
         One call at a time against the emulator's `/v1/chat/completions`, median of 7 rounds with the clients \
         alternating; the bare client builds and sends the same JSON on a pooled connection and reads the \
         answer's text from the JSON (or counts the events).\n\n\
         | client | calls | p50 | client CPU per call |\n|---|---:|---:|---:|\n",
    );
    out += &format!("| `sdk.chat()` run | {n} | {} | {} |\n", us(sdk_p50), us(sdk_cpu));
    out += &format!("| bare hyper | {n} | {} | {} |\n", us(bare_p50), us(bare_cpu));
    out += &format!(
        "\nSDK / bare: p50 {:.2}×, CPU per call {:.2}×.\n\n",
        sdk_p50.as_secs_f64() / bare_p50.as_secs_f64(),
        sdk_cpu.as_secs_f64() / bare_cpu.as_secs_f64()
    );
    out += "| streamed (SSE) | calls | events per call | events/s | client CPU per call |\n|---|---:|---:|---:|---:|\n";
    out += &format!(
        "| `sdk.chat()` run_stream (deltas) | {streams} | {} | {:.0} | {} |\n",
        sdk_deltas / streams,
        per_second(sdk_deltas, &sdk_stream_lat),
        us(sdk_stream_cpu)
    );
    out += &format!(
        "| bare hyper (`data:` events) | {streams} | {} | {:.0} | {} |\n",
        bare_events / streams,
        per_second(bare_events, &bare_stream_lat),
        us(bare_stream_cpu)
    );

    // The upstream engine: gRPC calls to the forwarding emulator against the same calls to
    // the emulator it forwards to.
    let (direct, forwarded) = (sdk(endpoint), sdk(upstream));
    let model = |s: &Sdk| s.models().completions("yandexgpt");
    let chunks = |s: Sdk| async move {
        let mut stream = s.models().completions("yandexgpt").run_stream(clients::STREAM_PROMPT).await.expect("stream");
        let mut n = 0;
        while let Some(c) = stream.next().await {
            c.expect("chunk");
            n += 1;
        }
        n
    };
    // Alternating rounds again; latencies and stream times pooled over the rounds.
    let (mut direct_lat, mut fwd_lat, mut direct_stream, mut fwd_stream) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut direct_chunks, mut fwd_chunks) = (0, 0);
    for _ in 0..rounds {
        direct_lat.extend(
            serial(n / rounds, || async { model(&direct).run(clients::PROMPT).await.map(|_| 1).expect("direct") })
                .await
                .0,
        );
        fwd_lat.extend(
            serial(n / rounds, || async { model(&forwarded).run(clients::PROMPT).await.map(|_| 1).expect("fwd") })
                .await
                .0,
        );
        let (lat, _, c) = serial(streams / rounds, || chunks(direct.clone())).await;
        direct_stream.extend(lat);
        direct_chunks += c;
        let (lat, _, c) = serial(streams / rounds, || chunks(forwarded.clone())).await;
        fwd_stream.extend(lat);
        fwd_chunks += c;
    }
    direct_lat.sort_unstable();
    fwd_lat.sort_unstable();
    let streams = streams / rounds * rounds;
    let added = p50(&fwd_lat).saturating_sub(p50(&direct_lat));
    let per_chunk = |lat: &[Duration], chunks: usize| lat.iter().sum::<Duration>() / chunks.max(1) as u32;
    out += "\n### The upstream engine: an emulator forwarding to another\n\n\
            gRPC calls through the SDK, one at a time, to the forwarding emulator and to the emulator it forwards to \
            (both built-in model).\n\n\
            | | calls | run p50 | stream chunks per call | time per streamed chunk |\n|---|---:|---:|---:|---:|\n";
    out += &format!(
        "| direct | {n} / {streams} streams | {} | {} | {} |\n",
        us(p50(&direct_lat)),
        direct_chunks / streams,
        us(per_chunk(&direct_stream, direct_chunks))
    );
    out += &format!(
        "| through the upstream engine | {n} / {streams} streams | {} | {} | {} |\n",
        us(p50(&fwd_lat)),
        fwd_chunks / streams,
        us(per_chunk(&fwd_stream, fwd_chunks))
    );
    out += &format!(
        "\nAdded by forwarding: {} per request (p50), {} per streamed chunk.\n",
        us(added),
        us(per_chunk(&fwd_stream, fwd_chunks).saturating_sub(per_chunk(&direct_stream, direct_chunks)))
    );
    out
}
