//! Request validation like the cloud's: `INVALID_ARGUMENT` naming the field,
//! `PERMISSION_DENIED` for a folder the caller may not use. Never a panic.

use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use crate::{
    engine::{schema, tokenizer},
    state::State,
};

/// The parts of a `gpt://folder/model/version[@suffix]` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelRef {
    pub folder: String,
    pub model: String,
}

/// Parses the model URI and checks the folder.
pub(crate) fn model_uri(state: &State, uri: &str) -> Result<ModelRef, Status> {
    let invalid = || {
        Status::invalid_argument(format!(
            "model_uri: invalid model uri `{uri}`; expected gpt://<folder_id>/<model>/<version>"
        ))
    };
    let rest = uri.strip_prefix("gpt://").ok_or_else(invalid)?;
    let mut parts = rest.split('/');
    let (Some(folder), Some(model), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if folder.is_empty() || model.is_empty() || version.is_empty() || version.starts_with('@') {
        return Err(invalid());
    }
    if !state.config.folders.is_empty() && !state.config.folders.iter().any(|f| f == folder) {
        return Err(Status::permission_denied(format!("Permission to [resource-manager.folder {folder}] denied")));
    }
    Ok(ModelRef { folder: folder.to_owned(), model: model.to_owned() })
}

/// Validates a completion request; returns the model it addresses.
pub(crate) fn completion(state: &State, r: &pb::CompletionRequest) -> Result<ModelRef, Status> {
    let model = model_uri(state, &r.model_uri)?;
    if r.messages.is_empty() {
        return Err(Status::invalid_argument("messages: at least one message is required"));
    }
    for (i, m) in r.messages.iter().enumerate() {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
            return Err(Status::invalid_argument(format!(
                "messages[{i}].role: unknown role `{}`; use system, user or assistant",
                m.role
            )));
        }
        if m.content.is_none() {
            return Err(Status::invalid_argument(format!(
                "messages[{i}]: one of text, tool_call_list, tool_result_list is required"
            )));
        }
    }
    if let Some(o) = &r.completion_options {
        if let Some(t) = o.temperature
            && !(0.0..=1.0).contains(&t)
        {
            return Err(Status::invalid_argument(format!(
                "completion_options.temperature: must be in [0, 1], got {t}"
            )));
        }
        if let Some(m) = o.max_tokens {
            if m <= 0 {
                return Err(Status::invalid_argument(format!(
                    "completion_options.max_tokens: must be positive, got {m}"
                )));
            }
            if m > state.config.max_tokens_limit {
                return Err(Status::invalid_argument(format!(
                    "completion_options.max_tokens: {m} exceeds the model limit of {}",
                    state.config.max_tokens_limit
                )));
            }
        }
    }
    let mut names = Vec::new();
    for (i, tool) in r.tools.iter().enumerate() {
        let Some(pb::tool::ToolType::Function(f)) = &tool.tool_type else {
            return Err(Status::invalid_argument(format!("tools[{i}]: function is required")));
        };
        if f.name.trim().is_empty() {
            return Err(Status::invalid_argument(format!("tools[{i}].function.name: must not be empty")));
        }
        if names.contains(&f.name.as_str()) {
            return Err(Status::invalid_argument(format!(
                "tools[{i}].function.name: duplicate tool name `{}`",
                f.name
            )));
        }
        names.push(&f.name);
        if let Some(p) = &f.parameters {
            let value = yandex_cloud_ml_proto::json::struct_to_value(p);
            schema::check(&value, &format!("tools[{i}].function.parameters")).map_err(Status::invalid_argument)?;
        }
    }
    if let Some(pb::tool_choice::ToolChoice::FunctionName(name)) =
        r.tool_choice.as_ref().and_then(|c| c.tool_choice.as_ref())
        && !names.contains(&name.as_str())
    {
        return Err(Status::invalid_argument(format!("tool_choice.function_name: unknown tool `{name}`")));
    }
    if let Some(pb::completion_request::ResponseFormat::JsonSchema(s)) = &r.response_format {
        let Some(schema_struct) = &s.schema else {
            return Err(Status::invalid_argument("json_schema.schema: is required"));
        };
        let value = yandex_cloud_ml_proto::json::struct_to_value(schema_struct);
        schema::check(&value, "json_schema.schema").map_err(Status::invalid_argument)?;
    }
    let prompt_tokens = tokenizer::tokenize_chat(&r.messages).len();
    if prompt_tokens > state.config.context_window {
        return Err(Status::invalid_argument(format!(
            "messages: the prompt has {prompt_tokens} tokens, more than the model's context window of {}",
            state.config.context_window
        )));
    }
    Ok(model)
}
