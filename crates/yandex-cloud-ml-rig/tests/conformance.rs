//! rig's own conformance checks on the Yandex wire: the streaming suite over scripted frames,
//! unary/streamed agreement of the folded turn and of its raw document, the cumulative-to-delta
//! rule (content filter included), and what `encode` sends.
// rig fixes the size of its error types.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};

use rig_core::{
    ProviderError,
    completion::{CompletionRequest, FinishReason, ToolDefinition},
    driver::{Exchange, Model, Opened, Opening, Transport},
    message::{AssistantContent, Message as RigMessage, ToolChoice},
    streaming::{Item, StreamEvent},
    test_utils::streaming_conformance::{ProviderWireFixture, WireDriver, WireInput, event_frame, fixtures::drain},
    wire::{Mode, Operation, Wire},
};
use serde_json::{Value, json};
use yandex_cloud_ml_rig::{Payload, YandexWire};
use yandex_cloud_ml_sdk::completions::{CompletionResult, Role};

fn wire() -> YandexWire {
    // No call is made through this SDK: frames are scripted.
    let sdk = yandex_cloud_ml_sdk::Sdk::builder().emulator("127.0.0.1:9").build().unwrap();
    YandexWire::new(sdk.models().completions("yandexgpt"))
}

/// A cumulative chunk as the SDK reads it off the wire.
fn frame(text: &str, status: &str, calls: &[(&str, Value)], usage: [u64; 4]) -> CompletionResult {
    let calls: Vec<Value> = calls.iter().map(|(n, a)| json!({"function": {"name": n, "arguments": a}})).collect();
    serde_json::from_value(json!({
        "alternatives": [{"role": "assistant", "text": text, "status": status, "tool_calls": calls}],
        "usage": {"input_text_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[2],
                  "reasoning_tokens": usage[3]},
        "model_version": "23.10.2024",
    }))
    .unwrap()
}

/// Replays scripted frames as one reply, in either mode.
#[derive(Clone)]
struct Scripted(Arc<Mutex<Vec<Result<CompletionResult, ProviderError>>>>);

impl Scripted {
    fn new(frames: Vec<CompletionResult>) -> Scripted {
        Scripted(Arc::new(Mutex::new(frames.into_iter().map(Ok).collect())))
    }
}

impl Transport<YandexWire> for Scripted {
    fn send(&self, _payload: Payload, _exchange: Exchange) -> Opening<CompletionResult> {
        let frames = std::mem::take(&mut *self.0.lock().unwrap());
        Opening::ready(Opened::new(futures_util::stream::iter(frames)))
    }
}

fn driver() -> WireDriver {
    WireDriver::new("yandex_grpc", |chunks| {
        Box::pin(async move {
            let frames = chunks
                .into_iter()
                .map(|chunk| match chunk {
                    Ok(input) => input
                        .downcast_event::<CompletionResult>()
                        .cloned()
                        .ok_or_else(|| ProviderError::Provider("frames must be CompletionResult".into())),
                    Err(e) => Err(ProviderError::Http(e.into())),
                })
                .collect();
            let stream = Model::new(wire(), Scripted(Arc::new(Mutex::new(frames)))).stream("hello")?;
            Ok(drain(stream).await)
        })
    })
}

fn input(f: CompletionResult) -> WireInput {
    event_frame(f)
}

fn fixture() -> ProviderWireFixture {
    ProviderWireFixture {
        driver: driver(),
        text_frames: vec![input(frame("hi", "PARTIAL", &[], [0; 4]))],
        expected_texts: vec!["hi"],
        // Calls can arrive before the final chunk; later chunks repeat them.
        tool_call_frames: vec![input(frame("", "PARTIAL", &[("get_weather", json!({"city": "Tokyo"}))], [0; 4]))],
        expected_tool_name: "get_weather",
        // Yandex sends calls whole: arguments never stream.
        partial_tool_call_frames: None,
        // Cumulative: the final chunk restates "hi"; only the usage is new.
        terminal_frames: vec![input(frame("hi", "FINAL", &[], [5, 2, 7, 0]))],
        expected_usage_total: 7,
        expected_finish_reason: Some(FinishReason::Stop),
        zero_usage_terminal_frames: Some(vec![input(frame("hi", "FINAL", &[], [0; 4]))]),
        bare_terminal_frames: None,
        // prost decodes the wire; a corrupt or unknown frame is a transport error, not a frame.
        malformed_frame: None,
        unknown_event_frame: None,
        defective_known_frame: None,
        delta_less_prelude_frame: None,
        refusal: None,
        // Yandex reasoning is hidden: only its token count is reported.
        interleaved_reasoning: None,
    }
}

