//! Answer generation. An [`Engine`] decides *what* to answer and produces text token by
//! token; [`services::generation`](crate::services::generation) runs it off the async reactor and pulls tokens only as fast as the
//! client reads them; [`render`](crate::services::generation::render) shapes the wire responses exactly like
//! the cloud: usage from the engine's tokenizer, `max_tokens` stopping generation, cumulative
//! streaming chunks, reasoning token counts.

pub(crate) mod embedding;
#[cfg(feature = "local-model")]
pub(crate) mod local;
pub(crate) mod schema;
pub(crate) mod scripted;
pub(crate) mod synthetic;
pub(crate) mod tokenizer;
pub(crate) mod tuned;
pub(crate) mod upstream;

use serde_json::Value;
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

/// The text of one generated token at a time; generation stops when the consumer stops
/// pulling (the client went away, `max_tokens` was reached or the operation was cancelled).
pub type TokenStream = Box<dyn Iterator<Item = Result<String, Status>> + Send>;

/// What a model answers.
pub enum Reply {
    /// A text answer, produced lazily token by token.
    Text(TokenStream),
    /// Function calls: name and JSON arguments (an object).
    ToolCalls(Vec<(String, Value)>),
    /// The answer was withheld by moderation; the text replaces it.
    ContentFilter(String),
    /// Text relayed from another server, piece by piece (each piece one streamed chunk); how
    /// it ended is known once the pieces are read.
    Relayed(TokenStream, Ending),
}

/// How a relayed answer ended, set by its engine when the last piece was read; and the signal
/// that nobody waits for the answer any more, for the engine to stop relaying.
#[derive(Debug, Clone, Default)]
pub struct Ending(std::sync::Arc<EndingState>);

#[derive(Debug, Default)]
struct EndingState {
    reason: std::sync::OnceLock<EndReason>,
    abandoned: tokio::sync::Notify,
}

/// Why a relayed answer ended, when not simply because it was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// Cut at the token limit (`length`).
    Length,
    /// Withheld by moderation (`content_filter`).
    ContentFilter,
}

impl Ending {
    /// Records why the answer ended (the first call wins).
    pub fn set(&self, reason: EndReason) {
        let _ = self.0.reason.set(reason);
    }

    /// Why the answer ended, if it was cut or filtered.
    pub fn get(&self) -> Option<EndReason> {
        self.0.reason.get().copied()
    }

    /// Says that nobody waits for the answer any more (the client went away).
    pub fn abandon(&self) {
        self.0.abandoned.notify_one();
    }

    /// Completes once [`abandon`](Self::abandon) was called (before or after).
    pub async fn abandoned(&self) {
        self.0.abandoned.notified().await;
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Text(_) => f.write_str("Reply::Text(..)"),
            Reply::ToolCalls(calls) => f.debug_tuple("Reply::ToolCalls").field(calls).finish(),
            Reply::ContentFilter(text) => f.debug_tuple("Reply::ContentFilter").field(text).finish(),
            Reply::Relayed(_, ending) => f.debug_tuple("Reply::Relayed").field(ending).finish(),
        }
    }
}

impl Reply {
    /// A fixed text answer, cut into tokens by `tokenizer`.
    pub fn text(tokenizer: &dyn Tokenizer, text: &str) -> Reply {
        Reply::Text(Box::new(tokenizer.pieces(text).into_iter().map(Ok)))
    }
}

/// Turns text into the model's tokens and back. Used by `Tokenize`, `TokenizeCompletion`,
/// usage counts and the context-window check, so they always agree.
pub trait Tokenizer: Send + Sync {
    /// Tokens of plain text.
    fn tokenize(&self, text: &str) -> Vec<pb::Token>;
    /// Tokens of a whole chat as the model sees it, chat template included.
    fn tokenize_chat(&self, messages: &[pb::Message]) -> Vec<pb::Token>;
    /// The text of tokens (special tokens of the template dropped).
    fn detokenize(&self, tokens: &[pb::Token]) -> String;

    /// Tokens `Tokenize` puts before a text (the synthetic model's `<s>`; none for models
    /// whose tokenizer adds no BOS).
    fn text_prefix(&self) -> Vec<pb::Token> {
        vec![pb::Token { id: tokenizer::BOS.1, text: tokenizer::BOS.0.into(), special: true }]
    }

    /// `text` cut into the pieces its tokens stand for, one per token, in order; they join to
    /// `text`. (Tokenizers whose tokens can split a character override this.)
    fn pieces(&self, text: &str) -> Vec<String> {
        self.tokenize(text).iter().map(|t| self.detokenize(std::slice::from_ref(t))).collect()
    }
}

/// The model a request addresses: `gpt://<folder>/<name>/<version>[@<tuning suffix>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// Folder id.
    pub folder: String,
    /// Model name, e.g. `yandexgpt`.
    pub name: String,
    /// Version, e.g. `latest`.
    pub version: String,
    /// The suffix of a fine-tuned model, if the URI names one.
    pub tuned: Option<String>,
}

/// A model behind the emulator. [`reply`](Engine::reply) runs on a blocking thread, never on
/// the async reactor, so it may spend CPU freely; a text answer's tokens are pulled from its
/// [`TokenStream`] only as the client reads them.
pub trait Engine: Send + Sync + 'static {
    /// Reported as `model_version` in every response.
    fn model_version(&self) -> &str;
    /// The model's tokenizer.
    fn tokenizer(&self) -> &dyn Tokenizer;
    /// Decides the answer to a validated completion request.
    fn reply(&self, model: &ModelRef, request: &pb::CompletionRequest) -> Result<Reply, Status>;

    /// Whether a reply to a small request, and each of its tokens, costs only microseconds, so
    /// small requests may be answered on the reactor without a hop to a blocking thread (which
    /// costs more than the work). Large requests always go to the blocking pool. Default: false.
    fn is_cheap(&self) -> bool {
        false
    }

    /// The model's context window in tokens, when it has a fixed one (prompts are checked
    /// against it). Default: none (the configured window applies).
    fn context_window(&self) -> Option<usize> {
        None
    }

    /// Checks, without generating, that the engine can answer in `request`'s response format
    /// (a JSON schema it cannot satisfy or follow is INVALID_ARGUMENT), so work that answers
    /// later, such as a batch, is refused at once like an online call. Default: no check.
    fn check_format(&self, _request: &pb::CompletionRequest) -> Result<(), Status> {
        Ok(())
    }

    /// For a real model, which may ramble or loop: the most tokens an answer gets when the
    /// request sets no `max_tokens`, and the sign that answers are watched for loops (see
    /// `services::generation`). Default: none (answers end on their own).
    fn answer_cap(&self) -> Option<usize> {
        None
    }

    /// Whether each item of a text reply already is a chunk of its own (an upstream server's
    /// streamed delta), to be passed on as one streamed response rather than grouped with
    /// others. Default: false (items are tokens).
    fn streams_chunks(&self) -> bool {
        false
    }

    /// Generations holding the model right now (for stats). Default: 0.
    fn generations_running(&self) -> usize {
        0
    }

    /// Tokens the model generated since start (for stats). Default: 0.
    fn tokens_generated(&self) -> u64 {
        0
    }
}
