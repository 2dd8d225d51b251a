//! The built-in deterministic model. It does not understand language; it answers from the
//! conversation with fixed rules, so the same request always gets the same bytes:
//!
//! * plain text: `Echo: <last user message>`;
//! * after tool results: `The result of <name> is <content>.` per result;
//! * tools: calls the tool(s) that `tool_choice` demands, or in auto mode the tools whose name
//!   the last user message mentions; arguments are built from the tool's schema and filled
//!   with numbers and text from the message (`parallel_tool_calls: false` keeps one call);
//! * `json_object`: `{"answer": "<last user message>"}`;
//! * `json_schema`: an instance that validates against the schema, filled from the message.

use serde_json::{Value, json};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{Engine, Reply, schema, tokenizer::message_text};

/// Version string reported by the synthetic model.
pub const SYNTHETIC_MODEL_VERSION: &str = "emulator-synthetic-1";

/// The deterministic built-in [`Engine`].
#[derive(Debug, Clone, Default)]
pub struct SyntheticEngine;

impl Engine for SyntheticEngine {
    fn model_version(&self) -> &str {
        SYNTHETIC_MODEL_VERSION
    }

    fn reply(&self, request: &pb::CompletionRequest) -> Reply {
        let last = request.messages.last();
        if let Some(results) = last.and_then(tool_results) {
            return Reply::Text(
                results.iter().map(|(n, c)| format!("The result of {n} is {c}.")).collect::<Vec<_>>().join(" "),
            );
        }
        let prompt = last_user_text(request);
        if let Some(calls) = tool_calls(request, &prompt) {
            return Reply::ToolCalls(calls);
        }
        use pb::completion_request::ResponseFormat as F;
        match &request.response_format {
            Some(F::JsonObject(true)) => Reply::Text(json!({"answer": prompt}).to_string()),
            Some(F::JsonSchema(s)) => {
                let schema = s.schema.as_ref().map(yandex_cloud_ml_proto::json::struct_to_value).unwrap_or(json!({}));
                Reply::Text(schema::instance(&schema, &schema::Filler::from_prompt(&prompt)).to_string())
            }
            _ => Reply::Text(format!("Echo: {prompt}")),
        }
    }
}

/// Text of the last user message (or of the last message, if no user spoke).
pub(crate) fn last_user_text(request: &pb::CompletionRequest) -> String {
    request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user" && matches!(m.content, Some(pb::message::Content::Text(_))))
        .or(request.messages.last())
        .map(message_text)
        .unwrap_or_default()
}

fn tool_results(m: &pb::Message) -> Option<Vec<(String, String)>> {
    let Some(pb::message::Content::ToolResultList(list)) = &m.content else { return None };
    Some(
        list.tool_results
            .iter()
            .filter_map(|r| {
                r.tool_result_type.as_ref().map(|pb::tool_result::ToolResultType::FunctionResult(f)| {
                    (
                        f.name.clone(),
                        match &f.content_type {
                            Some(pb::function_result::ContentType::Content(c)) => c.clone(),
                            None => String::new(),
                        },
                    )
                })
            })
            .collect(),
    )
}

