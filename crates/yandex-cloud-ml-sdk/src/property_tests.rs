//! Property tests of the conversions between SDK values and the wire: arbitrary inputs never
//! panic, and what goes in comes back out.

use proptest::prelude::*;
use serde_json::{Map, Value};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use crate::{
    Credentials,
    completions::{AlternativeStatus, CompletionResult, GptModelConfig, Message, deltas},
    json,
    tools::ToolChoice,
};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Numbers compared as doubles: the wire carries every number as a double.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn arb_content() -> impl Strategy<Value = Option<pb::message::Content>> {
    let call = (".{0,8}", prop::option::of(Just(Default::default()))).prop_map(|(name, arguments)| pb::ToolCall {
        tool_call_type: Some(pb::tool_call::ToolCallType::FunctionCall(pb::FunctionCall { name, arguments })),
    });
    prop_oneof![
        Just(None),
        ".{0,40}".prop_map(|t| Some(pb::message::Content::Text(t))),
        prop::collection::vec(call, 0..3)
            .prop_map(|tool_calls| Some(pb::message::Content::ToolCallList(pb::ToolCallList { tool_calls }))),
    ]
}

fn arb_response() -> impl Strategy<Value = pb::CompletionResponse> {
    let alternative = (prop::option::of((".{0,10}", arb_content())), any::<i32>()).prop_map(|(message, status)| {
        pb::Alternative { message: message.map(|(role, content)| pb::Message { role, content }), status }
    });
    let usage =
        prop::option::of((any::<i64>(), any::<i64>(), any::<i64>(), prop::option::of(any::<i64>()))).prop_map(|u| {
            u.map(|(a, b, c, d)| pb::ContentUsage {
                input_text_tokens: a,
                completion_tokens: b,
                total_tokens: c,
                completion_tokens_details: d
                    .map(|r| pb::content_usage::CompletionTokensDetails { reasoning_tokens: r }),
            })
        });
    (prop::collection::vec(alternative, 0..4), usage, ".{0,12}")
        .prop_map(|(alternatives, usage, model_version)| pb::CompletionResponse { alternatives, usage, model_version })
}

proptest! {
    #[test]
    fn json_objects_survive_the_struct_round_trip(value in arb_json()) {
        let object = Value::Object(match value { Value::Object(m) => m, other => Map::from_iter([("v".to_owned(), other)]) });
        let back = json::from_struct(&json::to_struct(&object, "value").unwrap());
        prop_assert!(same(&object, &back), "{object} != {back}");
    }

    #[test]
    fn non_objects_are_rejected_not_panicked_on(value in arb_json()) {
        prop_assert_eq!(json::to_struct(&value, "value").is_ok(), value.is_object());
    }

    #[test]
    fn any_response_decodes_without_panicking(response in arb_response()) {
        let result = CompletionResult::from_proto(response.clone());
        prop_assert_eq!(result.alternatives().len(), response.alternatives.len());
        for (alt, wire) in result.alternatives().iter().zip(&response.alternatives) {
            if let Some(pb::message::Content::Text(t)) = wire.message.as_ref().and_then(|m| m.content.as_ref()) {
                prop_assert_eq!(alt.text(), t.as_str());
            }
            if !(0..=5).contains(&wire.status) {
                prop_assert_eq!(alt.status(), AlternativeStatus::Unknown(wire.status));
            }
            // A decoded assistant message converts back to a wire message without panicking.
            let _ = Message::from(alt).into_proto();
        }
        let _ = (result.text(), result.status(), result.tool_calls(), result.usage());
    }

    #[test]
    fn text_messages_keep_role_and_text(role in "[a-z]{1,10}", text in ".{0,64}") {
        let wire = Message::new(role.as_str(), text.clone()).into_proto().unwrap();
        prop_assert_eq!(wire.role, role);
        prop_assert_eq!(wire.content, Some(pb::message::Content::Text(text)));
    }

    #[test]
    fn config_accepts_exactly_the_documented_ranges(t in any::<f64>(), m in any::<u32>()) {
        let temperature = GptModelConfig::default().temperature(t).validate();
        prop_assert_eq!(temperature.is_ok(), t.is_finite() && (0.0..=1.0).contains(&t));
        if let Err(e) = temperature { prop_assert!(e.is_invalid_input() && e.to_string().contains("temperature")); }
        let max = GptModelConfig::default().max_tokens(m).validate();
        prop_assert_eq!(max.is_ok(), m >= 1);
    }

    #[test]
    fn tool_choice_parsing_never_panics(s in ".{0,12}") {
        let ok = ["none", "auto", "required"].contains(&s.to_ascii_lowercase().as_str());
        prop_assert_eq!(s.parse::<ToolChoice>().is_ok(), ok);
    }

    #[test]
    fn credentials_never_show_the_secret(secret in "secret[A-Za-z0-9_.]{6,24}") {
        let debug = format!("{:?}", Credentials::from_string(&secret));
        prop_assert!(!debug.contains(&secret), "{}", debug);
    }

    #[test]
    fn stream_deltas_rebuild_the_text_exactly(parts in prop::collection::vec(".{0,6}", 1..12)) {
        let mut seen: Option<CompletionResult> = None;
        let mut rebuilt = String::new();
        let mut cumulative = String::new();
        for part in parts {
            cumulative.push_str(&part);
            let result = CompletionResult::from_proto(pb::CompletionResponse {
                alternatives: vec![pb::Alternative {
                    message: Some(pb::Message { role: "assistant".into(), content: Some(pb::message::Content::Text(cumulative.clone())) }),
                    status: 1,
                }],
                ..Default::default()
            });
            let (d, restated) = deltas(seen.as_ref(), &result);
            prop_assert!(!restated);
            rebuilt.push_str(&d[0]);
            seen = Some(result);
        }
        prop_assert_eq!(rebuilt, cumulative);
    }
}
