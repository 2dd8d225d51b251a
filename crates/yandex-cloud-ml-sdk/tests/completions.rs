//! The whole completions surface against the emulator.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_emulator::{Emulator, OperationPolicy, ScriptRule, ScriptedAnswer, ScriptedCall};
use yandex_cloud_ml_sdk::{
    ErrorKind,
    completions::{AlternativeStatus, Message, ReasoningMode, ResponseFormat},
    operations::OperationStatus,
    tools::{FunctionTool, ToolChoice, ToolResult},
};

fn numbers_tool(name: &str) -> FunctionTool {
    FunctionTool::new(
        name,
        json!({"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}}, "required": ["numbers"]}),
    )
    .with_description("sums numbers")
}

#[tokio::test]
async fn model_uris_and_config_accessors() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let folder = sdk.folder_id().to_owned();
    let m = sdk.models().completions("yandexgpt");
    assert_eq!(m.uri(), format!("gpt://{folder}/yandexgpt/latest"));
    assert_eq!((m.name(), m.version(), m.fine_tuned()), (Some("yandexgpt"), Some("latest"), Some(false)));
    let m = sdk.models().completions_with_version("yandexgpt-lite", "rc");
    assert_eq!(m.uri(), format!("gpt://{folder}/yandexgpt-lite/rc"));
    let tuned = sdk.models().completions_with_version("gpt://b1gx/yandexgpt-lite/latest@tamr1", "ignored");
    assert_eq!(tuned.uri(), "gpt://b1gx/yandexgpt-lite/latest@tamr1");
    assert_eq!(tuned.fine_tuned(), Some(true));

    let configured = m.configure(|c| c.temperature(0.5).max_tokens(100)).unwrap();
    assert_eq!(configured.config().get_temperature(), Some(0.5));
    assert_eq!(m.config().get_temperature(), None, "configure returns a new model");
    let cleared = configured.configure(|c| c.temperature(None)).unwrap();
    assert_eq!((cleared.config().get_temperature(), cleared.config().get_max_tokens()), (None, Some(100)));
}

#[tokio::test]
async fn configuration_reaches_the_wire() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let model = sdk
        .models()
        .completions("yandexgpt")
        .configure(|c| {
            c.temperature(0.0)
                .max_tokens(50)
                .reasoning_mode(ReasoningMode::EnabledHidden)
                .tool(numbers_tool("sum"))
                .parallel_tool_calls(false)
                .tool_choice(ToolChoice::None)
        })
        .unwrap();
    model.run("hi").await.unwrap();
    let request = emulator.control().journal().pop().unwrap().request;
    assert_eq!(
        request["completionOptions"],
        json!({"temperature": 0.0, "maxTokens": "50", "reasoningOptions": {"mode": "ENABLED_HIDDEN"}})
    );
    assert_eq!(request["parallelToolCalls"], false);
    assert_eq!(request["toolChoice"], json!({"mode": "NONE"}));
    assert_eq!(request["tools"][0]["function"]["name"], "sum");
}

#[tokio::test]
async fn bad_configuration_is_rejected_locally_with_the_field_named() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    for (result, needle) in [
        (model.configure(|c| c.temperature(1.5)), "temperature must be between 0 and 1"),
        (model.configure(|c| c.max_tokens(0)), "max_tokens must be at least 1"),
        (model.configure(|c| c.tool(FunctionTool::new("", json!({})))), "tool name is empty"),
        (model.configure(|c| c.tool_choice(ToolChoice::Function("nope".into()))), "`nope`"),
        (
            model.configure(|c| c.response_format(ResponseFormat::json_schema(json!(1)))),
            "JSON schema must be a JSON object",
        ),
    ] {
        let e = result.unwrap_err();
        assert!(e.is_invalid_input() && e.to_string().contains(needle), "{e}");
    }
    let e = model.run(Vec::<Message>::new()).await.unwrap_err();
    assert!(e.is_invalid_input() && e.to_string().contains("messages are empty"), "{e}");
    assert_eq!(emulator.control().journal().len(), 0, "nothing was sent");
}

