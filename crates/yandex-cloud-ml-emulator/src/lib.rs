//! # yandex-cloud-ml-emulator
//!
//! A local server that speaks the Yandex Cloud AI Studio text-generation gRPC API, so the
//! SDK (and the official Python SDK) can be developed and tested offline. It is an
//! **emulator**: answers come from a deterministic built-in model ([`SyntheticEngine`]) or,
//! with the `local-model` feature, from a small real model ([`EmulatorBuilder::model`]), never
//! from YandexGPT. See `DIFFERENCES.md` in this crate for what differs from the cloud.
//!
//! Start it in-process on a free port:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let emulator = yandex_cloud_ml_emulator::Emulator::builder().start("127.0.0.1:0").await?;
//! println!("serving on {}", emulator.endpoint());
//! # Ok(()) }
//! ```
//!
//! Served: `ApiEndpointService` (every service id points at the emulator),
//! `IamTokenService`, `OperationService`, `TextGenerationService` (streaming and not),
//! `TextGenerationAsyncService`, `TokenizerService`, `EmbeddingsService`, `DatasetService` (with the object storage
//! its presigned upload and download URLs point to, over HTTP/1.1 on the same port),
//! `TuningService`, `TextGenerationBatchService`, `BatchInferenceService`, and the standard
//! `grpc.health.v1.Health`.
//!
//! The services are also listed by gRPC server reflection, so grpcurl, Postman or evans can
//! call them without `.proto` files.
//!
//! Test controls (scripted replies, operations on command, request journal, reset, stats) are
//! available in-process through [`EmulatorHandle::control`] and over HTTP/JSON on a separate
//! port through [`EmulatorHandle::serve_control`]. That port listens on loopback only, and
//! every request needs `authorization: Bearer <token>` ([`EmulatorHandle::control_token`],
//! printed at start) and, to change state, `content-type: application/json`:
//!
//! | request | effect |
//! |---|---|
//! | `GET /journal` | received requests, credentials fingerprinted |
//! | `GET /stats` | cancelled streams, exceeded deadlines |
//! | `GET /scripts`, `POST /scripts` (a [`ScriptRule`]) | scripted replies |
//! | `GET /operations` | operation ids |
//! | `POST /operations/<id>/complete` | finish with the prepared result |
//! | `POST /operations/<id>/fail` (`{"code": 13, "message": "..."}`) | finish with an error |
//! | `PUT /operation-policy` (e.g. `{"mode": "after_polls", "value": 2}`) | when new operations finish |
//! | `GET /faults`, `POST /faults` (a [`FaultRule`]), `DELETE /faults` | fault injection |
//! | `POST /tokens/expire` | expire every issued IAM token |
//! | `POST /reset` | forget operations, tokens, scripts, journal, stats, runtime faults |

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod admission;
mod auth;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
mod config;
mod control;
mod durable;
mod engine;
mod faults;
mod kept;
#[cfg(test)]
mod property_tests;
mod redact;
mod reflect;
pub mod replay;
mod rows;
mod server;
mod services;
mod state;
mod storage;
mod text;
mod validate;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use config::{AuthMode, ControlToken, EmulatorConfig, OperationPolicy, UpstreamKey};
pub use control::Control;
#[cfg(feature = "local-model")]
#[cfg_attr(docsrs, doc(cfg(feature = "local-model")))]
pub use engine::local::{LocalEngine, LocalOptions};
pub use engine::scripted::{MAX_SCRIPT_BYTES, MAX_SCRIPTS};
pub use engine::{
    EndReason, Ending, Engine, ModelRef, Reply, TokenStream, Tokenizer,
    scripted::{ScriptRule, ScriptedAnswer, ScriptedCall},
    synthetic::{SYNTHETIC_MODEL_VERSION, SyntheticEngine},
    tokenizer::SyntheticTokenizer,
    upstream::{DEFAULT_UPSTREAM_TIMEOUT, UpstreamEngine},
};
pub use faults::{FaultAction, FaultRule, MAX_FAULT_RULES};
use state::State;
pub use state::{Stats, journal::JournalEntry};

macro_rules! about {
    () => {
        "a local EMULATOR of the Yandex Cloud AI Studio API (not the cloud)"
    };
}

/// What the emulator says about itself at startup (followed by where its answers come from).
pub const BANNER: &str = concat!("ycml-emulator: ", about!());

