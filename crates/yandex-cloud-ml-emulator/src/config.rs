//! Emulator settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::faults::FaultRule;

/// How the emulator checks the `authorization` header of cloud API calls (discovery and IAM
/// token calls are never checked, like in the cloud). `Debug` shows how many credentials are
/// listed, never the credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum AuthMode {
    /// Any well-formed `Api-Key <key>` or `Bearer <token>` is accepted; a missing or malformed
    /// header, or an expired token issued by the emulator, gets `UNAUTHENTICATED`.
    AcceptAny,
    /// Only the listed API keys and IAM tokens, plus unexpired tokens the emulator issued.
    /// OAuth exchange only accepts the listed OAuth tokens.
    Require {
        /// Accepted `Api-Key` values.
        #[serde(default)]
        api_keys: Vec<String>,
        /// Accepted `Bearer` tokens besides the ones the emulator issued.
        #[serde(default)]
        iam_tokens: Vec<String>,
        /// OAuth tokens that `IamTokenService/Create` exchanges.
        #[serde(default)]
        oauth_tokens: Vec<String>,
    },
    /// No header is needed at all.
    Open,
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMode::AcceptAny => f.write_str("AcceptAny"),
            AuthMode::Open => f.write_str("Open"),
            AuthMode::Require { api_keys, iam_tokens, oauth_tokens } => f
                .debug_struct("Require")
                .field("api_keys", &format_args!("{} hidden", api_keys.len()))
                .field("iam_tokens", &format_args!("{} hidden", iam_tokens.len()))
                .field("oauth_tokens", &format_args!("{} hidden", oauth_tokens.len()))
                .finish(),
        }
    }
}

/// When asynchronous operations finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "value")]
pub enum OperationPolicy {
    /// Done as soon as they are created.
    Immediate,
    /// Done on the N-th `OperationService/Get` (the cloud's recorded deferred run took 2).
    AfterPolls(u32),
    /// Done after this many milliseconds, in the background.
    AfterDelayMs(u64),
    /// Only when a test completes or fails them through the control API.
    Manual,
}

/// The HTTP control API's bearer token; never shown in `Debug` or serialized output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ControlToken(pub String);

impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlToken(***)")
    }
}

impl Serialize for ControlToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// The API key sent to an upstream server (as `Authorization: Bearer`); never shown in
/// `Debug` or serialized.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct UpstreamKey(pub String);

impl std::fmt::Debug for UpstreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamKey(***)")
    }
}

impl std::str::FromStr for UpstreamKey {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(UpstreamKey(s.to_owned()))
    }
}