rig_core::streaming_conformance_suite! {
    provider: "yandex_grpc",
    fixture: fixture(),
    manifest: [zero_usage_terminal],
}

fn texts(items: &[Item<StreamEvent>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Event(StreamEvent::Text { text, .. }) => Some(text.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn cumulative_chunks_become_deltas_and_a_content_filter_restates() {
    use rig_core::test_utils::history_conformance::cut;
    // The recorded example of the Python adapter: "Me" then "Meow! Meow meow.".
    let (response, ended, items) = cut(
        &wire(),
        Mode::Streaming,
        [frame("Me", "PARTIAL", &[], [0; 4]), frame("Meow! Meow meow.", "FINAL", &[], [12, 6, 18, 0])],
    );
    assert!(ended);
    assert_eq!(texts(&items), ["Me", "ow! Meow meow."]);
    assert_eq!(response.text(), "Meow! Meow meow.");
    assert_eq!(response.usage.total_tokens, Some(18));

    // Moderation replaces the text: the turn ends holding the replacement.
    // Like the Python adapter, the whole replacement is the delta.
    let (response, _, items) = cut(
        &wire(),
        Mode::Streaming,
        [
            frame("Here is how to", "PARTIAL", &[], [0; 4]),
            frame("I can't talk about that.", "CONTENT_FILTER", &[], [1, 1, 2, 0]),
        ],
    );
    assert_eq!(texts(&items), ["Here is how to", "I can't talk about that."]);
    assert_eq!(response.text(), "I can't talk about that.");
    assert_eq!(response.finish_reason(), Some(FinishReason::ContentFilter));
}

#[test]
fn streamed_text_is_never_taken_back_and_calls_come_from_the_final_chunk() {
    use rig_core::test_utils::history_conformance::cut;
    // A final chunk that repeats less text (e.g. a tool-call chunk) keeps what was streamed;
    // a call whose arguments changed by the final chunk runs with the final arguments.
    let (response, ended, _) = cut(
        &wire(),
        Mode::Streaming,
        [
            frame("Let me check.", "PARTIAL", &[("add", json!({"a": 1}))], [0; 4]),
            frame("", "TOOL_CALLS", &[("add", json!({"a": 1, "b": 2}))], [3, 3, 6, 0]),
        ],
    );
    assert!(ended);
    assert_eq!(response.text(), "Let me check.");
    let calls: Vec<_> = response.tool_calls().collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.arguments_value(), json!({"a": 1, "b": 2}));
}

#[test]
fn unary_and_streamed_replies_fold_to_the_same_turn() {
    let calls = [("add", json!({"a": 2, "b": 3})), ("multiply", json!({"a": 4, "b": 5}))];
    rig_core::test_utils::history::assert_restated_agrees(
        &wire(),
        [frame("", "TOOL_CALLS", &calls, [10, 4, 14, 0])],
        [
            frame("", "PARTIAL", &calls[..1], [0; 4]),
            frame("", "PARTIAL", &calls, [0; 4]),
            frame("", "TOOL_CALLS", &calls, [10, 4, 14, 0]),
        ],
    );
}

#[tokio::test]
async fn the_raw_document_does_not_depend_on_the_mode() {
    let last = frame("Hello there", "FINAL", &[], [3, 2, 5, 0]);
    let streamed = Scripted::new(vec![frame("Hello", "PARTIAL", &[], [0; 4]), last.clone()]);
    // The unary path states its document, as the real transport does.
    #[derive(Clone)]
    struct Whole(CompletionResult);
    impl Transport<YandexWire> for Whole {
        fn send(&self, _payload: Payload, _exchange: Exchange) -> Opening<CompletionResult> {
            let document = serde_json::to_value(&self.0).unwrap();
            Opening::ready(Opened::new(futures_util::stream::iter([Ok(self.0.clone())])).with_document(document))
        }
    }
    let (unary, streamed) =
        rig_core::test_utils::raw_parity::raw_pair_over(wire(), Whole(last), streamed).await.unwrap();
    assert_eq!(unary, streamed);
    assert_eq!(unary["alternatives"][0]["text"], "Hello there");
}

#[test]
fn calls_get_ids_from_rig_and_usage_counts_reasoning() {
    let response = rig_core::test_utils::history::decode(
        &wire(),
        Mode::Unary,
        [frame("", "TOOL_CALLS", &[("add", json!({"a": 1, "b": 2}))], [20, 30, 50, 12])],
    )
    .unwrap();
    let calls: Vec<_> = response.tool_calls().collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.name.as_str(), "add");
    assert_eq!(calls[0].function.arguments_value(), json!({"a": 1, "b": 2}));
    assert!(!calls[0].id.to_string().is_empty(), "rig minted an id");
    assert_eq!(response.finish_reason(), Some(FinishReason::ToolCalls));
    assert_eq!(
        (response.usage.input_tokens, response.usage.output_tokens, response.usage.reasoning_tokens),
        (Some(20), Some(30), Some(12))
    );
    let truncated = rig_core::test_utils::history::decode(
        &wire(),
        Mode::Unary,
        [frame("Echo", "TRUNCATED_FINAL", &[], [1, 1, 2, 0])],
    );
    assert_eq!(truncated.unwrap().finish_reason(), Some(FinishReason::Length));
}

fn name(n: &str) -> rig_core::message::ToolName {
    rig_core::message::ToolName::new(n).unwrap()
}

/// What the driver would send for `request`: prepared by rig, then encoded.
fn sent(request: CompletionRequest) -> Result<Payload, ProviderError> {
    let wire = wire();
    let prepared = <rig_core::operation::Completion as Operation>::prepare(request, &wire.describe())?;
    Ok(wire.encode(prepared, Mode::Unary)?)
}

#[test]
fn encode_sends_history_tools_and_per_request_settings() {
    let history = vec![
        RigMessage::user("What is 2+3?"),
        RigMessage::Assistant(rig_core::completion::AssistantMessage::new(vec![AssistantContent::tool_call(
            "call-1",
            name("add"),
            json!({"a": 2, "b": 3}),
        )])),
        RigMessage::tool_result(rig_core::message::CallId::from_wire("call-1"), name("add"), "5"),
    ];
    let request = CompletionRequest::new("And doubled?")
        .preamble("Be brief.")
        .messages(history)
        .tool(ToolDefinition::new(
            name("add"),
            "Adds two numbers",
            json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}),
        ))
        .tool_choice(ToolChoice::Required)
        .temperature(0.25)
        .max_tokens(64)
        .parallel_tool_calls(false);
    let payload = sent(request).unwrap();
    let roles: Vec<&Role> = payload.messages().iter().map(|m| m.role()).collect();
    assert_eq!(roles, [&Role::System, &Role::User, &Role::Assistant, &Role::User, &Role::User]);
    assert_eq!(payload.messages()[0].text(), Some("Be brief."));
    assert_eq!(payload.messages()[2].tool_calls()[0].name(), "add");
    assert_eq!(
        payload.messages()[3].tool_results_list()[0],
        yandex_cloud_ml_sdk::tools::ToolResult::function("add", "5")
    );
    let config = payload.model().config();
    assert_eq!(config.get_temperature(), Some(0.25));
    assert_eq!(config.get_max_tokens(), Some(64));
    assert_eq!(config.get_tools()[0].name(), "add");
    assert_eq!(config.get_tool_choice(), Some(&yandex_cloud_ml_sdk::tools::ToolChoice::Required));
    assert_eq!(config.get_parallel_tool_calls(), Some(false));
}