#[tokio::test]
async fn emulator_validation_names_the_field() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let e = sdk.models().completions("yandexgpt").run(Message::new("robot", "hi")).await.unwrap_err();
    assert!(e.is_invalid_argument() && e.message().contains("messages[0].role"), "{e}");
    let bad_schema = ResponseFormat::json_schema(json!({"type": "object", "properties": {"x": {"type": "strng"}}}));
    let model = sdk.models().completions("yandexgpt").configure(|c| c.response_format(bad_schema)).unwrap();
    let e = model.run("hi").await.unwrap_err();
    assert!(e.is_invalid_argument() && e.message().contains("json_schema.schema.properties.x.type"), "{e}");
}

#[tokio::test]
async fn chat_history_and_results_as_messages() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let first = model.run([Message::system("be brief"), Message::user("first")]).await.unwrap();
    let second = model
        .run(vec![Message::system("be brief"), "first".into(), Message::from(&first), "second".into()])
        .await
        .unwrap();
    assert_eq!(second.text(), "Echo: second");
    let sent = emulator.control().journal().pop().unwrap().request["messages"].clone();
    assert_eq!(
        sent,
        json!([{"role": "system", "text": "be brief"}, {"role": "user", "text": "first"},
               {"role": "assistant", "text": "Echo: first"}, {"role": "user", "text": "second"}])
    );
    assert!(second.usage().input_text_tokens > first.usage().input_text_tokens);
}

#[tokio::test]
async fn run_stream_yields_deltas_that_add_up_and_ends_final() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let prompt = "tell me a long story about a platypus who learns to swim in a river";
    let mut stream = model.run_stream(prompt).await.unwrap();
    let mut text = String::new();
    let mut statuses = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        text.push_str(chunk.delta());
        assert_eq!(text, chunk.text());
        statuses.push(chunk.status());
    }
    assert!(statuses.len() >= 3, "several chunks: {statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == AlternativeStatus::Partial));
    assert_eq!(*statuses.last().unwrap(), AlternativeStatus::Final);
    assert_eq!(text, format!("Echo: {prompt}"));
    let request = emulator.control().journal().pop().unwrap().request;
    assert_eq!(request["completionOptions"]["stream"], true);
    let non_stream = model.run(prompt).await.unwrap();
    assert_eq!(non_stream.text(), text, "streamed and unary answers agree");
}

#[tokio::test]
async fn final_result_collects_a_stream() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let result = model.run_stream("collect me please").await.unwrap().final_result().await.unwrap();
    assert_eq!(result.text(), "Echo: collect me please");
}

#[tokio::test]
async fn dropping_a_stream_stops_generation_on_the_server() {
    let emulator = common::start(Emulator::builder().stream_chunk_delay(Duration::from_millis(50))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let mut stream = model.run_stream("word ".repeat(200).as_str()).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.status(), AlternativeStatus::Partial);
    drop(stream);
    // The paced producer notices on its next send that the client went away and stops.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while emulator.control().stats().streams_cancelled == 0 {
        assert!(std::time::Instant::now() < deadline, "generation did not stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(model.run("after").await.unwrap().text(), "Echo: after");
}

#[tokio::test]
async fn max_tokens_truncates_and_reasoning_is_counted() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let truncated = model.configure(|c| c.max_tokens(2)).unwrap().run("one two three four").await.unwrap();
    assert_eq!(truncated.status(), AlternativeStatus::TruncatedFinal);
    assert_eq!(truncated.usage().completion_tokens, 2);
    assert_eq!(truncated.text(), "Echo:");
    let reasoning =
        model.configure(|c| c.reasoning_mode(ReasoningMode::EnabledHidden)).unwrap().run("think").await.unwrap();
    assert!(reasoning.usage().reasoning_tokens > 0);
    let plain = model.run("think").await.unwrap();
    assert_eq!(plain.usage().reasoning_tokens, 0);
    assert_eq!(
        reasoning.usage().completion_tokens,
        plain.usage().completion_tokens + reasoning.usage().reasoning_tokens
    );
}

