//! Request validation like the cloud's: `INVALID_ARGUMENT` naming the field,
//! `PERMISSION_DENIED` for a folder the caller may not use. Never a panic.

use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use crate::{
    engine::{ModelRef, Tokenizer, schema},
    state::State,
    text::shown,
};

/// Checks that `folder` may be used.
pub(crate) fn folder(state: &State, folder: &str) -> Result<(), Status> {
    if !state.config.folders.is_empty() && !state.config.folders.iter().any(|f| f == folder) {
        return Err(Status::permission_denied(format!(
            "Permission to [resource-manager.folder {}] denied",
            shown(folder)
        )));
    }
    Ok(())
}

/// Parses `gpt://<folder>/<model>/<version>[@<suffix>]` and checks the folder.
pub(crate) fn model_uri(state: &State, uri: &str) -> Result<ModelRef, Status> {
    let model = parse_model_uri(state, uri, "gpt")?;
    // A tuned URI must name a model a tuning produced.
    state.tuning.models.find(&model)?;
    Ok(model)
}

/// Parses and checks `<scheme>://<folder_id>/<model>/<version>[@suffix]` (the folder must be
/// allowed).
pub(crate) fn parse_model_uri(state: &State, uri: &str, scheme: &str) -> Result<ModelRef, Status> {
    let invalid = || {
        Status::invalid_argument(format!(
            "model_uri: invalid model uri `{}`; expected {scheme}://<folder_id>/<model>/<version>",
            shown(uri)
        ))
    };
    let rest = uri.strip_prefix(scheme).and_then(|r| r.strip_prefix("://")).ok_or_else(invalid)?;
    let mut parts = rest.split('/');
    let (Some(folder), Some(name), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let (version, tuned) = match version.split_once('@') {
        Some((v, suffix)) => (v, Some(suffix)),
        None => (version, None),
    };
    if folder.is_empty() || name.is_empty() || version.is_empty() || tuned.is_some_and(str::is_empty) {
        return Err(invalid());
    }
    self::folder(state, folder)?;
    Ok(ModelRef {
        folder: folder.to_owned(),
        name: name.to_owned(),
        version: version.to_owned(),
        tuned: tuned.map(str::to_owned),
    })
}

/// A validated completion request.
pub(crate) struct Checked {
    pub model: ModelRef,
    /// Tokens of the prompt, chat template included.
    pub input_tokens: usize,
}

/// Validates a completion request: the model, the messages, the options, tools and schemas,
/// and the prompt's length against the context window (with the engine's tokenizer).
pub(crate) fn completion(
    state: &State,
    r: &pb::CompletionRequest,
    tokenizer: &dyn Tokenizer,
) -> Result<Checked, Status> {
    let model = model_uri(state, &r.model_uri)?;
    if r.messages.is_empty() {
        return Err(Status::invalid_argument("messages: at least one message is required"));
    }
    for (i, m) in r.messages.iter().enumerate() {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
            return Err(Status::invalid_argument(format!(
                "messages[{i}].role: unknown role `{}`; use system, user or assistant",
                shown(&m.role)
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
                shown(&f.name)
            )));
        }
        names.push(&f.name);
        if let Some(p) = &f.parameters {
            let path = format!("tools[{i}].function.parameters");
            let value = yandex_cloud_ml_proto::json::struct_to_value(p)
                .map_err(|e| Status::invalid_argument(format!("{path}: {e}")))?;
            schema::check(&value, &path).map_err(Status::invalid_argument)?;
        }
    }
    if let Some(pb::tool_choice::ToolChoice::FunctionName(name)) =
        r.tool_choice.as_ref().and_then(|c| c.tool_choice.as_ref())
        && !names.contains(&name.as_str())
    {
        return Err(Status::invalid_argument(format!("tool_choice.function_name: unknown tool `{}`", shown(name))));
    }
    if let Some(pb::completion_request::ResponseFormat::JsonSchema(s)) = &r.response_format {
        let Some(schema_struct) = &s.schema else {
            return Err(Status::invalid_argument("json_schema.schema: is required"));
        };
        let value = yandex_cloud_ml_proto::json::struct_to_value(schema_struct)
            .map_err(|e| Status::invalid_argument(format!("json_schema.schema: {e}")))?;
        schema::check(&value, "json_schema.schema").map_err(Status::invalid_argument)?;
    }
    let input_tokens =
        context(state, "messages: the prompt", || tokenizer.tokenize_chat(&r.messages).len(), prompt_bytes(r))?;
    Ok(Checked { model, input_tokens })
}

/// Bytes of text in the messages: a cheap bound checked before tokenizing.
fn prompt_bytes(r: &pb::CompletionRequest) -> usize {
    r.messages.iter().map(|m| crate::engine::tokenizer::message_text(m).len() + m.role.len()).sum()
}

/// Checks that `what` fits the context window and returns its token count. Texts far larger
/// than any window (over 64 bytes per token of it) are refused without tokenizing them.
pub(crate) fn context(state: &State, what: &str, count: impl FnOnce() -> usize, bytes: usize) -> Result<usize, Status> {
    let window = state.config.context_window;
    if bytes > window.saturating_mul(64) {
        return Err(Status::invalid_argument(format!(
            "{what} is far longer than the model's context window of {window} tokens ({bytes} bytes)"
        )));
    }
    let tokens = count();
    if tokens > window {
        return Err(Status::invalid_argument(format!(
            "{what} has {tokens} tokens, more than the model's context window of {window}"
        )));
    }
    Ok(tokens)
}