#[test]
fn results_go_in_the_order_of_the_calls_and_errors_say_so() {
    let calls = RigMessage::Assistant(rig_core::completion::AssistantMessage::new(vec![
        AssistantContent::tool_call("c1", name("weather"), json!({"city": "Tokyo"})),
        AssistantContent::tool_call("c2", name("weather"), json!({"city": "Paris"})),
    ]));
    let results = RigMessage::User {
        content: vec![
            rig_core::message::UserContent::tool_result(
                rig_core::message::CallId::from_wire("c2"),
                name("weather"),
                vec![rig_core::message::ToolResultContent::text("Paris: rain")],
            ),
            rig_core::message::UserContent::ToolResult(rig_core::message::ToolResult {
                call: rig_core::message::CallId::from_wire("c1"),
                name: name("weather"),
                content: vec![rig_core::message::ToolResultContent::Json { value: json!("timeout") }],
                is_error: true,
            }),
        ],
    };
    // With the tool declared (without it, rig replays the calls as text).
    let weather = ToolDefinition::new(name("weather"), "Weather in a city", json!({"type": "object"}));
    let request =
        CompletionRequest::new("And?").messages(vec![RigMessage::user("Weather?"), calls, results]).tool(weather);
    let payload = sent(request).unwrap();
    let sent_results: Vec<_> = payload.messages()[2].tool_results_list().to_vec();
    assert_eq!(
        sent_results,
        [
            yandex_cloud_ml_sdk::tools::ToolResult::function("weather", "Error: timeout"),
            yandex_cloud_ml_sdk::tools::ToolResult::function("weather", "Paris: rain"),
        ]
    );
}