#[tokio::test]
async fn tokenize_agrees_with_usage() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let tokens = model.tokenize("count my tokens").await.unwrap();
    assert_eq!(tokens[0].text, "<s>");
    assert!(tokens[0].special && tokens.last().unwrap().special);
    let result = model.run("count my tokens").await.unwrap();
    assert_eq!(result.usage().input_text_tokens, tokens.len() as u64);
}

#[tokio::test]
async fn json_mode_and_json_schema_produce_valid_json() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let json_mode = model.configure(|c| c.response_format(ResponseFormat::Json)).unwrap();
    let answer: serde_json::Value = serde_json::from_str(json_mode.run("reply in JSON").await.unwrap().text()).unwrap();
    assert!(answer.is_object());
    let schema = json!({"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}}, "required": ["numbers"]});
    let schema_mode = model.configure(|c| c.response_format(ResponseFormat::json_schema(schema))).unwrap();
    let answer: serde_json::Value =
        serde_json::from_str(schema_mode.run("numbers: 5, 4, a, 1").await.unwrap().text()).unwrap();
    assert_eq!(answer, json!({"numbers": [5, 4, 1]}));
}

#[derive(Debug, PartialEq, serde::Deserialize, schemars::JsonSchema)]
struct Person {
    name: String,
    age: u32,
    tags: Vec<String>,
}

#[tokio::test]
async fn run_structured_returns_typed_values() {
    let emulator = common::emulator().await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let person: Person = model.run_structured::<Person>("Ann is 31").await.unwrap();
    assert_eq!(person.age, 31);
    assert_eq!(person.name, "Ann is 31");
    let request = emulator.control().journal().pop().unwrap().request;
    assert_eq!(request["jsonSchema"]["schema"]["title"], "Person");

    // A model answer that does not fit the type is a clear decode error carrying the answer.
    emulator
        .control()
        .add_script(ScriptRule {
            prompt_contains: "broken".into(),
            model: None,
            answer: ScriptedAnswer::Text { text: "{\"name\": 5}".into() },
            times: None,
        })
        .unwrap();
    let e = model.run_structured::<Person>("broken").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("not valid JSON for") && e.to_string().contains("{\"name\": 5}"), "{e}");
}

#[tokio::test]
async fn tool_round_trip_in_auto_mode() {
    let emulator = common::emulator().await;
    let model =
        common::sdk(&emulator).models().completions("yandexgpt").configure(|c| c.tool(numbers_tool("sum"))).unwrap();
    let question = Message::user("please sum 1, 2 and 39");
    let first = model.run(question.clone()).await.unwrap();
    assert_eq!(first.status(), AlternativeStatus::ToolCalls);
    let call = &first.tool_calls()[0];
    #[derive(serde::Deserialize)]
    struct Args {
        numbers: Vec<i64>,
    }
    let args: Args = call.function().unwrap().arguments_as().unwrap();
    let total: i64 = args.numbers.iter().sum();
    assert_eq!(total, 42);
    let result = ToolResult::for_call(call, total).unwrap();
    let answer = model.run(vec![question, Message::from(&first), Message::from(result)]).await.unwrap();
    assert_eq!(answer.text(), "The result of sum is 42.");
    assert_eq!(answer.status(), AlternativeStatus::Final);

    let plain = model.run("no tools needed").await.unwrap();
    assert_eq!(plain.status(), AlternativeStatus::Final);
}