/// What the emulator is, for banners that name the program themselves.
pub const ABOUT: &str = about!();

/// Loads the configured GGUF model off the reactor; a bad file is an `InvalidInput` error that
/// names it and the problem.
#[cfg(feature = "local-model")]
async fn load_model(path: std::path::PathBuf, config: &EmulatorConfig) -> std::io::Result<Arc<dyn Engine>> {
    let options =
        LocalOptions { slots: config.model_slots, queue: config.model_queue, max_tokens: config.model_max_tokens };
    let started = std::time::Instant::now();
    let engine = tokio::task::spawn_blocking(move || LocalEngine::load(&path, options))
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tracing::info!(model = engine.model_version(), elapsed = ?started.elapsed(), "local model loaded");
    Ok(Arc::new(engine))
}

/// Loads the configured sentence-embedding model off the reactor; a bad directory is an
/// `InvalidInput` error that names the file and the problem.
#[cfg(feature = "local-model")]
async fn load_embedder(dir: std::path::PathBuf) -> std::io::Result<Arc<dyn engine::embedding::Embedder>> {
    let started = std::time::Instant::now();
    let embedder = tokio::task::spawn_blocking(move || engine::local::embedding::SentenceEmbedder::load(&dir))
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tracing::info!(model = engine::embedding::Embedder::model_version(&embedder), elapsed = ?started.elapsed(), "embedding model loaded");
    Ok(Arc::new(embedder))
}

/// Why a model cannot be loaded by an emulator built without the `local-model` feature.
#[cfg(not(feature = "local-model"))]
fn needs_local_model(path: &std::path::Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "cannot load {}: this emulator was built without the `local-model` feature \
             (cargo build -p yandex-cloud-ml-emulator --features local-model)",
            path.display()
        ),
    )
}

#[cfg(not(feature = "local-model"))]
async fn load_embedder(dir: std::path::PathBuf) -> std::io::Result<Arc<dyn engine::embedding::Embedder>> {
    Err(needs_local_model(&dir))
}

#[cfg(not(feature = "local-model"))]
async fn load_model(path: std::path::PathBuf, _config: &EmulatorConfig) -> std::io::Result<Arc<dyn Engine>> {
    Err(needs_local_model(&path))
}

/// Entry point: `Emulator::builder()…start(addr)`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Starts configuring an emulator.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }
}

/// A certificate and key (PEM) to serve TLS with.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM.
    pub certificate_pem: String,
    /// The private key, PEM.
    pub private_key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("private_key_pem", &"***").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A new self-signed certificate for `localhost`, `127.0.0.1` and `::1`, to serve TLS
    /// locally; clients trust its [`certificate_pem`](Self::certificate_pem).
    pub fn localhost() -> Result<TlsIdentity, String> {
        TlsIdentity::self_signed(&["localhost", "127.0.0.1", "::1"])
    }

    /// A new self-signed certificate for exactly these host names and IP addresses.
    pub fn self_signed(names: &[&str]) -> Result<TlsIdentity, String> {
        let subjects: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let certified =
            rcgen::generate_simple_self_signed(subjects).map_err(|e| format!("cannot make a certificate: {e}"))?;
        Ok(TlsIdentity {
            certificate_pem: certified.cert.pem(),
            private_key_pem: certified.signing_key.serialize_pem(),
        })
    }
}

/// Configures and starts an emulator.
#[derive(Default)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
    engine: Option<Arc<dyn Engine>>,
    scripts: Vec<ScriptRule>,
    tls: Option<TlsIdentity>,
}

impl std::fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorBuilder").field("config", &self.config).field("tls", &self.tls).finish_non_exhaustive()
    }
}