impl Serialize for UpstreamKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// Everything that shapes the emulator's behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EmulatorConfig {
    /// Authorization checks.
    pub auth: AuthMode,
    /// Folders that model URIs may name; empty means any folder.
    pub folders: Vec<String>,
    /// When deferred completions finish.
    pub operations: OperationPolicy,
    /// Lifetime of IAM tokens issued by `IamTokenService/Create`, in seconds (at most a century
    /// is used).
    pub token_lifetime_secs: u64,
    /// Tokens per streamed chunk.
    pub stream_chunk_tokens: usize,
    /// Pause before each streamed chunk after the first, in milliseconds.
    pub stream_chunk_delay_ms: u64,
    /// Model context window in tokens; longer prompts (and `Tokenize` texts) are rejected,
    /// never silently truncated.
    pub context_window: usize,
    /// Largest accepted `max_tokens`, and the longest answer when `max_tokens` is not set (the
    /// answer then ends TRUNCATED_FINAL, as in the cloud).
    pub max_tokens_limit: i64,
    /// Address put into the discovery table (default: the bound address).
    pub advertised_address: Option<String>,
    /// Entries kept in the request journal (oldest dropped first); 0 turns it off.
    pub journal_capacity: usize,
    /// Bytes the journal keeps in total (oldest entries dropped first).
    pub journal_bytes: usize,
    /// Largest request body the journal keeps; larger ones are recorded as a size marker.
    pub journal_body_bytes: usize,
    /// Operations kept at most; running ones are never dropped (new ones are refused with
    /// RESOURCE_EXHAUSTED when all are running).
    pub max_operations: usize,
    /// How long a finished operation can still be polled, in seconds.
    pub operation_ttl_secs: u64,
    /// IAM tokens remembered at most (expired ones go first, then the soonest to expire).
    pub max_issued_tokens: usize,
    /// Connections served at once (kept below the process's open-file limit); more are closed.
    pub max_connections: usize,
    /// Time a new connection has to start talking, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// Time a request body has to arrive, in milliseconds.
    pub request_read_timeout_ms: u64,
    /// Bearer token of the HTTP control API (default: a random one from the system's
    /// cryptographic source, printed at start). At least 16 printable ASCII characters; a shorter
    /// or empty token is refused at start.
    pub control_token: Option<ControlToken>,
    /// Lets the HTTP control API listen on and answer for non-loopback addresses.
    pub control_allow_remote: bool,
    /// Request bytes held in memory at once over all calls being read; calls beyond it are
    /// refused with UNAVAILABLE until memory frees up.
    pub max_buffered_request_bytes: usize,
    /// Concurrent calls accepted per HTTP/2 connection (the HTTP/2 default of 200 would queue
    /// load tests with thousands of requests in flight).
    pub max_concurrent_streams: u32,
    /// HTTP/2 connection receive window in bytes. h2 lets only about half of it wait in small,
    /// not yet read request bodies before it closes the connection as a flood, so bursts of
    /// thousands of calls need a large window.
    pub connection_window_bytes: u32,
    /// Keeps datasets, their files and tuned models here across restarts (default: memory).
    pub data_dir: Option<std::path::PathBuf>,
    /// Datasets kept at most (new ones get RESOURCE_EXHAUSTED).
    pub max_datasets: usize,
    /// Bytes of dataset files kept at most, uploads in progress included (uploads beyond it
    /// are refused with HTTP 503).
    pub max_stored_bytes: u64,
    /// Tuning tasks kept at most.
    pub max_tuning_tasks: usize,
    /// Bytes of training rows all tuned models keep together (each row's prompt and response
    /// are kept up to 16 KiB); a tuning beyond it fails with RESOURCE_EXHAUSTED.
    #[serde(default = "default_tuned_model_bytes")]
    pub max_tuned_model_bytes: u64,
    /// Dataset validations that run at once; more wait their turn (VALIDATING meanwhile), so
    /// memory does not grow with the number of uploads.
    #[serde(default = "default_concurrent_validations")]
    pub max_concurrent_validations: usize,
    /// Training steps of a tuning job (its progress goes from 0 to this).
    pub tuning_steps: u32,
    /// Time each tuning stage and step takes, in milliseconds (0: as fast as possible, for
    /// tests; a few hundred shows the progression in a demo).
    pub tuning_step_ms: u64,
    /// Batch tasks kept at most.
    pub max_batch_tasks: usize,
    /// Time each batch task stage and each batch of 100 rows takes at least, in milliseconds
    /// (0: as fast as the engine answers).
    pub batch_step_ms: u64,
    /// Fault injection rules.
    pub faults: Vec<FaultRule>,
    /// Seed of the fault generator: the same seed and call sequence meet the same faults.
    pub fault_seed: u64,
    /// A GGUF model to answer with instead of the built-in one (feature `local-model`).
    #[serde(default)]
    pub model: Option<std::path::PathBuf>,
    /// Generations the local model runs at once.
    #[serde(default = "default_model_slots")]
    pub model_slots: usize,
    /// Requests that may wait for the local model; more get RESOURCE_EXHAUSTED.
    #[serde(default = "default_model_queue")]
    pub model_queue: usize,
    /// Tokens a local model's answer may take when the request sets no `max_tokens` (512).
    #[serde(default = "default_model_max_tokens")]
    pub model_max_tokens: usize,
    /// A sentence-transformers model directory (e.g. all-MiniLM-L6-v2) to embed with instead
    /// of the built-in hashed embedder (feature `local-model`).
    #[serde(default)]
    pub embedding_model: Option<std::path::PathBuf>,
    /// An OpenAI-compatible server to forward generation to (`http://host:port/v1`: vLLM,
    /// llama.cpp's server, Ollama, another emulator) instead of the built-in model.
    #[serde(default)]
    pub upstream_openai: Option<String>,
    /// The model name sent upstream (default: the request's model URI).
    #[serde(default)]
    pub upstream_model: Option<String>,
    /// The API key the upstream wants, if any.
    #[serde(default)]
    pub upstream_api_key: Option<UpstreamKey>,
    /// How long the upstream may take to answer, and to send each next chunk, in milliseconds.
    #[serde(default = "default_upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
}

fn default_upstream_timeout_ms() -> u64 {
    crate::engine::upstream::DEFAULT_UPSTREAM_TIMEOUT.as_millis() as u64
}

fn default_tuned_model_bytes() -> u64 {
    256 << 20
}

fn default_concurrent_validations() -> usize {
    2
}

fn default_model_max_tokens() -> usize {
    512
}

fn default_model_slots() -> usize {
    1
}

fn default_model_queue() -> usize {
    8
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            auth: AuthMode::AcceptAny,
            folders: Vec::new(),
            operations: OperationPolicy::AfterPolls(2),
            token_lifetime_secs: 12 * 3600,
            stream_chunk_tokens: 3,
            stream_chunk_delay_ms: 0,
            context_window: 32_768,
            max_tokens_limit: 8_000,
            advertised_address: None,
            journal_capacity: 10_000,
            journal_bytes: 64 << 20,
            journal_body_bytes: 64 << 10,
            max_operations: 100_000,
            operation_ttl_secs: 3600,
            max_issued_tokens: 100_000,
            max_connections: 4096,
            handshake_timeout_ms: 10_000,
            request_read_timeout_ms: 30_000,
            control_token: None,
            control_allow_remote: false,
            max_buffered_request_bytes: 256 << 20,
            max_concurrent_streams: 16_384,
            connection_window_bytes: 64 << 20,
            data_dir: None,
            max_datasets: 10_000,
            max_stored_bytes: 16 << 30,
            max_tuning_tasks: 10_000,
            max_tuned_model_bytes: default_tuned_model_bytes(),
            max_concurrent_validations: default_concurrent_validations(),
            tuning_steps: 10,
            tuning_step_ms: 0,
            max_batch_tasks: 10_000,
            batch_step_ms: 0,
            faults: Vec::new(),
            fault_seed: 1,
            model: None,
            model_slots: default_model_slots(),
            model_queue: default_model_queue(),
            model_max_tokens: default_model_max_tokens(),
            upstream_openai: None,
            upstream_model: None,
            upstream_api_key: None,
            upstream_timeout_ms: default_upstream_timeout_ms(),
            embedding_model: None,
        }
    }
}

impl EmulatorConfig {
    pub(crate) fn chunk_delay(&self) -> Duration {
        Duration::from_millis(self.stream_chunk_delay_ms)
    }

    pub(crate) fn request_read_timeout(&self) -> Duration {
        Duration::from_millis(self.request_read_timeout_ms)
    }
}