#[tokio::test]
async fn tool_choice_and_parallel_calls() {
    let emulator = common::emulator().await;
    let base = common::sdk(&emulator).models().completions("yandexgpt");
    let model = base.configure(|c| c.tools([numbers_tool("sum"), numbers_tool("mul")])).unwrap();
    let both = model.run("sum and mul 2, 3").await.unwrap();
    assert_eq!(both.tool_calls().len(), 2);
    let one = model.configure(|c| c.parallel_tool_calls(false)).unwrap().run("sum and mul 2, 3").await.unwrap();
    assert_eq!(one.tool_calls().len(), 1);
    let required = model.configure(|c| c.tool_choice(ToolChoice::Required)).unwrap().run("anything").await.unwrap();
    assert_eq!(required.tool_calls()[0].name(), "sum");
    let mul = numbers_tool("mul");
    let forced = model.configure(|c| c.tool_choice(ToolChoice::from(&mul))).unwrap().run("anything").await.unwrap();
    assert_eq!(forced.tool_calls()[0].name(), "mul");
    let none = model.configure(|c| c.tool_choice(ToolChoice::None)).unwrap().run("sum 1, 2").await.unwrap();
    assert!(none.tool_calls().is_empty());
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
/// Looks up the weather in a city.
struct GetWeather {
    city: String,
}

#[tokio::test]
async fn tools_from_rust_types() {
    let emulator = common::emulator().await;
    let tool = FunctionTool::from_type::<GetWeather>();
    assert_eq!(tool.name(), "GetWeather");
    let model = common::sdk(&emulator).models().completions("yandexgpt").configure(|c| c.tool(tool)).unwrap();
    let result = model.run("what does GetWeather say for Moscow?").await.unwrap();
    let args: GetWeather = result.tool_calls()[0].function().unwrap().arguments_as().unwrap();
    assert!(!args.city.is_empty());
}

#[tokio::test]
async fn scripted_replies_pin_exact_answers() {
    let emulator = common::emulator().await;
    let control = emulator.control();
    control
        .add_script(ScriptRule {
            prompt_contains: "weather".into(),
            model: Some("yandexgpt".into()),
            answer: ScriptedAnswer::Text { text: "Sunny, 25°C".into() },
            times: Some(1),
        })
        .unwrap();
    control
        .add_script(ScriptRule {
            prompt_contains: "moderate".into(),
            model: None,
            answer: ScriptedAnswer::ContentFilter { text: "I cannot talk about that".into() },
            times: None,
        })
        .unwrap();
    control
        .add_script(ScriptRule {
            prompt_contains: "call".into(),
            model: None,
            answer: ScriptedAnswer::ToolCalls {
                calls: vec![ScriptedCall { name: "f".into(), arguments: json!({"x": 1}) }],
            },
            times: None,
        })
        .unwrap();
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    assert_eq!(model.run("what's the weather?").await.unwrap().text(), "Sunny, 25°C");
    assert_eq!(model.run("what's the weather?").await.unwrap().text(), "Echo: what's the weather?", "used up");
    let filtered = model.run("please moderate").await.unwrap();
    assert_eq!(filtered.status(), AlternativeStatus::ContentFilter);
    let called = model.run("call it").await.unwrap();
    assert_eq!(called.tool_calls()[0].function().unwrap().arguments, json!({"x": 1}));
}

#[tokio::test]
async fn run_deferred_wait_status_and_attach() {
    let emulator = common::start(Emulator::builder().operations(OperationPolicy::AfterPolls(3))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let op = model.run_deferred("deferred hello").await.unwrap();
    assert_eq!(op.id().len(), 20);
    let status = op.info().await.unwrap();
    assert!(status.status().is_running() && status.description == "Async GPT Completion");
    let e = op.result().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OperationRunning);
    assert_eq!(e.operation_id(), Some(op.id()));
    // Re-attach by id from "another process".
    let attached = model.attach_deferred(op.id());
    let result = attached.wait().poll_interval(Duration::from_millis(5)).await.unwrap();
    assert_eq!(result.text(), "Echo: deferred hello");
    assert!(op.status().await.unwrap() == OperationStatus::Succeeded);
    let entries = emulator.control().journal();
    let create = entries.iter().find(|e| e.method.ends_with("TextGenerationAsyncService/Completion")).unwrap();
    assert!(create.metadata.contains_key("idempotency-key"));
}

#[tokio::test]
async fn deferred_operations_can_be_cancelled_failed_and_time_out() {
    let emulator = common::start(Emulator::builder().operations(OperationPolicy::Manual)).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");

    let op = model.run_deferred("slow").await.unwrap();
    let e = op.wait().poll_interval(Duration::from_millis(5)).timeout(Duration::from_millis(50)).await.unwrap_err();
    assert!(e.is_timeout() && e.to_string().contains("re-attach"), "{e}");
    op.cancel().await.unwrap();
    assert_eq!(op.status().await.unwrap(), OperationStatus::Failed);
    let e = op.result().await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::OperationFailed, Some(yandex_cloud_ml_sdk::Code::Cancelled)));

    let op = model.run_deferred("will fail").await.unwrap();
    emulator.control().fail_operation(op.id(), tonic::Code::Internal, "model crashed").unwrap();
    let e = op.wait().poll_interval(Duration::from_millis(5)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OperationFailed);
    assert!(e.to_string().contains("model crashed") && e.to_string().contains(op.id()), "{e}");

    let op = model.run_deferred("manual").await.unwrap();
    emulator.control().complete_operation(op.id()).await.unwrap();
    assert_eq!(op.result().await.unwrap().text(), "Echo: manual");

    let slow_rpc = model.attach_deferred(op.id());
    assert!(
        slow_rpc.status().timeout(Duration::from_nanos(1)).await.unwrap_err().is_timeout(),
        "the RPC timeout applies"
    );
    let missing = model.attach_deferred("d7enotthere000000000");
    assert!(missing.status().await.unwrap_err().is_not_found());
    assert!(model.attach_deferred("").status().await.unwrap_err().is_invalid_input());
}