fn tool_calls(request: &pb::CompletionRequest, prompt: &str) -> Option<Vec<(String, Value)>> {
    use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
    let tools: Vec<&pb::FunctionTool> =
        request.tools.iter().filter_map(|t| t.tool_type.as_ref().map(|pb::tool::ToolType::Function(f)| f)).collect();
    if tools.is_empty() {
        return None;
    }
    let lower = prompt.to_lowercase();
    let mentioned: Vec<&pb::FunctionTool> = tools
        .iter()
        .copied()
        .filter(|t| {
            let name = t.name.to_lowercase();
            lower.contains(&name) || lower.contains(&name.replace('_', " "))
        })
        .collect();
    let chosen: Vec<&pb::FunctionTool> = match request.tool_choice.as_ref().and_then(|c| c.tool_choice.as_ref()) {
        Some(C::Mode(m)) if *m == M::None as i32 => return None,
        Some(C::FunctionName(name)) => tools.iter().copied().filter(|t| &t.name == name).take(1).collect(),
        Some(C::Mode(m)) if *m == M::Required as i32 => {
            if mentioned.is_empty() {
                vec![tools[0]]
            } else {
                mentioned
            }
        }
        _ => mentioned,
    };
    if chosen.is_empty() {
        return None;
    }
    let parallel = request.parallel_tool_calls.unwrap_or(true);
    let filler = schema::Filler::from_prompt(prompt);
    Some(
        chosen
            .into_iter()
            .take(if parallel { usize::MAX } else { 1 })
            .map(|t| {
                let params =
                    t.parameters.as_ref().map(yandex_cloud_ml_proto::json::struct_to_value).unwrap_or(json!({}));
                let args = match schema::instance(&params, &filler) {
                    Value::Object(o) => Value::Object(o),
                    _ => json!({}),
                };
                (t.name.clone(), args)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> pb::Message {
        pb::Message { role: "user".into(), content: Some(pb::message::Content::Text(text.into())) }
    }

    fn tool(name: &str) -> pb::Tool {
        let params =
            json!({"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}}});
        pb::Tool {
            tool_type: Some(pb::tool::ToolType::Function(pb::FunctionTool {
                name: name.into(),
                parameters: params.as_object().map(yandex_cloud_ml_proto::json::object_to_struct),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn echoes_the_last_user_message() {
        let r = pb::CompletionRequest { messages: vec![user("hello")], ..Default::default() };
        assert_eq!(SyntheticEngine.reply(&r), Reply::Text("Echo: hello".into()));
    }

    #[test]
    fn calls_mentioned_tools_in_auto_mode_with_arguments_from_the_prompt() {
        let r = pb::CompletionRequest {
            messages: vec![user("do a SOMETHING with all the numbers from: 5, 4, a, 1")],
            tools: vec![tool("something"), tool("other")],
            ..Default::default()
        };
        assert_eq!(
            SyntheticEngine.reply(&r),
            Reply::ToolCalls(vec![("something".into(), json!({"numbers": [5, 4, 1]}))])
        );
        let r = pb::CompletionRequest { messages: vec![user("just chat")], ..r };
        assert_eq!(SyntheticEngine.reply(&r), Reply::Text("Echo: just chat".into()));
    }

    #[test]
    fn required_and_none_choices_are_honoured() {
        use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
        let base = pb::CompletionRequest {
            messages: vec![user("hi")],
            tools: vec![tool("a"), tool("b")],
            ..Default::default()
        };
        let required = pb::CompletionRequest {
            tool_choice: Some(pb::ToolChoice { tool_choice: Some(C::Mode(M::Required as i32)) }),
            ..base.clone()
        };
        assert!(matches!(SyntheticEngine.reply(&required), Reply::ToolCalls(c) if c[0].0 == "a"));
        let named = pb::CompletionRequest {
            tool_choice: Some(pb::ToolChoice { tool_choice: Some(C::FunctionName("b".into())) }),
            ..base.clone()
        };
        assert!(matches!(SyntheticEngine.reply(&named), Reply::ToolCalls(c) if c[0].0 == "b"));
        let none = pb::CompletionRequest {
            messages: vec![user("use a and b")],
            tool_choice: Some(pb::ToolChoice { tool_choice: Some(C::Mode(M::None as i32)) }),
            ..base.clone()
        };
        assert!(matches!(SyntheticEngine.reply(&none), Reply::Text(_)));
        let both = pb::CompletionRequest { messages: vec![user("use a and b")], ..base.clone() };
        assert!(matches!(SyntheticEngine.reply(&both), Reply::ToolCalls(c) if c.len() == 2));
        let single = pb::CompletionRequest { parallel_tool_calls: Some(false), ..both };
        assert!(matches!(SyntheticEngine.reply(&single), Reply::ToolCalls(c) if c.len() == 1));
    }

    #[test]
    fn answers_tool_results() {
        let results = pb::Message {
            role: "user".into(),
            content: Some(pb::message::Content::ToolResultList(pb::ToolResultList {
                tool_results: vec![pb::ToolResult {
                    tool_result_type: Some(pb::tool_result::ToolResultType::FunctionResult(pb::FunctionResult {
                        name: "something".into(),
                        content_type: Some(pb::function_result::ContentType::Content("+20.0".into())),
                    })),
                }],
            })),
        };
        let r = pb::CompletionRequest { messages: vec![user("x"), results], ..Default::default() };
        assert_eq!(SyntheticEngine.reply(&r), Reply::Text("The result of something is +20.0.".into()));
    }
}
