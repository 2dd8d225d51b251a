//! [`ChatModel`]: a model of the OpenAI-compatible API with its configuration, and its calls.

use std::{fmt, sync::Arc, time::Duration};

use super::{
    config::{ChatModelConfig, RequestBody},
    message::{ChatMessage, IntoChatMessages},
    result::{ChatResult, Wire},
    stream::ChatStream,
};
use crate::{
    call::{Action, Call, CallOptions},
    error::{Error, Result},
    sdk::Sdk,
    transport::openai::ApiRequest,
};

/// Default overall timeout of `run` and `run_stream` (the Python SDK's).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// A chat model of the OpenAI-compatible API (the Python SDK's `sdk.chat.completions(name)`):
/// every model family AI Studio serves (YandexGPT, Alice AI, Qwen3, gpt-oss, Gemma), images
/// in messages, reasoning effort. Cheap to clone; `configure` returns a new value.
#[derive(Clone)]
pub struct ChatModel {
    sdk: Sdk,
    uri: Arc<str>,
    config: Arc<ChatModelConfig>,
}

impl fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatModel").field("uri", &self.uri).field("config", &self.config).finish()
    }
}

impl ChatModel {
    pub(crate) fn new(sdk: Sdk, uri: String) -> ChatModel {
        ChatModel { sdk, uri: uri.into(), config: Arc::default() }
    }

    crate::completions::uri::uri_accessors!("gpt://b1g.../qwen3-235b-a22b-fp8/latest");

    /// The current configuration.
    pub fn config(&self) -> &ChatModelConfig {
        &self.config
    }

    /// Returns a model with a changed configuration, validated as a whole; errors name the
    /// offending field.
    ///
    /// ```
    /// # fn demo(model: yandex_cloud_ml_sdk::chat::ChatModel) -> yandex_cloud_ml_sdk::Result<()> {
    /// use yandex_cloud_ml_sdk::chat::ReasoningEffort;
    /// let careful = model.configure(|c| c.temperature(0.2).reasoning_effort(ReasoningEffort::High))?;
    /// assert!(model.configure(|c| c.max_tokens(0)).is_err());
    /// # Ok(()) }
    /// ```
    pub fn configure(&self, change: impl FnOnce(ChatModelConfig) -> ChatModelConfig) -> Result<ChatModel> {
        let config = change((*self.config).clone());
        config.validate()?;
        Ok(ChatModel { sdk: self.sdk.clone(), uri: self.uri.clone(), config: Arc::new(config) })
    }

    /// Generates an answer (`POST chat/completions`). Default timeout 180 s.
    pub fn run(&self, messages: impl IntoChatMessages) -> Call<Run> {
        Call::new(Run(self.input(messages)))
    }

    /// Generates an answer as a stream of deltas. `.await` opens the stream (retrying until
    /// the first event arrives) and yields a [`ChatStream`]. Default timeout 180 s, covering
    /// the whole stream.
    pub fn run_stream(&self, messages: impl IntoChatMessages) -> Call<RunStream> {
        Call::new(RunStream(self.input(messages)))
    }

    fn input(&self, messages: impl IntoChatMessages) -> Input {
        Input { model: self.clone(), messages: messages.into_chat_messages() }
    }
}

/// The model and messages of a call.
#[derive(Debug)]
struct Input {
    model: ChatModel,
    messages: Vec<ChatMessage>,
}

impl Input {
    fn request(&self, stream: bool) -> Result<ApiRequest<'static>> {
        if self.messages.is_empty() {
            return Err(Error::invalid_input("no messages to send: give at least one"));
        }
        for (at, message) in self.messages.iter().enumerate() {
            message.validate(at)?;
        }
        let body = RequestBody { model: &self.model.uri, messages: &self.messages, stream, config: &self.model.config };
        ApiRequest::post("chat/completions", &body)
    }
}

/// [`ChatModel::run`]: one answer.
#[derive(Debug)]
pub struct Run(Input);

impl Action for Run {
    type Output = ChatResult;
    const DEFAULT_TIMEOUT: Duration = RUN_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<ChatResult> {
        let request = self.0.request(false)?;
        let answer = self.0.model.sdk.transport().api_json::<Wire>(request, &options).await?;
        Ok(ChatResult::from_wire(answer.value)?.with_server_request_id(answer.server_request_id))
    }
}

/// [`ChatModel::run_stream`]: an answer delta by delta.
#[derive(Debug)]
pub struct RunStream(Input);

impl Action for RunStream {
    type Output = ChatStream;
    const DEFAULT_TIMEOUT: Duration = RUN_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<ChatStream> {
        let request = self.0.request(true)?;
        let events = self.0.model.sdk.transport().api_stream(request, &options).await?;
        Ok(ChatStream::new(events))
    }
}
