//! The real local model (emulator feature `local-model`): time to first token, decode speed of
//! one stream and in aggregate for 4 and 8 concurrent streams, prompt processing speed, load
//! time and the emulator's peak RSS; and, in the same run, the same prompts through candle's
//! own quantized-llama loop (its example's code path: `ModelWeights` + argmax, no server), so
//! the ratio shows what our engine (gRPC, SDK, admission, sampling) costs on top.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_sdk::{Sdk, completions::GptModel};

use crate::{clients, start_emulator};

const PROMPT: &str = "Write a short story about a robot who learns to paint.";
const NEW_TOKENS: u32 = 128;

struct Stream {
    ttft: Duration,
    tokens: u64,
    total: Duration,
}

async fn one_stream(model: GptModel, prompt: String) -> Stream {
    let started = Instant::now();
    let mut stream = model.run_stream(prompt.as_str()).await.expect("stream opens");
    let mut ttft = None;
    let mut tokens = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        ttft.get_or_insert_with(|| started.elapsed());
        tokens = chunk.usage().completion_tokens;
    }
    Stream { ttft: ttft.unwrap_or_default(), tokens, total: started.elapsed() }
}

fn model(endpoint: &str, max_tokens: u32) -> GptModel {
    let sdk = Sdk::builder().emulator(endpoint).folder_id(clients::FOLDER).build().expect("sdk");
    // Greedy, one token a chunk: a chunk arrives as its token is generated.
    sdk.models().completions("yandexgpt").configure(|c| c.temperature(0.0).max_tokens(max_tokens)).expect("config")
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Tokens/s of `n` concurrent streams, in aggregate, and the mean time to first token.
async fn concurrent(endpoint: &str, n: usize) -> (f64, Duration) {
    let started = Instant::now();
    let runs: Vec<Stream> = futures_util::future::join_all(
        (0..n).map(|i| one_stream(model(endpoint, NEW_TOKENS), format!("{PROMPT} Story number {i}."))),
    )
    .await;
    let tokens: u64 = runs.iter().map(|r| r.tokens).sum();
    let ttft = runs.iter().map(|r| r.ttft).sum::<Duration>() / n as u32;
    (tokens as f64 / started.elapsed().as_secs_f64(), ttft)
}

pub async fn report(path: &Path, slots: usize) -> String {
    let spawned = Instant::now();
    let config = json!({"model": path, "model_slots": slots, "model_queue": 64, "stream_chunk_tokens": 1,
                        "journal_capacity": 0});
    let emulator = start_emulator(config);
    let load = spawned.elapsed();
    let endpoint = emulator.endpoint.clone();
    // Warm up (first-use allocations), then one stream alone.
    one_stream(model(&endpoint, 8), "Hello".into()).await;
    let single = one_stream(model(&endpoint, NEW_TOKENS), PROMPT.into()).await;
    let decode = single.tokens.saturating_sub(1) as f64 / (single.total - single.ttft).as_secs_f64();
    // Prompt processing: a long prompt's time to first token.
    let long_prompt = format!(
        "{} Summarize the text above in one sentence.",
        "The quick brown fox jumps over the lazy dog. ".repeat(30)
    );
    let long = one_stream(model(&endpoint, 1), long_prompt.clone()).await;
    let prompt_tokens = model(&endpoint, 1).tokenize(long_prompt.as_str()).await.expect("tokenize").len();
    let (c4, ttft4) = concurrent(&endpoint, 4).await;
    let (c8, ttft8) = concurrent(&endpoint, 8).await;
    let rss = peak_rss_kib(emulator.child.id());
    // The reference gets exactly the token ids the engine generated from.
    let ids = |tokens: Vec<yandex_cloud_ml_sdk::completions::Token>| {
        tokens.iter().map(|t| t.id.to_string()).collect::<Vec<_>>().join(",")
    };
    let short_ids = ids(model(&endpoint, 1).tokenize(PROMPT).await.expect("tokenize"));
    let short_tokens = short_ids.split(',').count();
    let long_ids = ids(model(&endpoint, 1).tokenize(long_prompt.as_str()).await.expect("tokenize"));
    drop(emulator);
    let reference = reference_process(path, &short_ids, &long_ids);
    let mut out = String::new();
    let threads: Vec<String> = ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"]
        .iter()
        .filter_map(|v| std::env::var(v).ok().map(|n| format!("{v}={n}")))
        .collect();
    let threads = if threads.is_empty() { "default threads".to_owned() } else { threads.join(" ") };
    out.push_str(&format!(
        "Local model (`ycml-bench local-model`): {} with {slots} generation slot(s), {threads}, greedy, {NEW_TOKENS} new tokens.\n\n",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    out.push_str("| measure | emulator + SDK (gRPC stream) | candle's own loop (same weights, no server) | ratio |\n|---|---|---|---|\n");
    out.push_str(&format!(
        "| decode, one stream | {decode:.1} tok/s | {:.1} tok/s | {:.0} % |\n",
        reference.decode,
        100.0 * decode / reference.decode
    ));
    out.push_str(&format!(
        "| time to first token ({short_tokens}-token prompt) | {:.0} ms | {:.0} ms | |\n",
        ms(single.ttft),
        ms(reference.first)
    ));
    out.push_str(&format!(
        "| prompt processing ({prompt_tokens} tokens) | {:.0} tok/s | {:.0} tok/s | {:.0} % |\n",
        prompt_tokens as f64 / long.ttft.as_secs_f64(),
        reference.prefill,
        100.0 * (prompt_tokens as f64 / long.ttft.as_secs_f64()) / reference.prefill
    ));
    out.push_str(&format!(
        "| 4 concurrent streams, aggregate | {c4:.1} tok/s (first token after {:.0} ms) | | |\n",
        ms(ttft4)
    ));
    out.push_str(&format!(
        "| 8 concurrent streams, aggregate | {c8:.1} tok/s (first token after {:.0} ms) | | |\n",
        ms(ttft8)
    ));
    out.push_str(&format!(
        "| load (start to listening) | {:.2} s | {:.2} s | |\n| peak RSS | {} MiB (emulator) | | |\n",
        load.as_secs_f64(),
        reference.load.as_secs_f64(),
        rss / 1024
    ));
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Reference {
    load: Duration,
    first: Duration,
    decode: f64,
    prefill: f64,
}

/// Runs [`reference()`] in a fresh process with `CANDLE_DEQUANTIZE_ALL=1` (set for the child, so
/// no environment is changed while threads run).
fn reference_process(path: &Path, short_ids: &str, long_ids: &str) -> Reference {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .args(["local-reference", "--model"])
        .arg(path)
        .args(["--ids", short_ids, "--long-ids", long_ids])
        .env("CANDLE_DEQUANTIZE_ALL", "1")
        .output()
        .expect("reference run");
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference output");
    Reference {
        load: Duration::from_secs_f64(v["load"].as_f64().unwrap_or(0.0)),
        first: Duration::from_secs_f64(v["first"].as_f64().unwrap_or(0.0)),
        decode: v["decode"].as_f64().unwrap_or(0.0),
        prefill: v["prefill"].as_f64().unwrap_or(0.0),
    }
}

/// The reference run of this process: prints its numbers as JSON.
pub fn reference_main(path: &Path, ids: &str, long_ids: &str) {
    let parse = |s: &str| s.split(',').map(|i| i.parse::<u32>().expect("token id")).collect::<Vec<u32>>();
    let r = reference(path, &parse(ids), NEW_TOKENS as usize, &parse(long_ids));
    println!(
        "{}",
        json!({"load": r.load.as_secs_f64(), "first": r.first.as_secs_f64(), "decode": r.decode, "prefill": r.prefill})
    );
}

/// candle's quantized example path: the stock `ModelWeights` with every weight dequantized
/// (`CANDLE_DEQUANTIZE_ALL`, the same F32 weights our engine makes at load), prompt in, argmax
/// out, no server.
fn reference(path: &Path, ids: &[u32], new_tokens: usize, long: &[u32]) -> Reference {
    use candle_core::{Device, Tensor, quantized::gguf_file};
    use candle_transformers::models::quantized_llama::ModelWeights;
    let started = Instant::now();
    let mut file = std::fs::File::open(path).expect("model file");
    let content = gguf_file::Content::read(&mut file).expect("gguf");
    let mut model = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).expect("weights");
    let load = started.elapsed();
    let argmax = |l: Tensor| -> u32 {
        let v: Vec<f32> = l.squeeze(0).and_then(|l| l.to_vec1()).expect("logits");
        v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i as u32)
    };
    let started = Instant::now();
    let input = Tensor::new(ids, &Device::Cpu).and_then(|t| t.unsqueeze(0)).expect("input");
    let mut next = argmax(model.forward(&input, 0).expect("prefill"));
    let first = started.elapsed();
    let decode_started = Instant::now();
    let produced = new_tokens - 1;
    for position in ids.len()..ids.len() + produced {
        let input = Tensor::new(&[next], &Device::Cpu).and_then(|t| t.unsqueeze(0)).expect("input");
        next = argmax(model.forward(&input, position).expect("decode"));
    }
    let decode = produced as f64 / decode_started.elapsed().as_secs_f64();
    let started = Instant::now();
    let input = Tensor::new(long, &Device::Cpu).and_then(|t| t.unsqueeze(0)).expect("input");
    model.forward(&input, 0).expect("prefill");
    let prefill = long.len() as f64 / started.elapsed().as_secs_f64();
    Reference { load, first, decode, prefill }
}
