//! rig's agent loop against the emulator: an agent with two tools answers a question that needs
//! both, in streaming and non-streaming mode; structured output; per-request settings; usage;
//! errors with the transient flag of the SDK's retry.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use rig_agent::{AgentBuilder, agent::MultiTurnStreamItem};
use rig_core::{
    completion::CompletionRequest,
    streaming::{Item, StreamEvent},
    tool::PortableTool,
};
use serde::Deserialize;
use yandex_cloud_ml_emulator::{AuthMode, Emulator, EmulatorConfig, EmulatorHandle, ScriptRule, ScriptedAnswer};
use yandex_cloud_ml_rig::RigExt;
use yandex_cloud_ml_sdk::{RetryPolicy, Sdk, completions::ReasoningMode};

#[derive(Deserialize)]
struct Pair {
    a: i64,
    b: i64,
}

/// Both tools record the arguments they were called with.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(String, i64, i64)>>>);

struct Add(Calls);
struct Multiply(Calls);

fn pair_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                       "required": ["a", "b"]})
}

impl PortableTool for Add {
    const NAME: &'static str = "add";
    type Args = Pair;
    type Output = i64;
    type Error = std::convert::Infallible;

    fn description(&self) -> String {
        "Adds two integers".into()
    }

    fn parameters(&self) -> serde_json::Value {
        pair_schema()
    }

    async fn call(&self, p: Pair) -> Result<i64, std::convert::Infallible> {
        self.0.0.lock().unwrap().push(("add".into(), p.a, p.b));
        Ok(p.a + p.b)
    }
}

impl PortableTool for Multiply {
    const NAME: &'static str = "multiply";
    type Args = Pair;
    type Output = i64;
    type Error = std::convert::Infallible;

    fn description(&self) -> String {
        "Multiplies two integers".into()
    }

    fn parameters(&self) -> serde_json::Value {
        pair_schema()
    }

    async fn call(&self, p: Pair) -> Result<i64, std::convert::Infallible> {
        self.0.0.lock().unwrap().push(("multiply".into(), p.a, p.b));
        Ok(p.a * p.b)
    }
}

async fn emulator() -> EmulatorHandle {
    Emulator::builder().start("127.0.0.1:0").await.unwrap()
}

fn sdk(emulator: &EmulatorHandle) -> Sdk {
    let fast = RetryPolicy::default().initial_backoff(std::time::Duration::from_millis(5)).max_attempts(2);
    Sdk::builder().emulator(emulator.endpoint()).retry_policy(fast).build().unwrap()
}

const QUESTION: &str = "Use add and multiply on 6 and 7: what are the sum and the product?";
const ANSWER: &str = "The result of add is 13. The result of multiply is 42.";

fn agent(sdk: &Sdk, calls: &Calls) -> rig_agent::Agent {
    AgentBuilder::new(sdk.models().completions("yandexgpt").rig())
        .preamble("You are a calculator; use the tools.")
        .tool(Add(calls.clone()))
        .tool(Multiply(calls.clone()))
        .default_max_turns(3)
        .build()
}

#[tokio::test]
async fn an_agent_with_two_tools_answers_with_both() {
    let emulator = emulator().await;
    let calls = Calls::default();
    let response = agent(&sdk(&emulator), &calls).prompt(QUESTION).await.unwrap();
    assert_eq!(response.output(), ANSWER);
    let mut seen = calls.0.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [("add".to_owned(), 6, 7), ("multiply".to_owned(), 6, 7)]);

    // The second request carried the system prompt, the question, the calls and both results.
    let last = emulator.control().journal().into_iter().rev().find(|e| e.method.ends_with("/Completion")).unwrap();
    let messages = last.request["messages"].as_array().unwrap().clone();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[1]["text"], QUESTION);
    assert_eq!(messages[2]["toolCallList"]["toolCalls"].as_array().unwrap().len(), 2);
    assert_eq!(messages[3]["toolResultList"]["toolResults"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_streaming_agent_delivers_deltas_tool_calls_and_the_same_answer() {
    let emulator = emulator().await;
    let calls = Calls::default();
    let mut stream = agent(&sdk(&emulator), &calls).prompt(QUESTION).stream();
    let (mut text, mut tool_calls, mut tool_results, mut last) = (String::new(), 0, 0, None);
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            MultiTurnStreamItem::StreamAssistantItem(Item::Event(StreamEvent::Text { text: t, .. })) => {
                text.push_str(&t)
            }
            MultiTurnStreamItem::ToolCall { .. } => tool_calls += 1,
            MultiTurnStreamItem::ToolResult { .. } => tool_results += 1,
            MultiTurnStreamItem::FinalResponse(response) => last = Some(response.output()),
            _ => {}
        }
    }
    assert_eq!((tool_calls, tool_results), (2, 2));
    assert_eq!(text, ANSWER, "the deltas add up to the answer");
    assert_eq!(last.as_deref(), Some(ANSWER));
    assert!(emulator.control().journal().iter().any(|e| e.request["completionOptions"]["stream"] == true));
}

