//! [`GptModel`]: a text-generation model with its configuration, and its calls.

use std::{
    fmt,
    future::{Future, IntoFuture},
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{
    config::GptModelConfig,
    message::{IntoMessages, Message},
    result::{CompletionResult, Token},
    stream::CompletionStream,
    uri,
};
use crate::{
    error::{Error, Result},
    operations::{Operation, OperationOutput, Route, sealed},
    retry::RetryPolicy,
    sdk::Sdk,
    transport::{CallOptions, rpc},
};

/// Default overall timeout of `run` and `run_stream` (the Python SDK's real default).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Default timeout of `run_deferred` and `tokenize`.
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(60);

/// Polling defaults of deferred completions (Python SDK parity).
const DEFERRED_ROUTE: Route = Route {
    get: &rpc::OPERATION_GET,
    cancel: &rpc::OPERATION_CANCEL,
    poll_interval: Duration::from_secs(10),
    poll_timeout: Duration::from_secs(3600),
};

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

    /// The model URI, e.g. `gpt://b1g.../yandexgpt/latest`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The model name parsed from the URI (`yandexgpt`), if the URI has the usual shape.
    pub fn name(&self) -> Option<&str> {
        uri::parse(&self.uri).map(|p| p.name)
    }

    /// The version parsed from the URI (`latest`, `rc`, …).
    pub fn version(&self) -> Option<&str> {
        uri::parse(&self.uri).map(|p| p.version)
    }

    /// Whether the URI names a fine-tuned model (`…/latest@suffix`); `None` for unusual URIs.
    pub fn fine_tuned(&self) -> Option<bool> {
        uri::parse(&self.uri).map(|p| p.fine_tune.is_some())
    }

    /// The current configuration.
    pub fn config(&self) -> &GptModelConfig {
        &self.config
    }

    /// Returns a model with a changed configuration. The closure gets the current settings;
    /// the result is validated as a whole and errors name the offending field.
    ///
    /// ```
    /// # fn demo(model: yandex_cloud_ml_sdk::GptModel) -> yandex_cloud_ml_sdk::Result<()> {
    /// use yandex_cloud_ml_sdk::ReasoningMode;
    /// let tuned = model.configure(|c| c.temperature(0.2).max_tokens(500).reasoning_mode(ReasoningMode::EnabledHidden))?;
    /// assert!(model.configure(|c| c.temperature(3.0)).is_err());
    /// # Ok(()) }
    /// ```
    pub fn configure(&self, change: impl FnOnce(GptModelConfig) -> GptModelConfig) -> Result<GptModel> {
        let config = change((*self.config).clone());
        config.validate()?;
        Ok(GptModel { sdk: self.sdk.clone(), uri: self.uri.clone(), config: Arc::new(config) })
    }

    /// Generates an answer (`TextGenerationService/Completion` without streaming).
    pub fn run(&self, messages: impl IntoMessages) -> ModelCall<Run> {
        self.call(messages, RUN_TIMEOUT, Run)
    }

    /// Generates an answer chunk by chunk. `.await` opens the stream (retrying until the first
    /// chunk arrives) and yields a [`CompletionStream`].
    pub fn run_stream(&self, messages: impl IntoMessages) -> ModelCall<RunStream> {
        self.call(messages, RUN_TIMEOUT, RunStream)
    }

    /// Starts an asynchronous generation (`TextGenerationAsyncService/Completion`) and returns
    /// its operation; wait for it or re-attach later by id.
    pub fn run_deferred(&self, messages: impl IntoMessages) -> ModelCall<RunDeferred> {
        self.call(messages, SHORT_TIMEOUT, RunDeferred)
    }

    /// Re-attaches to a deferred generation by operation id. No RPC is made.
    pub fn attach_deferred(&self, operation_id: impl Into<String>) -> Operation<CompletionResult> {
        Operation::new(self.sdk.clone(), operation_id.into(), DEFERRED_ROUTE)
    }

    /// Tokenizes the messages as the model sees them, chat template included
    /// (`TokenizerService/TokenizeCompletion`).
    pub fn tokenize(&self, messages: impl IntoMessages) -> ModelCall<Tokenize> {
        self.call(messages, SHORT_TIMEOUT, Tokenize)
    }

    /// Generates an answer constrained to the JSON schema of `T` and deserializes it.
    #[cfg(feature = "schemars")]
    pub fn run_structured<T>(&self, messages: impl IntoMessages) -> ModelCall<RunStructured<T>>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
    {
        self.call(messages, RUN_TIMEOUT, RunStructured(PhantomData))
    }

    fn call<A>(&self, messages: impl IntoMessages, timeout: Duration, _action: A) -> ModelCall<A> {
        ModelCall {
            model: self.clone(),
            messages: messages.into_messages(),
            options: CallOptions::with_timeout(timeout),
            action: PhantomData,
        }
    }

    /// Builds the wire request with the model's configuration.
    pub(crate) fn request(&self, messages: &[Message], stream: bool) -> Result<pb::CompletionRequest> {
        self.request_with(messages, stream, &self.config)
    }

    fn request_with(
        &self,
        messages: &[Message],
        stream: bool,
        config: &GptModelConfig,
    ) -> Result<pb::CompletionRequest> {
        if self.uri.trim().is_empty() || self.uri.chars().any(char::is_whitespace) {
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
            model_uri: self.uri.to_string(),
            completion_options: Some(pb::CompletionOptions { stream, ..Default::default() }),
            messages: messages.iter().map(Message::to_proto).collect(),
            ..Default::default()
        };
        config.apply(&mut request)?;
        Ok(request)
    }
}

