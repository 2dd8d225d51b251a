//! The wire: rig requests become SDK calls (messages plus a configured model), and the model
//! describes itself to rig's history replay.

use rig_core::{
    completion::{
        Accepts, AssistantContent, CompletionRequest, Media, Message as RigMessage, ReplayTarget,
        options::{Mapping, OptionFields, OptionMap, Reasoning},
    },
    error::EncodeError,
    message::{Api, CallId, ToolChoice as RigToolChoice, ToolResult as ToolResultPart, ToolResultContent, UserContent},
    operation::Completion,
    wire::{Capabilities, Descriptor, Mode, Wire},
};
use serde_json::{Value, json};
use yandex_cloud_ml_sdk::{
    completions::{GptModel, GptModelConfig, Message, ReasoningMode, ResponseFormat},
    tools::{FunctionTool, ToolCall, ToolChoice, ToolResult},
};

use crate::{
    PROVIDER,
    decode::{LastFrame, YandexDecoder},
};

/// One request, ready to send: the model configured for it and the conversation.
#[derive(Debug, Clone)]
pub struct Payload {
    pub(crate) model: GptModel,
    pub(crate) messages: Vec<Message>,
}

impl Payload {
    /// The model with this request's settings applied.
    pub fn model(&self) -> &GptModel {
        &self.model
    }

    /// The conversation as the SDK sends it.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }
}

/// The rig wire of one Yandex completion model (see [`RigExt::rig`](crate::RigExt::rig)).
#[derive(Debug, Clone)]
pub struct YandexWire {
    model: GptModel,
}

impl YandexWire {
    /// The wire of `model`; its `configure()` settings are every request's defaults.
    pub fn new(model: GptModel) -> YandexWire {
        YandexWire { model }
    }

    /// The model requests go to.
    pub fn model(&self) -> &GptModel {
        &self.model
    }
}

impl Wire for YandexWire {
    type Op = Completion;
    type Payload = Payload;
    type Frame = yandex_cloud_ml_sdk::completions::CompletionResult;
    type Decoder<'id> = YandexDecoder<'id>;
    type Reassembler = LastFrame;

    fn describe(&self) -> Descriptor<'_> {
        Descriptor::new(PROVIDER)
            .model(self.model.uri())
            .replay(self)
            .capabilities(Capabilities::completion(rig_core::completion::ProviderCapabilities::new()))
    }

    fn encode(&self, request: CompletionRequest, _mode: Mode) -> Result<Payload, EncodeError> {
        if let Some(model) = request.model.as_deref().filter(|m| *m != self.model.uri()) {
            return Err(EncodeError::request(format!(
                "this rig model is bound to {}, not {model}; make one for that model with \
                 sdk.models().completions(\"{model}\").rig()",
                self.model.uri()
            )));
        }
        if request.additional_params.as_ref().is_some_and(|p| !p.is_null()) {
            return Err(EncodeError::request(
                "additional_params are not sent to Yandex; set model options with configure() on the SDK model",
            ));
        }
        let config = configure(self.model.config().clone(), &request)?;
        let model = self.model.configure(|_| config).map_err(EncodeError::request)?;
        Ok(Payload { model, messages: messages(&request.chat_history)? })
    }

    fn decoder<'id>(&self) -> YandexDecoder<'id> {
        YandexDecoder::default()
    }
}

/// The model's configuration with the request's settings on top.
fn configure(mut config: GptModelConfig, request: &CompletionRequest) -> Result<GptModelConfig, EncodeError> {
    if let Some(t) = request.temperature {
        config = config.temperature(t);
    }
    if let Some(n) = request.max_tokens {
        let n = u32::try_from(n).map_err(|_| EncodeError::request(format!("max_tokens {n} is too large")))?;
        config = config.max_tokens(n);
    }
    if !request.tools.is_empty() {
        config =
            config.tools(request.tools.iter().map(|t| {
                FunctionTool::new(t.name.as_str(), t.parameters.clone()).with_description(t.description.clone())
            }));
    }
    if let Some(choice) = &request.tool_choice {
        config = config.tool_choice(match choice {
            RigToolChoice::Auto => ToolChoice::Auto,
            RigToolChoice::None => ToolChoice::None,
            RigToolChoice::Required => ToolChoice::Required,
            RigToolChoice::Specific { function_names } => match function_names.as_slice() {
                [one] => ToolChoice::Function(one.to_string()),
                _ => {
                    return Err(EncodeError::request(format!(
                        "Yandex can force one named function, not {}; name exactly one or use Required",
                        function_names.len()
                    )));
                }
            },
        });
    }
    if let Some(schema) = &request.output_schema {
        config = config.response_format(ResponseFormat::json_schema(schema.as_value().clone()));
    }
    match request.options.reasoning {
        Some(Reasoning::Off) => config = config.reasoning_mode(ReasoningMode::Disabled),
        Some(Reasoning::Effort(_)) => config = config.reasoning_mode(ReasoningMode::EnabledHidden),
        _ => {}
    }
    if let Some(parallel) = request.options.parallel_tool_calls {
        config = config.parallel_tool_calls(parallel);
    }
    Ok(config)
}