#[test]
fn encode_refuses_what_yandex_cannot_do_with_a_clear_error() {
    use rig_core::completion::{CacheRetention, Reasoning, ServiceTier, Verbosity};
    let hi = || CompletionRequest::new("hi");
    // Every option Yandex has no equivalent for is refused by name, never dropped.
    let refused = [
        (hi().top_p(0.5), "top_p"),
        (hi().seed(7), "seed"),
        (hi().stop(["END"]), "stop sequences"),
        (hi().cache(CacheRetention::Long), "prompt cache"),
        (hi().service_tier(ServiceTier::Flex), "service tier"),
        (hi().verbosity(Verbosity::Low), "verbosity"),
        (hi().reasoning(Reasoning::Budget { tokens: 512 }), "token budget cannot be set"),
        (hi().additional_params(json!({"top_k": 5})), "additional_params are not sent"),
    ];
    for (request, named) in refused {
        let e = sent(request).unwrap_err();
        assert!(e.to_string().contains(named), "{named}: {e}");
    }
    let e = sent(CompletionRequest::new("hi").temperature(7.0)).unwrap_err();
    assert!(e.to_string().contains("temperature"), "{e}");
    let two = ToolChoice::Specific { function_names: vec![name("a"), name("b")] };
    let e = sent(CompletionRequest::new("hi").tool_choice(two)).unwrap_err();
    assert!(e.to_string().contains("one named function"), "{e}");
    let e = sent(CompletionRequest::new("hi").model("gpt://other/model/latest")).unwrap_err();
    assert!(e.to_string().contains("bound to"), "{e}");
}

#[test]
fn media_in_user_messages_reach_yandex_as_rig_placeholders() {
    use rig_core::message::{DocumentSourceKind, Image, ImageMediaType, UserContent};
    let image = Image {
        data: DocumentSourceKind::base64("iVBORw0KGgo="),
        media_type: Some(ImageMediaType::PNG),
        ..Image::default()
    };
    let user = RigMessage::User { content: vec![UserContent::text("What is on it?"), UserContent::Image(image)] };
    let payload = sent(CompletionRequest::new("Describe.").messages(vec![user])).unwrap();
    let texts: Vec<&str> = payload.messages().iter().filter_map(|m| m.text()).collect();
    let joined = texts.join("\n");
    assert!(joined.contains("What is on it?"), "{joined}");
    assert!(joined.contains(rig_core::completion::history::USER_IMAGE_OMITTED), "{joined}");
    assert!(!joined.contains("iVBORw0KGgo="), "the image bytes are not sent: {joined}");
}