#[tokio::test]
async fn chat_history_and_per_request_settings_reach_the_model() {
    let emulator = emulator().await;
    let sdk = sdk(&emulator);
    let agent =
        AgentBuilder::new(sdk.models().completions("yandexgpt").configure(|c| c.temperature(0.9)).unwrap().rig())
            .preamble("Be brief.")
            .temperature(0.2)
            .max_tokens(50)
            .build();
    let mut history =
        vec![rig_core::completion::Message::user("first"), rig_core::completion::Message::assistant("Echo: first")];
    let response = agent.chat("second", &mut history).await.unwrap();
    assert_eq!(response.output(), "Echo: second");
    let request = emulator.control().journal().pop().unwrap().request;
    assert_eq!(request["completionOptions"]["temperature"], 0.2, "the request's temperature wins over configure()");
    assert_eq!(request["completionOptions"]["maxTokens"], "50");
    let texts: Vec<&str> =
        request["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Be brief.", "first", "Echo: first", "second"]);
}

#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
struct Person {
    name: String,
    age: u32,
}

#[tokio::test]
async fn structured_output_uses_the_json_schema_mode() {
    let emulator = emulator().await;
    let model = sdk(&emulator).models().completions("yandexgpt").rig();
    let agent = AgentBuilder::new(model.clone()).build();
    let person = agent.prompt_typed::<Person>("Ann is 31").await.unwrap().output;
    assert_eq!(person, Person { name: "Ann is 31".into(), age: 31 });
    let request = emulator.control().journal().pop().unwrap().request;
    assert_eq!(request["jsonSchema"]["schema"]["title"], "Person");

    // rig's extractor forces its submit tool; the call's arguments are the value.
    let extracted =
        rig_agent::extractor::ExtractorBuilder::<Person>::new(model).build().extract("Bob is 40").await.unwrap();
    assert_eq!(extracted.output.age, 40);
}

#[tokio::test]
async fn usage_reports_reasoning_tokens() {
    let emulator = emulator().await;
    let model = sdk(&emulator)
        .models()
        .completions("yandexgpt")
        .configure(|c| c.reasoning_mode(ReasoningMode::EnabledHidden))
        .unwrap();
    let response = model.rig().call(CompletionRequest::new("think about it")).await.unwrap();
    let usage = response.usage;
    assert!(usage.reasoning_tokens.unwrap() > 0, "{usage:?}");
    assert_eq!(usage.total_tokens, Some(usage.input_tokens.unwrap() + usage.output_tokens.unwrap()));
}

#[tokio::test]
async fn errors_carry_the_code_and_the_transient_flag_of_the_sdk_retry() {
    let emulator = emulator().await;
    for (prompt, code) in [("overloaded", tonic_code::UNAVAILABLE), ("broken", tonic_code::INVALID_ARGUMENT)] {
        let rule = ScriptRule {
            prompt_contains: prompt.into(),
            model: None,
            answer: ScriptedAnswer::Error { code, message: format!("{prompt} on purpose") },
            times: None,
        };
        emulator.control().add_script(rule).unwrap();
    }
    let model = sdk(&emulator).models().completions("yandexgpt").rig();
    let e = model.call(CompletionRequest::new("overloaded")).await.unwrap_err();
    let response = e.provider_response().unwrap();
    assert_eq!((response.code.as_deref(), response.transient), (Some("UNAVAILABLE"), Some(true)));
    assert!(e.is_retryable() && e.to_string().contains("overloaded on purpose"), "{e}");
    // Our retry ran first: two attempts reached the emulator, not more.
    let attempts = emulator.control().journal().iter().filter(|j| j.request.to_string().contains("overloaded")).count();
    assert_eq!(attempts, 2);

    let e = model.stream(CompletionRequest::new("broken")).unwrap().finish().await.unwrap_err();
    let response = e.provider_response().unwrap();
    assert_eq!((response.code.as_deref(), response.transient), (Some("INVALID_ARGUMENT"), Some(false)));
    assert!(!e.is_retryable());

    // The flag follows the call's own retry policy, not a fixed list of codes.
    let internal = ScriptRule {
        prompt_contains: "crashed".into(),
        model: None,
        answer: ScriptedAnswer::Error { code: tonic_code::INTERNAL, message: "crashed on purpose".into() },
        times: None,
    };
    emulator.control().add_script(internal).unwrap();
    let policy = RetryPolicy::default()
        .initial_backoff(std::time::Duration::from_millis(5))
        .max_attempts(2)
        .retryable_codes([yandex_cloud_ml_sdk::Code::Internal]);
    let custom = Sdk::builder().emulator(emulator.endpoint()).retry_policy(policy).build().unwrap();
    let model = custom.models().completions("yandexgpt").rig();
    let e = model.call(CompletionRequest::new("crashed")).await.unwrap_err();
    assert_eq!(e.provider_response().unwrap().transient, Some(true), "INTERNAL is retryable under this policy");
    let e = model.call(CompletionRequest::new("overloaded")).await.unwrap_err();
    assert_eq!(e.provider_response().unwrap().transient, Some(false), "UNAVAILABLE is not, under this policy");

    let config = EmulatorConfig {
        auth: AuthMode::Require { api_keys: vec!["right".into()], iam_tokens: vec![], oauth_tokens: vec![] },
        ..Default::default()
    };
    let strict = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let wrong = Sdk::builder().emulator(strict.endpoint()).api_key("wrong").build().unwrap();
    let e = wrong.models().completions("yandexgpt").rig().call(CompletionRequest::new("hi")).await.unwrap_err();
    assert!(matches!(e, rig_core::ProviderError::InvalidAuthentication(_)), "{e:?}");
    assert!(!e.to_string().contains("wrong"), "the key never appears in errors: {e}");
}

/// gRPC status numbers used by the scripted faults.
mod tonic_code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}
