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
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{
    Engine, ModelRef, Reply, Tokenizer, schema,
    tokenizer::{SyntheticTokenizer, message_text},
};

/// Version string reported by the synthetic model.
pub const SYNTHETIC_MODEL_VERSION: &str = "emulator-synthetic-1";

/// The deterministic built-in [`Engine`].
#[derive(Debug, Clone, Default)]
pub struct SyntheticEngine;

impl Engine for SyntheticEngine {
    fn model_version(&self) -> &str {
        SYNTHETIC_MODEL_VERSION
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        &SyntheticTokenizer
    }

    fn is_cheap(&self) -> bool {
        true
    }

    fn check_format(&self, request: &pb::CompletionRequest) -> Result<(), Status> {
        match &request.response_format {
            Some(pb::completion_request::ResponseFormat::JsonSchema(s)) => {
                let schema = s.schema.as_ref().map(struct_json).unwrap_or(json!({}));
                schema::instance(&schema, &schema::Filler::from_prompt(""), "json_schema.schema")
                    .map(drop)
                    .map_err(Status::invalid_argument)
            }
            _ => Ok(()),
        }
    }

    fn reply(&self, _model: &ModelRef, request: &pb::CompletionRequest) -> Result<Reply, Status> {
        Ok(match self.answer(request)? {
            Answer::Text(text) => Reply::text(&SyntheticTokenizer, &text),
            Answer::ToolCalls(calls) => Reply::ToolCalls(calls),
        })
    }
}

/// The synthetic model's decision, before it is cut into tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Text(String),
    ToolCalls(Vec<(String, Value)>),
}

impl SyntheticEngine {
    pub(crate) fn answer(&self, request: &pb::CompletionRequest) -> Result<Answer, Status> {
        let last = request.messages.last();
        if let Some(results) = last.and_then(tool_results) {
            return Ok(Answer::Text(
                results.iter().map(|(n, c)| format!("The result of {n} is {c}.")).collect::<Vec<_>>().join(" "),
            ));
        }
        let prompt = last_user_text(request);
        if let Some(calls) = tool_calls(request, &prompt)? {
            return Ok(Answer::ToolCalls(calls));
        }
        use pb::completion_request::ResponseFormat as F;
        Ok(Answer::Text(match &request.response_format {
            Some(F::JsonObject(true)) => json!({"answer": prompt}).to_string(),
            Some(F::JsonSchema(s)) => {
                let schema = s.schema.as_ref().map(struct_json).unwrap_or(json!({}));
                schema::instance(&schema, &schema::Filler::from_prompt(&prompt), "json_schema.schema")
                    .map_err(Status::invalid_argument)?
                    .to_string()
            }
            _ => format!("Echo: {prompt}"),
        }))
    }
}

/// A received `Struct` as JSON (decoded messages always fit the conversion's depth).
fn struct_json(s: &prost_types::Struct) -> Value {
    yandex_cloud_ml_proto::json::struct_to_value(s).unwrap_or_default()
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

fn tool_calls(request: &pb::CompletionRequest, prompt: &str) -> Result<Option<Vec<(String, Value)>>, Status> {
    use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
    let tools: Vec<&pb::FunctionTool> =
        request.tools.iter().filter_map(|t| t.tool_type.as_ref().map(|pb::tool::ToolType::Function(f)| f)).collect();
    if tools.is_empty() {
        return Ok(None);
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
        Some(C::Mode(m)) if *m == M::None as i32 => return Ok(None),
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
        return Ok(None);
    }
    let parallel = request.parallel_tool_calls.unwrap_or(true);
    let filler = schema::Filler::from_prompt(prompt);
    let calls = chosen
        .into_iter()
        .take(if parallel { usize::MAX } else { 1 })
        .map(|t| {
            let params = t.parameters.as_ref().map(struct_json).unwrap_or(json!({}));
            let path = format!("tools[{}].function.parameters", t.name);
            let args = match schema::instance(&params, &filler, &path).map_err(Status::invalid_argument)? {
                Value::Object(o) => Value::Object(o),
                _ => json!({}),
            };
            Ok((t.name.clone(), args))
        })
        .collect::<Result<_, Status>>()?;
    Ok(Some(calls))
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
                parameters: params.as_object().map(|o| yandex_cloud_ml_proto::json::object_to_struct(o).unwrap()),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn echoes_the_last_user_message() {
        let r = pb::CompletionRequest { messages: vec![user("hello")], ..Default::default() };
        assert_eq!(SyntheticEngine.answer(&r).unwrap(), Answer::Text("Echo: hello".into()));
    }

    #[test]
    fn calls_mentioned_tools_in_auto_mode_with_arguments_from_the_prompt() {
        let r = pb::CompletionRequest {
            messages: vec![user("do a SOMETHING with all the numbers from: 5, 4, a, 1")],
            tools: vec![tool("something"), tool("other")],
            ..Default::default()
        };
        assert_eq!(
            SyntheticEngine.answer(&r).unwrap(),
            Answer::ToolCalls(vec![("something".into(), json!({"numbers": [5, 4, 1]}))])
        );
        let r = pb::CompletionRequest { messages: vec![user("just chat")], ..r };
        assert_eq!(SyntheticEngine.answer(&r).unwrap(), Answer::Text("Echo: just chat".into()));
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
        assert!(matches!(SyntheticEngine.answer(&required).unwrap(), Answer::ToolCalls(c) if c[0].0 == "a"));
        let named = pb::CompletionRequest {
            tool_choice: Some(pb::ToolChoice { tool_choice: Some(C::FunctionName("b".into())) }),
            ..base.clone()
        };
        assert!(matches!(SyntheticEngine.answer(&named).unwrap(), Answer::ToolCalls(c) if c[0].0 == "b"));
        let none = pb::CompletionRequest {
            messages: vec![user("use a and b")],
            tool_choice: Some(pb::ToolChoice { tool_choice: Some(C::Mode(M::None as i32)) }),
            ..base.clone()
        };
        assert!(matches!(SyntheticEngine.answer(&none).unwrap(), Answer::Text(_)));
        let both = pb::CompletionRequest { messages: vec![user("use a and b")], ..base.clone() };
        assert!(matches!(SyntheticEngine.answer(&both).unwrap(), Answer::ToolCalls(c) if c.len() == 2));
        let single = pb::CompletionRequest { parallel_tool_calls: Some(false), ..both };
        assert!(matches!(SyntheticEngine.answer(&single).unwrap(), Answer::ToolCalls(c) if c.len() == 1));
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
        assert_eq!(SyntheticEngine.answer(&r).unwrap(), Answer::Text("The result of something is +20.0.".into()));
    }
}