/// rig's prepared history as SDK messages. Yandex calls and results carry no ids: calls go by
/// name, results answer them in order.
fn messages(history: &[RigMessage]) -> Result<Vec<Message>, EncodeError> {
    let mut out = Vec::with_capacity(history.len());
    // Results are matched to calls by order only, so they go in the order of the calls.
    let mut calls_in_order: Vec<&CallId> = Vec::new();
    for message in history {
        match message {
            RigMessage::System { content } => out.push(Message::system(content.as_str())),
            RigMessage::User { content } => {
                let mut text = Vec::new();
                let mut results = Vec::new();
                for part in content {
                    match part {
                        UserContent::Text(t) => text.push(t.text.as_str()),
                        UserContent::ToolResult(r) => results.push(r),
                        other => {
                            return Err(EncodeError::request(format!(
                                "Yandex text models read text only; this message holds {}",
                                kind_of(other)
                            )));
                        }
                    }
                }
                if !results.is_empty() {
                    let position =
                        |r: &&ToolResultPart| calls_in_order.iter().position(|id| **id == r.call).unwrap_or(usize::MAX);
                    results.sort_by_key(position);
                    out.push(Message::tool_results(results.into_iter().map(|r| {
                        let content = result_text(&r.content);
                        // Yandex results have no error flag: say it in the content.
                        let content = if r.is_error { format!("Error: {content}") } else { content };
                        ToolResult::function(r.name.as_str(), content)
                    })));
                }
                if !text.is_empty() {
                    out.push(Message::user(text.join("\n")));
                }
            }
            RigMessage::Assistant(turn) => {
                let mut text = Vec::new();
                let mut calls = Vec::new();
                calls_in_order.clear();
                for block in &turn.content {
                    match block {
                        AssistantContent::Text(t) => text.push(t.text.as_str()),
                        AssistantContent::ToolCall(c) => {
                            calls_in_order.push(&c.id);
                            calls.push(ToolCall::new(
                                c.function.name.as_str(),
                                Value::Object(c.function.arguments.clone()),
                            ))
                        }
                        // Reasoning and provider-opaque blocks are not sent (see `sends_alone`).
                        _ => {}
                    }
                }
                // A Yandex message holds text or calls, not both: the text goes first.
                if !text.is_empty() {
                    out.push(Message::assistant(text.join("\n")));
                }
                if !calls.is_empty() {
                    out.push(Message::assistant_tool_calls(calls));
                }
            }
        }
    }
    Ok(out)
}

/// A tool result's parts as one text; JSON parts as JSON.
fn result_text(parts: &[ToolResultContent]) -> String {
    parts
        .iter()
        .map(|p| match p {
            ToolResultContent::Text(t) => t.text.clone(),
            ToolResultContent::Json { value: Value::String(text) } => text.clone(),
            ToolResultContent::Json { value } => value.to_string(),
            ToolResultContent::Image(_) => "[image]".to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn kind_of(part: &UserContent) -> &'static str {
    match part {
        UserContent::Image(_) => "an image",
        UserContent::Audio(_) => "audio",
        UserContent::Video(_) => "video",
        UserContent::Document(_) => "a document",
        _ => "content of another kind",
    }
}

impl ReplayTarget for YandexWire {
    fn api(&self) -> Api {
        Api::from_static("yandex.foundation_models.text_generation")
    }

    fn provider(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        self.model.uri()
    }

    fn accepts(&self, _model: &str) -> Accepts {
        Accepts::TEXT
    }

    /// Text only: rig turns documents into text and media into placeholders before encoding.
    fn encodes(&self, _model: &str, _media: Media<'_>) -> bool {
        false
    }

    fn sends_alone(&self, block: &AssistantContent) -> bool {
        matches!(block, AssistantContent::Text(_) | AssistantContent::ToolCall(_))
    }

    fn map_options(&self, _request: &CompletionRequest, fields: OptionFields<'_>) -> OptionMap {
        let OptionFields { reasoning, cache, service_tier, verbosity, parallel_tool_calls, top_p, seed, stop } = fields;
        let unsupported = |what: &str| Mapping::unsupported(format!("Yandex text generation has no {what} option"));
        OptionMap {
            reasoning: Mapping::of(reasoning, |r| match r {
                Reasoning::Off => Mapping::Send(json!({"reasoningOptions": {"mode": "DISABLED"}})),
                Reasoning::Effort(_) => Mapping::Send(json!({"reasoningOptions": {"mode": "ENABLED_HIDDEN"}})),
                _ => Mapping::unsupported("Yandex reasoning is on or off; a token budget cannot be set"),
            }),
            cache: Mapping::of(cache, |_| unsupported("prompt cache")),
            service_tier: Mapping::of(service_tier, |_| unsupported("service tier")),
            verbosity: Mapping::of(verbosity, |_| unsupported("verbosity")),
            parallel_tool_calls: Mapping::of(parallel_tool_calls, |p| Mapping::Send(json!({"parallelToolCalls": p}))),
            top_p: Mapping::of(top_p, |_| unsupported("top_p")),
            seed: Mapping::of(seed, |_| unsupported("seed")),
            stop: Mapping::of_stop(stop, |_| unsupported("stop sequences")),
        }
    }
}
