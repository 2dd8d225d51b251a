//! The model's view of a conversation: ChatML (`<|im_start|>role\n…<|im_end|>`), with tool
//! calls and results written as JSON between tags, and the tools listed in the system turn.

use serde_json::{Value, json};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

fn json_of(s: Option<&prost_types::Struct>) -> Value {
    s.and_then(|s| yandex_cloud_ml_proto::json::struct_to_value(s).ok()).unwrap_or_else(|| json!({}))
}

/// The tools of a request as `(name, description, parameters)`.
pub(crate) fn tools(request: &pb::CompletionRequest) -> Vec<(String, String, Value)> {
    request
        .tools
        .iter()
        .filter_map(|t| t.tool_type.as_ref())
        .map(|pb::tool::ToolType::Function(f)| (f.name.clone(), f.description.clone(), json_of(f.parameters.as_ref())))
        .collect()
}

/// One message's content as the model reads it.
fn content(m: &pb::Message) -> String {
    use pb::message::Content;
    match &m.content {
        Some(Content::Text(t)) => t.clone(),
        Some(Content::ToolCallList(list)) => list
            .tool_calls
            .iter()
            .filter_map(|c| c.tool_call_type.as_ref())
            .map(|pb::tool_call::ToolCallType::FunctionCall(f)| {
                let call = json!({"name": f.name, "arguments": json_of(f.arguments.as_ref())});
                format!("<tool_call>\n{call}\n</tool_call>")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Content::ToolResultList(list)) => list
            .tool_results
            .iter()
            .filter_map(|r| r.tool_result_type.as_ref())
            .map(|pb::tool_result::ToolResultType::FunctionResult(f)| {
                let content = match &f.content_type {
                    Some(pb::function_result::ContentType::Content(c)) => c.as_str(),
                    None => "",
                };
                format!("<tool_response>\n{}\n</tool_response>", json!({"name": f.name, "content": content}))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        None => String::new(),
    }
}

/// How the tools are offered in the system turn.
fn tools_prompt(tools: &[(String, String, Value)]) -> String {
    let listed: Vec<Value> =
        tools.iter().map(|(n, d, p)| json!({"name": n, "description": d, "parameters": p})).collect();
    format!(
        "You can call these functions:\n<tools>\n{}\n</tools>\nTo call one, answer with only a JSON object \
         {{\"name\": <function name>, \"arguments\": <arguments object>}}.",
        Value::Array(listed)
    )
}

/// The ChatML text of `messages`, ending with the opening of the assistant's turn when
/// `generation_prompt` is set. The template's default system prompt is used when the
/// conversation has none; offered tools are described in the system turn.
pub(crate) fn render(
    messages: &[pb::Message],
    default_system: Option<&str>,
    tools: &[(String, String, Value)],
    generation_prompt: bool,
) -> String {
    let mut out = String::new();
    let mut turn = |role: &str, text: &str| {
        out.push_str("<|im_start|>");
        out.push_str(role);
        out.push('\n');
        out.push_str(text);
        out.push_str("<|im_end|>\n");
    };
    let has_system = messages.first().is_some_and(|m| m.role == "system");
    let mut rest = messages;
    let mut system = String::new();
    if has_system {
        system = content(&messages[0]);
        rest = &messages[1..];
    } else if let Some(default) = default_system {
        system = default.to_owned();
    }
    if !tools.is_empty() {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(&tools_prompt(tools));
    }
    if has_system || !system.is_empty() {
        turn("system", &system);
    }
    for m in rest {
        let role = match &m.content {
            Some(pb::message::Content::ToolResultList(_)) => "user",
            _ => m.role.as_str(),
        };
        turn(role, &content(m));
    }
    if generation_prompt {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(role: &str, t: &str) -> pb::Message {
        pb::Message { role: role.into(), content: Some(pb::message::Content::Text(t.into())) }
    }

    #[test]
    fn renders_chatml_with_the_default_system_prompt() {
        let rendered = render(&[text("user", "What is the capital of France?")], Some("Be helpful"), &[], true);
        assert_eq!(
            rendered,
            "<|im_start|>system\nBe helpful<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        let own = render(&[text("system", "Be brief."), text("user", "hi")], Some("Be helpful"), &[], false);
        assert_eq!(own, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n");
    }

    #[test]
    fn tools_are_listed_in_the_system_turn() {
        let tools = vec![("add".to_owned(), "Adds".to_owned(), json!({"type": "object"}))];
        let rendered = render(&[text("user", "2+2?")], None, &tools, true);
        assert!(rendered.starts_with("<|im_start|>system\nYou can call these functions:\n<tools>\n[{"), "{rendered}");
        assert!(rendered.contains("\"name\":\"add\"") && rendered.ends_with("<|im_start|>assistant\n"));
    }
}
