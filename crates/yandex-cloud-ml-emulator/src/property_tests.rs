//! Property tests of request validation and answer generation: arbitrary requests never panic,
//! a request broken in one field is rejected with a message naming that field, and valid
//! requests always produce well-formed responses.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use tonic::Code;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use crate::{
    admission::parse_grpc_timeout,
    config::EmulatorConfig,
    engine::{schema, scripted::Scripted, synthetic::SyntheticEngine, tokenizer},
    services::generation::Generation,
    state::State,
    validate,
};

fn state() -> Arc<State> {
    let config = EmulatorConfig { folders: vec!["b1gfolder".into()], ..Default::default() };
    let tuning = crate::state::tuning::Tuning::open(None, 10, u64::MAX).unwrap();
    let engine = Scripted::new(Arc::new(SyntheticEngine), vec![]).unwrap();
    let embedder = Arc::new(crate::engine::embedding::HashedEmbedder);
    Arc::new(State::new(config, engine, embedder, "127.0.0.1:1".into(), false, tuning).unwrap())
}

fn to_struct(v: &Value) -> Option<prost_types::Struct> {
    v.as_object().map(|o| yandex_cloud_ml_proto::json::object_to_struct(o).unwrap())
}

/// Every response of a generation: the stream's chunks, or the one unary response.
fn responses(state: &Arc<State>, request: pb::CompletionRequest) -> Result<Vec<pb::CompletionResponse>, tonic::Status> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let stream = request.completion_options.as_ref().is_some_and(|o| o.stream);
        let generation = Generation::start(state, request, if stream { 3 } else { usize::MAX }, false).await?;
        if !stream {
            return Ok(vec![generation.finish().await?]);
        }
        let mut out = Vec::new();
        let mut next = Some(generation);
        while let Some((item, generation)) = match next.take() {
            Some(g) => g.next_chunk(3).await,
            None => None,
        } {
            out.push(item?);
            next = Some(generation);
        }
        Ok(out)
    })
}

fn text(role: &str, t: &str) -> pb::Message {
    pb::Message { role: role.into(), content: Some(pb::message::Content::Text(t.into())) }
}

fn tool(name: &str, params: Value) -> pb::Tool {
    pb::Tool {
        tool_type: Some(pb::tool::ToolType::Function(pb::FunctionTool {
            name: name.into(),
            parameters: to_struct(&params),
            ..Default::default()
        })),
    }
}

fn valid() -> pb::CompletionRequest {
    pb::CompletionRequest {
        model_uri: "gpt://b1gfolder/yandexgpt/latest".into(),
        completion_options: Some(pb::CompletionOptions::default()),
        messages: vec![text("user", "numbers 1, 2")],
        tools: vec![tool(
            "sum",
            json!({"type": "object", "properties": {"n": {"type": "array", "items": {"type": "integer"}}}}),
        )],
        ..Default::default()
    }
}

/// One field made invalid, and the text the error must contain.
#[derive(Debug, Clone)]
enum Mutation {
    Uri(String),
    Folder(String),
    NoMessages,
    Role(String),
    NoContent,
    Temperature(f64),
    MaxTokens(i64),
    EmptyToolName,
    DuplicateTool,
    UnknownChoice(String),
    SchemaType(String),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        "[a-z:/]{0,20}".prop_filter("not a gpt uri", |s| !s.starts_with("gpt://")).prop_map(Mutation::Uri),
        "b1g[a-z]{3,8}".prop_map(Mutation::Folder),
        Just(Mutation::NoMessages),
        "[a-z]{1,8}"
            .prop_filter("unknown", |r| !["system", "user", "assistant"].contains(&r.as_str()))
            .prop_map(Mutation::Role),
        Just(Mutation::NoContent),
        any::<f64>().prop_filter("out of range", |t| !(0.0..=1.0).contains(t)).prop_map(Mutation::Temperature),
        (i64::MIN..=0).prop_map(Mutation::MaxTokens),
        Just(Mutation::EmptyToolName),
        Just(Mutation::DuplicateTool),
        "[a-z]{1,8}".prop_filter("not sum", |n| n != "sum").prop_map(Mutation::UnknownChoice),
        "[a-z]{1,8}"
            .prop_filter("unknown type", |t| !["object", "array", "string", "integer", "number", "boolean", "null"]
                .contains(&t.as_str()))
            .prop_map(Mutation::SchemaType),
    ]
}

