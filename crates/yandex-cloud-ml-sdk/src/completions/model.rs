//! [`GptModel`]: a text-generation model with its configuration, and its calls.

use std::{fmt, sync::Arc, time::Duration};

use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{
    config::GptModelConfig,
    message::{IntoMessages, Message},
    result::{CompletionResult, Token},
    stream::CompletionStream,
};
use crate::{
    call::{Action, Call, CallOptions},
    error::{Error, Result},
    operations::{Operation, Pace, sealed},
    sdk::Sdk,
    transport::rpc,
};

/// Default overall timeout of `run` and `run_stream` (the Python SDK's real default).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Default timeout of `run_deferred` and `tokenize`.
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);

/// A text-generation model (the Python SDK's `AsyncGPTModel`). Cheap to clone; `configure`
/// returns a new value and leaves this one unchanged.
#[derive(Clone)]
pub struct GptModel {
    sdk: Sdk,
    uri: Arc<str>,
    config: Arc<GptModelConfig>,
}

impl fmt::Debug for GptModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GptModel").field("uri", &self.uri).field("config", &self.config).finish()
    }
}

impl GptModel {
    pub(crate) fn new(sdk: Sdk, uri: String) -> GptModel {
        GptModel { sdk, uri: uri.into(), config: Arc::default() }
    }

    crate::completions::uri::uri_accessors!("gpt://b1g.../yandexgpt/latest");

    /// The current configuration.
    pub fn config(&self) -> &GptModelConfig {
        &self.config
    }

    /// Returns a model with a changed configuration. The closure gets the current settings;
    /// the result is validated as a whole and errors name the offending field.
    ///
    /// ```
    /// # fn demo(model: yandex_cloud_ml_sdk::completions::GptModel) -> yandex_cloud_ml_sdk::Result<()> {
    /// use yandex_cloud_ml_sdk::completions::ReasoningMode;
    /// let tuned = model.configure(|c| c.temperature(0.2).max_tokens(500).reasoning_mode(ReasoningMode::EnabledHidden))?;
    /// assert!(model.configure(|c| c.temperature(3.0)).is_err());
    /// # Ok(()) }
    /// ```
    pub fn configure(&self, change: impl FnOnce(GptModelConfig) -> GptModelConfig) -> Result<GptModel> {
        let config = change((*self.config).clone());
        config.validate()?;
        Ok(GptModel { sdk: self.sdk.clone(), uri: self.uri.clone(), config: Arc::new(config) })
    }

    /// Generates an answer (`TextGenerationService/Completion` without streaming). Default
    /// timeout 180 s.
    pub fn run(&self, messages: impl IntoMessages) -> Call<Run> {
        Call::new(Run(self.input(messages)))
    }

    /// Generates an answer chunk by chunk. `.await` opens the stream (retrying until the first
    /// chunk arrives) and yields a [`CompletionStream`]. Default timeout 180 s, covering the
    /// whole stream.
    pub fn run_stream(&self, messages: impl IntoMessages) -> Call<RunStream> {
        Call::new(RunStream(self.input(messages)))
    }

    /// Starts an asynchronous generation (`TextGenerationAsyncService/Completion`) and returns
    /// its operation; wait for it or re-attach later by id. Default timeout 60 s.
    pub fn run_deferred(&self, messages: impl IntoMessages) -> Call<RunDeferred> {
        Call::new(RunDeferred(self.input(messages)))
    }

    /// Re-attaches to a deferred generation by operation id. No RPC is made.
    pub fn attach_deferred(&self, operation_id: impl Into<String>) -> Operation<CompletionResult> {
        Operation::new(self.sdk.clone(), operation_id.into())
    }

    /// Tokenizes the messages as the model sees them, chat template included
    /// (`TokenizerService/TokenizeCompletion`). Default timeout 60 s.
    pub fn tokenize(&self, messages: impl IntoMessages) -> Call<Tokenize> {
        Call::new(Tokenize(self.input(messages)))
    }

    /// Generates an answer constrained to the JSON schema of `T` and deserializes it. Default
    /// timeout 180 s.
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub fn run_structured<T>(&self, messages: impl IntoMessages) -> Call<RunStructured<T>>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
    {
        Call::new(RunStructured(self.input(messages), std::marker::PhantomData))
    }

    pub(crate) fn sdk(&self) -> &Sdk {
        &self.sdk
    }

    fn input(&self, messages: impl IntoMessages) -> Input {
        Input { model: self.clone(), messages: messages.into_messages() }
    }