#[tokio::test]
async fn operations_finishing_after_a_delay_complete_in_the_background() {
    let emulator = common::start(Emulator::builder().operations(OperationPolicy::AfterDelayMs(100))).await;
    let model = common::sdk(&emulator).models().completions("yandexgpt");
    let op = model.run_deferred("later").await.unwrap();
    assert!(op.status().await.unwrap().is_running());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(op.status().await.unwrap() == OperationStatus::Succeeded);
    assert_eq!(op.result().await.unwrap().text(), "Echo: later");
}

#[test]
fn hostile_configuration_is_refused_before_anything_is_sent() {
    let sdk = yandex_cloud_ml_sdk::Sdk::builder().emulator("127.0.0.1:1").build().unwrap();
    let model = sdk.models().completions("yandexgpt");
    // 1,000 levels of nesting (enough to overflow a tokio worker's stack in a recursive
    // conversion): a clear error at configure time.
    let deep = || {
        let mut v = serde_json::json!({"type": "string"});
        for _ in 0..1_000 {
            let mut map = serde_json::Map::new();
            map.insert("items".into(), v);
            v = serde_json::Value::Object(map);
        }
        v
    };
    let e = model.configure(|c| c.response_format(ResponseFormat::json_schema(deep()))).unwrap_err();
    assert!(e.is_invalid_input() && e.to_string().contains("nested deeper than 30 levels"), "{e}");
    let e = model.configure(|c| c.tool(FunctionTool::new("f", deep()))).unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
    // A key that cannot be a header is refused when the SDK is built.
    let e = yandex_cloud_ml_sdk::Sdk::builder().emulator("127.0.0.1:1").api_key("ключ").build().unwrap_err();
    assert!(e.to_string().contains("non-ASCII"), "{e}");
}