fn apply(m: &Mutation) -> (pb::CompletionRequest, Code, &'static str) {
    let mut r = valid();
    let invalid = Code::InvalidArgument;
    match m {
        Mutation::Uri(u) => {
            r.model_uri = u.clone();
            (r, invalid, "model_uri")
        }
        Mutation::Folder(f) => {
            r.model_uri = format!("gpt://{f}/yandexgpt/latest");
            (r, Code::PermissionDenied, "folder")
        }
        Mutation::NoMessages => {
            r.messages.clear();
            (r, invalid, "messages")
        }
        Mutation::Role(role) => {
            r.messages = vec![text(role, "x")];
            (r, invalid, "messages[0].role")
        }
        Mutation::NoContent => {
            r.messages = vec![pb::Message { role: "user".into(), content: None }];
            (r, invalid, "messages[0]")
        }
        Mutation::Temperature(t) => {
            r.completion_options = Some(pb::CompletionOptions { temperature: Some(*t), ..Default::default() });
            (r, invalid, "completion_options.temperature")
        }
        Mutation::MaxTokens(n) => {
            r.completion_options = Some(pb::CompletionOptions { max_tokens: Some(*n), ..Default::default() });
            (r, invalid, "completion_options.max_tokens")
        }
        Mutation::EmptyToolName => {
            r.tools = vec![tool("", json!({}))];
            (r, invalid, "tools[0].function.name")
        }
        Mutation::DuplicateTool => {
            r.tools.push(r.tools[0].clone());
            (r, invalid, "tools[1].function.name")
        }
        Mutation::UnknownChoice(name) => {
            r.tool_choice =
                Some(pb::ToolChoice { tool_choice: Some(pb::tool_choice::ToolChoice::FunctionName(name.clone())) });
            (r, invalid, "tool_choice.function_name")
        }
        Mutation::SchemaType(t) => {
            let schema = json!({"type": "object", "properties": {"x": {"type": t}}});
            r.response_format =
                Some(pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema { schema: to_struct(&schema) }));
            (r, invalid, "json_schema.schema.properties.x.type")
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        prop_oneof![Just("object"), Just("array"), Just("string"), Just("integer"), Just("x"), Just("")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "type",
                        "properties",
                        "items",
                        "required",
                        "enum",
                        "anyOf",
                        "$ref",
                        "minItems"
                    ])
                    .prop_map(str::to_owned),
                    "[a-z]{1,4}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn a_request_broken_in_one_field_is_rejected_naming_it(m in arb_mutation()) {
        let state = state();
        let tokenizer = &tokenizer::SyntheticTokenizer;
        prop_assert!(validate::completion(&state, &valid(), tokenizer).is_ok());
        let (request, code, needle) = apply(&m);
        let Err(status) = validate::completion(&state, &request, tokenizer) else {
            return Err(TestCaseError::fail(format!("{m:?} was accepted")));
        };
        prop_assert_eq!(status.code(), code);
        prop_assert!(status.message().contains(needle), "{:?}: {}", m, status.message());
    }

    #[test]
    fn arbitrary_requests_never_panic_and_valid_ones_render(
        uri in prop_oneof![Just("gpt://b1gfolder/yandexgpt/latest".to_string()), ".{0,30}"],
        role in prop_oneof![Just("user".to_string()), Just("system".to_string()), ".{0,6}"],
        prompt in ".{0,80}",
        temperature in prop::option::of(any::<f64>()),
        max_tokens in prop::option::of(any::<i64>()),
        stream in any::<bool>(),
        params in arb_json(),
        choice in prop::option::of(0i32..6),
        format in prop::option::of(arb_json()),
    ) {
        let state = state();
        let request = pb::CompletionRequest {
            model_uri: uri,
            completion_options: Some(pb::CompletionOptions { stream, temperature, max_tokens, ..Default::default() }),
            messages: vec![text(&role, &prompt)],
            tools: vec![tool("f", params)],
            tool_choice: choice.map(|c| pb::ToolChoice { tool_choice: Some(pb::tool_choice::ToolChoice::Mode(c)) }),
            response_format: format.map(|f| pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema {
                schema: to_struct(&f),
            })),
            ..Default::default()
        };
        match responses(&state, request) {
            Err(status) => {
                prop_assert!(matches!(status.code(), Code::InvalidArgument | Code::PermissionDenied));
                prop_assert!(!status.message().is_empty());
            }
            Ok(responses) => {
                prop_assert!(!responses.is_empty());
                let last = responses.last().unwrap();
                prop_assert!(last.alternatives[0].status != pb::alternative::AlternativeStatus::Partial as i32);
                prop_assert!(responses[..responses.len() - 1].iter().all(|r| r.alternatives[0].status == pb::alternative::AlternativeStatus::Partial as i32));
                prop_assert!(stream || responses.len() == 1);
            }
        }
    }

    #[test]
    fn the_tokenizer_restores_any_text(text in ".{0,120}") {
        prop_assert_eq!(tokenizer::detokenize(&tokenizer::tokenize(&text)), text);
    }

    #[test]
    fn schema_handling_never_panics(schema in arb_json(), prompt in ".{0,40}") {
        if schema::check(&schema, "s").is_ok()
            && let Ok(instance) = schema::instance(&schema, &schema::Filler::from_prompt(&prompt), "s")
        {
            prop_assert!(instance.to_string().len() <= schema::BUDGET.bytes);
        }
    }

    #[test]
    fn grpc_timeout_headers_never_panic_and_saturate(digits in "[0-9]{1,30}", unit in "[HMSmun x]", junk in ".{0,12}") {
        let _ = parse_grpc_timeout(&junk);
        let parsed = parse_grpc_timeout(&format!("{digits}{unit}"));
        prop_assert_eq!(parsed.is_some(), "HMSmun".contains(unit.as_str()));
    }
}