    /// Builds the wire request with `config` (messages are moved, not copied).
    fn request_with(
        &self,
        messages: Vec<Message>,
        stream: bool,
        config: &GptModelConfig,
    ) -> Result<pb::CompletionRequest> {
        if self.uri.is_empty() || self.uri.contains(char::is_whitespace) {
            return Err(Error::invalid_input(format!(
                "model URI `{}` is empty or contains whitespace: pass a model name like \"yandexgpt\"",
                self.uri
            )));
        }
        if messages.is_empty() {
            return Err(Error::invalid_input("messages are empty: pass at least one message"));
        }
        if let Some((i, problem)) = messages.iter().enumerate().find_map(|(i, m)| m.problem().map(|p| (i, p))) {
            return Err(Error::invalid_input(format!("message {i} {problem}")));
        }
        let mut request = pb::CompletionRequest {
            model_uri: String::from(&*self.uri),
            completion_options: Some(pb::CompletionOptions { stream, ..Default::default() }),
            messages: messages.into_iter().map(Message::into_proto).collect::<Result<_>>()?,
            ..Default::default()
        };
        config.apply(&mut request)?;
        Ok(request)
    }
}

/// The model and the messages of one call.
#[derive(Debug)]
struct Input {
    model: GptModel,
    messages: Vec<Message>,
}

impl Input {
    /// The wire request with the model's configuration.
    fn request(self, stream: bool) -> Result<(GptModel, pb::CompletionRequest)> {
        let request = self.model.request_with(self.messages, stream, &self.model.config)?;
        Ok((self.model, request))
    }

    async fn run(self, options: &CallOptions, config: &GptModelConfig) -> Result<CompletionResult> {
        let request = self.model.request_with(self.messages, false, config)?;
        let response: pb::CompletionResponse =
            self.model.sdk.transport().stream_last(&rpc::COMPLETION, request, options).await?;
        Ok(CompletionResult::from_proto(response))
    }
}

/// [`GptModel::run`]: one answer.
#[derive(Debug)]
pub struct Run(Input);

impl Action for Run {
    type Output = CompletionResult;
    const DEFAULT_TIMEOUT: Duration = RUN_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<CompletionResult> {
        let config = self.0.model.config.clone();
        self.0.run(&options, &config).await
    }
}

/// [`GptModel::run_stream`]: an answer chunk by chunk.
#[derive(Debug)]
pub struct RunStream(Input);

impl Action for RunStream {
    type Output = CompletionStream;
    const DEFAULT_TIMEOUT: Duration = RUN_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<CompletionStream> {
        let (model, request) = self.0.request(true)?;
        let stream = model.sdk.transport().stream(&rpc::COMPLETION, request, &options).await?;
        Ok(CompletionStream::new(stream))
    }
}

/// [`GptModel::run_deferred`]: starts a generation and returns its operation.
#[derive(Debug)]
pub struct RunDeferred(Input);

impl Action for RunDeferred {
    type Output = Operation<CompletionResult>;
    const DEFAULT_TIMEOUT: Duration = SHORT_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Operation<CompletionResult>> {
        let (model, request) = self.0.request(false)?;
        let op: yandex_cloud_ml_proto::yandex::cloud::operation::Operation =
            model.sdk.transport().unary(&rpc::COMPLETION_ASYNC, request, &options).await?;
        Ok(model.attach_deferred(op.id))
    }
}

/// [`GptModel::tokenize`]: the tokens of the prompt.
#[derive(Debug)]
pub struct Tokenize(Input);

impl Action for Tokenize {
    type Output = Vec<Token>;
    const DEFAULT_TIMEOUT: Duration = SHORT_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Vec<Token>> {
        let (model, request) = self.0.request(false)?;
        let response: pb::TokenizeResponse =
            model.sdk.transport().unary(&rpc::TOKENIZE_COMPLETION, request, &options).await?;
        Ok(response.tokens.iter().map(Token::from_proto).collect())
    }
}

/// [`GptModel::run_structured`]: an answer deserialized into `T`.
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub struct RunStructured<T>(Input, std::marker::PhantomData<fn() -> T>);

#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
impl<T> fmt::Debug for RunStructured<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RunStructured").field(&self.0).field(&std::any::type_name::<T>()).finish()
    }
}

#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
impl<T> Action for RunStructured<T>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
{
    type Output = T;
    const DEFAULT_TIMEOUT: Duration = RUN_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<T> {
        let config = (*self.0.model.config).clone().response_format(super::config::ResponseFormat::from_type::<T>());
        config.validate()?;
        let result = self.0.run(&options, &config).await?;
        if !result.tool_calls().is_empty() {
            return Err(Error::decode(
                "the model asked for tool calls instead of answering with JSON; \
                 handle the calls with run() or configure tool_choice none",
            ));
        }
        serde_json::from_str(result.text()).map_err(|e| {
            let shown: String = result.text().chars().take(2000).collect();
            Error::decode(format!(
                "the answer is not valid JSON for {}: {e}; answer was: {shown}",
                std::any::type_name::<T>()
            ))
        })
    }
}

impl sealed::Output for CompletionResult {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::Operation;
    const PACE: Pace = Pace::OPERATION;

    async fn from_response(_sdk: &Sdk, response: prost_types::Any, _options: &CallOptions) -> Result<Self> {
        crate::operations::unpack::<pb::CompletionResponse>(&response).map(CompletionResult::from_proto)
    }
}