impl EmulatorBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Authorization checks (default [`AuthMode::AcceptAny`]).
    pub fn auth(mut self, auth: AuthMode) -> Self {
        self.config.auth = auth;
        self
    }

    /// Accepts only API key `key` (and tokens the emulator issues).
    pub fn require_api_key(self, key: impl Into<String>) -> Self {
        self.auth(AuthMode::Require { api_keys: vec![key.into()], iam_tokens: vec![], oauth_tokens: vec![] })
    }

    /// Restricts model URIs to this folder (may be called several times).
    pub fn folder(mut self, folder_id: impl Into<String>) -> Self {
        self.config.folders.push(folder_id.into());
        self
    }

    /// When deferred operations finish (default: on the 2nd poll).
    pub fn operations(mut self, policy: OperationPolicy) -> Self {
        self.config.operations = policy;
        self
    }

    /// Lifetime of issued IAM tokens.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.token_lifetime_secs = lifetime.as_secs().max(1);
        self
    }

    /// Pause between streamed chunks.
    pub fn stream_chunk_delay(mut self, delay: Duration) -> Self {
        self.config.stream_chunk_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Answers with a real model: any llama-architecture GGUF file (feature `local-model`;
    /// without it, `start` says so). Loading is checked at `start`.
    pub fn model(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.model = Some(path.into());
        self
    }

    /// Replaces the built-in deterministic model.
    pub fn engine(mut self, engine: impl Engine) -> Self {
        self.engine = Some(Arc::new(engine));
        self
    }

    /// Adds a fault injection rule.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.config.faults.push(rule);
        self
    }

    /// Seeds the fault generator (same seed and call sequence, same faults).
    pub fn fault_seed(mut self, seed: u64) -> Self {
        self.config.fault_seed = seed;
        self
    }

    /// Adds a scripted reply.
    pub fn script(mut self, rule: ScriptRule) -> Self {
        self.scripts.push(rule);
        self
    }

    /// Serves TLS with this certificate (see [`TlsIdentity::localhost`]).
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// Binds `addr` (use port 0 for a free port) and serves in the background until the
    /// handle is shut down or dropped.
    pub async fn start(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<EmulatorHandle> {
        let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
        for rule in &self.config.faults {
            rule.check().map_err(|e| invalid(format!("fault rule: {e}")))?;
        }
        if self.config.faults.len() > MAX_FAULT_RULES {
            return Err(invalid(format!("{} fault rules given; at most {MAX_FAULT_RULES}", self.config.faults.len())));
        }
        let mut config = self.config;
        let engine = match (self.engine, config.model.clone(), config.upstream_openai.clone()) {
            (Some(engine), _, _) => engine,
            (None, Some(_), Some(_)) => {
                return Err(invalid("give either a local model or an upstream server, not both".into()));
            }
            (None, Some(path), None) => load_model(path, &config).await?,
            (None, None, Some(url)) => {
                let timeout = Duration::from_millis(config.upstream_timeout_ms);
                let key = config.upstream_api_key.as_ref().map(|k| k.0.clone());
                Arc::new(
                    UpstreamEngine::new(&url, config.upstream_model.clone(), timeout).map_err(invalid)?.api_key(key),
                )
            }
            (None, None, None) => Arc::new(SyntheticEngine),
        };
        if let Some(window) = engine.context_window() {
            config.context_window = config.context_window.min(window);
        }
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        // A wildcard bind (0.0.0.0, ::) is reachable on loopback; advertise that in discovery.
        let reachable = if local.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
        } else {
            local
        };
        let advertised = config.advertised_address.clone().unwrap_or_else(|| reachable.to_string());
        let limits = server::Limits {
            max_connections: server::effective_max_connections(config.max_connections),
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
        };
        let control_token = match config.control_token.clone() {
            Some(t) => {
                control::check_token(&t.0).map_err(invalid)?;
                t.0
            }
            None => control::new_token()?,
        };
        let tuning = state::tuning::Tuning::open(
            config.data_dir.as_deref(),
            config.max_tuning_tasks,
            config.max_tuned_model_bytes,
        )?;
        let engine = Arc::new(engine::tuned::Tuned::new(engine, tuning.models.clone()));
        let scripted = engine::scripted::Scripted::new(engine, self.scripts)
            .map_err(|e| invalid(format!("scripted reply: {e}")))?;
        let embedder: Arc<dyn engine::embedding::Embedder> = match config.embedding_model.clone() {
            Some(dir) => load_embedder(dir).await?,
            None => Arc::new(engine::embedding::HashedEmbedder),
        };
        let state = Arc::new(State::new(config, scripted, embedder, advertised, self.tls.is_some(), tuning)?);

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(yandex_cloud_ml_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| invalid(format!("reflection: {e}")))?;
        let mut builder = tonic::transport::Server::builder()
            .max_concurrent_streams(state.config.max_concurrent_streams)
            .initial_connection_window_size(state.config.connection_window_bytes)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)));
        if let Some(identity) = &self.tls {
            let tls = tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(&identity.certificate_pem, &identity.private_key_pem))
                .timeout(limits.handshake_timeout);
            builder = builder.tls_config(tls).map_err(|e| invalid(format!("TLS certificate or key: {e}")))?;
        }
        let mut routes = tonic::service::Routes::builder();
        routes
            .add_service(health)
            .add_service(reflection)
            .add_service(services::endpoint::Endpoints::server(state.clone()))
            .add_service(services::iam::Iam::server(state.clone()))
            .add_service(services::operation::Operations::server(
                state.clone(),
                vec![
                    Arc::new(services::tuning::TuningOperations),
                    Arc::new(services::batch::BatchOperations),
                    Arc::new(services::dataset::ValidationOperations),
                ],
            ))
            .add_service(services::text_generation::TextGeneration::sync_server(state.clone()))
            .add_service(services::text_generation::TextGeneration::async_server(state.clone()))
            .add_service(services::text_generation::TextGeneration::tokenizer_server(state.clone()))
            .add_service(services::embeddings::Embeddings::server(state.clone()))
            .add_service(services::dataset::Datasets::server(state.clone()))
            .add_service(services::tuning::Tuning::server(state.clone()))
            .add_service(services::batch::Batch::completion_server(state.clone()))
            .add_service(services::batch::Batch::inference_server(state.clone()));
        let mut routes = routes.routes();
        let admission = admission::AdmissionLayer::new(state.clone());
        // The OpenAI-compatible API sends its calls through admission to the gRPC services.
        let chat = services::chat::routes(state.clone(), tower_layer::Layer::layer(&admission, routes.clone()));
        // Dataset files go over HTTP/1.1 to presigned URLs on the same port, like S3 next to
        // the API in the cloud.
        let storage = services::storage::routes(state.clone());
        *routes.axum_router_mut() = std::mem::take(routes.axum_router_mut()).merge(storage).merge(chat);
        let router = builder.accept_http1(true).layer(admission).add_routes(routes);
        let (shutdown, signal) = oneshot::channel::<()>();
        let incoming = server::incoming(listener, limits);
        let task = tokio::spawn(async move {
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, async { signal.await.unwrap_or(()) }).await {
                tracing::error!(error = %e, "emulator server stopped with an error");
            }
        });
        tracing::info!(address = %local, tls = self.tls.is_some(), model = state.engine.model_version(), "{BANNER}");
        Ok(EmulatorHandle {
            address: reachable,
            bound: local,
            tls: self.tls.is_some(),
            state,
            control_token,
            shutdown: Some(shutdown),
            task: Some(task),
            control_task: None,
        })
    }
}