/// A configured call of a [`GptModel`] method: set per-call options, then `.await` it.
#[must_use = "a model call does nothing until awaited"]
pub struct ModelCall<A> {
    model: GptModel,
    messages: Vec<Message>,
    options: CallOptions,
    action: PhantomData<fn() -> A>,
}

impl<A> fmt::Debug for ModelCall<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelCall")
            .field("uri", &self.model.uri)
            .field("messages", &self.messages.len())
            .field("timeout", &self.options.timeout)
            .finish_non_exhaustive()
    }
}

impl<A> ModelCall<A> {
    /// Overall deadline: all attempts, backoff and (for streams) reading to the end.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Bound of a single attempt (for streams: until the first chunk); a timed-out attempt is
    /// retried while the retry policy and the overall deadline allow.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.options.attempt_timeout = Some(timeout);
        self
    }

    /// Retry policy for this call only.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// Marker for [`GptModel::run`].
#[derive(Debug)]
pub struct Run;
/// Marker for [`GptModel::run_stream`].
#[derive(Debug)]
pub struct RunStream;
/// Marker for [`GptModel::run_deferred`].
#[derive(Debug)]
pub struct RunDeferred;
/// Marker for [`GptModel::tokenize`].
#[derive(Debug)]
pub struct Tokenize;
/// Marker for [`GptModel::run_structured`].
#[derive(Debug)]
pub struct RunStructured<T>(PhantomData<fn() -> T>);

impl IntoFuture for ModelCall<Run> {
    type Output = Result<CompletionResult>;
    type IntoFuture = BoxFuture<CompletionResult>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { run(&self.model, &self.messages, &self.options, &self.model.config).await })
    }
}

async fn run(
    model: &GptModel,
    messages: &[Message],
    options: &CallOptions,
    config: &GptModelConfig,
) -> Result<CompletionResult> {
    let request = model.request_with(messages, false, config)?;
    let response: pb::CompletionResponse =
        model.sdk.transport().stream_last(&rpc::COMPLETION, &request, options).await?;
    Ok(CompletionResult::from_proto(response))
}

impl IntoFuture for ModelCall<RunStream> {
    type Output = Result<CompletionStream>;
    type IntoFuture = BoxFuture<CompletionStream>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = self.model.request(&self.messages, true)?;
            let stream = self.model.sdk.transport().stream(&rpc::COMPLETION, &request, &self.options).await?;
            Ok(CompletionStream::new(stream))
        })
    }
}

impl IntoFuture for ModelCall<RunDeferred> {
    type Output = Result<Operation<CompletionResult>>;
    type IntoFuture = BoxFuture<Operation<CompletionResult>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = self.model.request(&self.messages, false)?;
            let op: yandex_cloud_ml_proto::yandex::cloud::operation::Operation =
                self.model.sdk.transport().unary(&rpc::COMPLETION_ASYNC, &request, &self.options).await?;
            Ok(self.model.attach_deferred(op.id))
        })
    }
}

impl IntoFuture for ModelCall<Tokenize> {
    type Output = Result<Vec<Token>>;
    type IntoFuture = BoxFuture<Vec<Token>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = self.model.request(&self.messages, false)?;
            let response: pb::TokenizeResponse =
                self.model.sdk.transport().unary(&rpc::TOKENIZE_COMPLETION, &request, &self.options).await?;
            Ok(response.tokens.iter().map(Token::from_proto).collect())
        })
    }
}

#[cfg(feature = "schemars")]
impl<T> IntoFuture for ModelCall<RunStructured<T>>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
{
    type Output = Result<T>;
    type IntoFuture = BoxFuture<T>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let config = (*self.model.config).clone().response_format(super::config::ResponseFormat::from_type::<T>());
            config.validate()?;
            let result = run(&self.model, &self.messages, &self.options, &config).await?;
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
        })
    }
}

impl sealed::Sealed for CompletionResult {}

impl OperationOutput for CompletionResult {
    async fn from_response(_sdk: &Sdk, response: &prost_types::Any) -> Result<Self> {
        match yandex_cloud_ml_proto::unpack_any::<pb::CompletionResponse>(response) {
            Some(Ok(r)) => Ok(CompletionResult::from_proto(r)),
            Some(Err(e)) => Err(Error::decode(format!("operation response is not a valid CompletionResponse: {e}"))),
            None => Err(Error::decode(format!(
                "operation response has type `{}`, expected CompletionResponse",
                response.type_url
            ))),
        }
    }
}
