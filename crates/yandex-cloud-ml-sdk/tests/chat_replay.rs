//! `sdk.chat()` replaying the official Python SDK's recordings of the OpenAI-compatible API
//! (testdata/cassettes/chat, origin in NOTICE): every request body equals the recorded one as
//! JSON, and the recorded answers and streams parse to the recorded texts, tool calls and usage.

mod common;

use futures_util::StreamExt;
use serde_json::Value;
use yandex_cloud_ml_emulator::replay::{Cassette, ReplayServer};
use yandex_cloud_ml_sdk::{
    Sdk, Tls,
    chat::{ChatMessage, ChatResponseFormat, ContentPart, FinishReason},
    completions::AlternativeStatus,
    tools::FunctionTool,
};

/// The folder of the chat recordings.
const FOLDER: &str = "b1ghsjum2v37c2un8h64";

struct Replay {
    server: ReplayServer,
    sdk: Sdk,
}

async fn replay(name: &str) -> Replay {
    let interactions = common::storage_cassette(&format!("chat/{name}.yaml"));
    let cassette = Cassette::parse(r#"{"interactions": []}"#).unwrap().with_storage(interactions);
    let server = ReplayServer::start(cassette, "127.0.0.1:0").await.unwrap();
    let sdk = Sdk::builder()
        .folder_id(FOLDER)
        .api_key("recorded")
        .endpoint(server.endpoint())
        .tls(Tls::PlaintextLoopbackOnly)
        .chat_base_url(format!("http://{}/v1", server.endpoint()))
        .build()
        .unwrap();
    Replay { server, sdk }
}

/// The recorded request bodies, in order.
fn recorded_requests(name: &str) -> Vec<Value> {
    common::storage_cassette(&format!("chat/{name}.yaml"))
        .iter()
        .map(|i| serde_json::from_slice(&i.request_body).unwrap())
        .collect()
}

/// Equal as JSON, numbers compared by value (`0` and `0.0` are the same number).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

impl Replay {
    /// Every recorded exchange was used, each with the recorded body.
    fn verify(&self) {
        let exchanges = self.server.storage_exchanges();
        assert!(!exchanges.is_empty());
        for e in &exchanges {
            let sent: Value = serde_json::from_slice(&e.body).unwrap();
            let recorded: Value = serde_json::from_slice(&e.recorded_body).unwrap();
            assert!(
                same_json(&sent, &recorded),
                "{} {}\nsent:     {sent}\nrecorded: {recorded}",
                e.method,
                e.path_and_query
            );
        }
        assert_eq!(self.server.unused(), 0, "recorded exchanges left unused");
    }
}

fn tool_from(recorded: &Value) -> FunctionTool {
    let f = &recorded["function"];
    let mut tool = FunctionTool::new(f["name"].as_str().unwrap(), f["parameters"].clone());
    if let Some(d) = f["description"].as_str() {
        tool = tool.with_description(d);
    }
    if let Some(strict) = f["strict"].as_bool() {
        tool = tool.with_strict(strict);
    }
    tool
}

#[tokio::test]
async fn run() {
    let r = replay("test_run").await;
    let result = r.sdk.chat().completions("qwen3-235b-a22b-fp8").run("hello").await.unwrap();
    assert_eq!(result.text(), "Hello! How can I assist you today? 😊");
    assert_eq!(result.status(), AlternativeStatus::Final);
    assert_eq!(result.model(), "gpt://qwen3-235b-a22b-fp8/latest");
    let usage = result.usage().unwrap();
    assert_eq!((usage.input_text_tokens, usage.completion_tokens, usage.total_tokens), (9, 12, 21));
    r.verify();
}

#[tokio::test]
async fn run_stream() {
    let r = replay("test_run_stream").await;
    let model = r.sdk.chat().completions("qwen3-235b-a22b-fp8");
    let mut stream = model.run_stream("hello! could you please tell me about platypuses?").await.unwrap();
    let mut deltas = Vec::new();
    while let Some(delta) = stream.next().await {
        deltas.push(delta.unwrap());
    }
    // ~740 one-token deltas, then the stop step and the usage step.
    assert!(deltas.len() > 700, "{}", deltas.len());
    let text: String = deltas.iter().map(|d| d.delta()).collect();
    let (stop, usage) = (&deltas[deltas.len() - 2], &deltas[deltas.len() - 1]);
    assert_eq!((stop.status(), stop.finish_reason()), (AlternativeStatus::Final, Some(&FinishReason::Stop)));
    assert_eq!(stop.text(), text);
    assert!(text.contains("platypus"), "{text}");
    let u = usage.usage().unwrap();
    assert_eq!((u.input_text_tokens, u.completion_tokens, u.total_tokens), (20, 741, 761));
    assert!(deltas[..deltas.len() - 2].iter().all(|d| d.status() == AlternativeStatus::Partial));
    r.verify();
}

#[tokio::test]
async fn function_call_round_trip() {
    let recorded = recorded_requests("test_function_call");
    let r = replay("test_function_call").await;
    let tool = tool_from(&recorded[0]["tools"][0]);
    let model = r.sdk.chat().completions("yandexgpt").configure(|c| c.tool(tool)).unwrap();
    let question = "do a SOMETHING with all the numbers from: 5, 4, a, 1";
    let first = model.run(question).await.unwrap();
    assert_eq!(first.status(), AlternativeStatus::ToolCalls);
    let call = &first.tool_calls()[0];
    assert_eq!((call.id(), call.name()), ("something", "something"));
    assert!(first.server_request_id().is_some(), "the recorded x-request-id");
    assert_eq!(call.arguments_json().unwrap(), serde_json::json!({"numbers": [5, 4, 1]}));
    let second = model.run(vec![ChatMessage::user(question), (&first).into(), call.result("+20.0")]).await.unwrap();
    assert_eq!(second.text(), "The result of the operation performed by the tool on the numbers [5, 4, 1] is +20.0.");
    r.verify();
}

#[tokio::test]
async fn streamed_function_call_in_fragments() {
    let name = "test_stream_function_call[qwen3-235b-a22b-fp8]";
    let recorded = recorded_requests(name);
    let r = replay(name).await;
    let tool = tool_from(&recorded[0]["tools"][0]);
    let model = r.sdk.chat().completions("qwen3-235b-a22b-fp8").configure(|c| c.tool(tool)).unwrap();
    let question = "How much it would be 7@8?";
    let calls = model.run_stream(question).await.unwrap().final_result().await.unwrap();
    assert_eq!(calls.status(), AlternativeStatus::ToolCalls);
    let call = &calls.tool_calls()[0];
    assert_eq!(
        (call.id(), call.name(), call.arguments()),
        ("chatcmpl-tool-ac80b103abf04365affb7135287855a6", "calculator", "{\"expression\": \"7@8\"}")
    );
    assert_eq!(calls.usage().unwrap().total_tokens, 211);
    let answer = model.run_stream(vec![ChatMessage::user(question), (&calls).into(), call.result("-5")]).await.unwrap();
    let answer = answer.final_result().await.unwrap();
    assert_eq!(answer.status(), AlternativeStatus::Final);
    assert!(answer.text().contains("-5"), "{}", answer.text());
    r.verify();
}

#[tokio::test]
async fn structured_output_with_a_named_schema() {
    let recorded = recorded_requests("test_structured_output_json_schema");
    let r = replay("test_structured_output_json_schema").await;
    let schema = recorded[0]["response_format"]["json_schema"]["schema"].clone();
    let format = ChatResponseFormat::json_schema("foo", schema);
    let model = r.sdk.chat().completions("yandexgpt").configure(|c| c.response_format(format)).unwrap();
    let result = model.run("collect all numbers from: 5, 4, a, 1").await.unwrap();
    let numbers: Value = result.parse().unwrap();
    assert_eq!(numbers["numbers"], serde_json::json!([5, 4, 1]));
    r.verify();
}

#[tokio::test]
async fn structured_output_strict_with_temperature() {
    let recorded = recorded_requests("test_structured_output_pydantic_dataclass");
    let r = replay("test_structured_output_pydantic_dataclass").await;
    let schema = recorded[0]["response_format"]["json_schema"]["schema"].clone();
    let format = ChatResponseFormat::json_schema("Numbers", schema).strict(true);
    let model =
        r.sdk.chat().completions("yandexgpt").configure(|c| c.response_format(format).temperature(0.0)).unwrap();
    let result = model.run("collect all numbers from: 5, 4, a, 1").await.unwrap();
    assert_eq!(result.parse::<Value>().unwrap()["numbers"], serde_json::json!([5, 4, 1]));
    r.verify();
}

#[tokio::test]
async fn image_parts() {
    let r = replay("test_multimodal").await;
    let png = std::fs::read(common::cassette("chat/example.png")).unwrap();
    let message = ChatMessage::user_parts([
        ContentPart::text("What is depicted in the following image"),
        ContentPart::image("image/png", png),
    ]);
    let result = r.sdk.chat().completions("gemma-3-27b-it").run(message).await.unwrap();
    assert!(result.text().starts_with("The image depicts a highly detailed **LEGO Technic model of a computer**"));
    assert_eq!(result.usage().unwrap().input_text_tokens, 276);
    r.verify();
}

#[tokio::test]
async fn embeddings() {
    let r = replay("test_embeddings_run").await;
    let vector = r.sdk.chat().text_embeddings("text-search-doc").run("hello").await.unwrap();
    assert_eq!(vector.len(), 256);
    assert_eq!(vector.as_slice()[..3], [0.0469970703125, 0.017974853515625, -0.002056121826171875]);
    assert_eq!(vector.num_tokens(), 3);
    r.verify();
}