/// A running emulator. Dropping it stops the server.
pub struct EmulatorHandle {
    address: SocketAddr,
    bound: SocketAddr,
    tls: bool,
    state: Arc<State>,
    control_token: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    control_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle").field("address", &self.address).field("tls", &self.tls).finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The socket address clients reach the emulator at (loopback for a wildcard bind).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address the listener is bound to (may be a wildcard such as `0.0.0.0`).
    pub fn bound_address(&self) -> SocketAddr {
        self.bound
    }

    /// `host:port` to give to an SDK (`SdkBuilder::emulator`, `YCML_EMULATOR_HOST`).
    pub fn endpoint(&self) -> String {
        self.address.to_string()
    }

    /// Whether the API is served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Test controls: scripted replies, operations, journal, reset.
    pub fn control(&self) -> Control {
        Control { state: self.state.clone() }
    }

    /// The bearer token the HTTP control API requires.
    pub fn control_token(&self) -> &str {
        &self.control_token
    }

    /// Serves the HTTP/JSON control API on `addr` (a separate port, loopback unless the
    /// configuration allows remote control; see the crate docs) and returns the bound address.
    pub async fn serve_control(&mut self, addr: &str) -> std::io::Result<SocketAddr> {
        let allow_remote = self.state.config.control_allow_remote;
        let (bound, task) = control::start(addr, self.control(), self.control_token.clone(), allow_remote).await?;
        if let Some(old) = self.control_task.replace(task) {
            old.abort();
        }
        Ok(bound)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(t) = self.control_task.take() {
            t.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(t) = self.control_task.take() {
            t.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
