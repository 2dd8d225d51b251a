//! # yandex-cloud-ml-emulator
//!
//! A local server that speaks the Yandex Cloud AI Studio text-generation gRPC API, so the
//! SDK (and the official Python SDK) can be developed and tested offline. It is an
//! **emulator**: answers come from a deterministic built-in model ([`SyntheticEngine`]),
//! not from YandexGPT. See `DIFFERENCES.md` in this crate for what differs from the cloud.
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
//! `TextGenerationAsyncService`, `TokenizerService`, and the standard `grpc.health.v1.Health`.
//!
//! Test controls (scripted replies, operations on command, request journal, reset, stats) are
//! available in-process through [`EmulatorHandle::control`] and over HTTP/JSON on a separate
//! port through [`EmulatorHandle::serve_control`]:
//!
//! | request | effect |
//! |---|---|
//! | `GET /journal` | received requests, credentials redacted |
//! | `GET /stats` | cancelled streams, exceeded deadlines |
//! | `GET /scripts`, `POST /scripts` (a [`ScriptRule`]) | scripted replies |
//! | `GET /operations` | operation ids |
//! | `POST /operations/<id>/complete` | finish with the prepared result |
//! | `POST /operations/<id>/fail` (`{"code": 13, "message": "..."}`) | finish with an error |
//! | `PUT /operation-policy` (e.g. `{"mode": "after_polls", "value": 2}`) | when new operations finish |
//! | `GET /faults`, `POST /faults` (a [`FaultRule`]), `DELETE /faults` | fault injection |
//! | `POST /tokens/expire` | expire every issued IAM token |
//! | `POST /reset` | forget operations, tokens, scripts, journal, stats, runtime faults |

#![warn(missing_docs)]

mod auth;
pub mod cli;
mod config;
mod control_http;
mod engine;
mod faults;
#[cfg(test)]
mod property_tests;
mod reflect;
pub mod replay;
mod services;
mod state;
mod validate;

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;

pub use config::{AuthMode, EmulatorConfig, OperationPolicy};
pub use engine::{Engine, Reply, synthetic::SYNTHETIC_MODEL_VERSION, synthetic::SyntheticEngine};
pub use faults::{FaultAction, FaultRule};
use state::State;
pub use state::{JournalEntry, ScriptRule, ScriptedAnswer, ScriptedCall, Stats};

/// What the emulator says about itself at startup.
pub const BANNER: &str = "ycml-emulator: a local EMULATOR of the Yandex Cloud AI Studio text-generation API \
(not the cloud; answers come from a deterministic built-in model)";

/// Entry point: `Emulator::builder()…start(addr)`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Starts configuring an emulator.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }
}

/// Configures and starts an emulator.
#[derive(Default)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
    engine: Option<Arc<dyn Engine>>,
    scripts: Vec<ScriptRule>,
}

impl std::fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorBuilder").field("config", &self.config).finish_non_exhaustive()
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
    pub fn token_lifetime(mut self, lifetime: std::time::Duration) -> Self {
        self.config.token_lifetime_secs = lifetime.as_secs().max(1);
        self
    }

    /// Pause between streamed chunks.
    pub fn stream_chunk_delay(mut self, delay: std::time::Duration) -> Self {
        self.config.stream_chunk_delay_ms = delay.as_millis() as u64;
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

    /// Binds `addr` (use port 0 for a free port) and serves in the background until the
    /// handle is shut down or dropped.
    pub async fn start(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<EmulatorHandle> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        // A wildcard bind (0.0.0.0, ::) is reachable on loopback; advertise that in discovery.
        let reachable = if local.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
        } else {
            local
        };
        let advertised = self.config.advertised_address.clone().unwrap_or_else(|| reachable.to_string());
        let max_streams = self.config.max_concurrent_streams;
        let window = self.config.connection_window_bytes;
        let engine = self.engine.unwrap_or_else(|| Arc::new(SyntheticEngine));
        let state = Arc::new(State::new(self.config, engine, advertised, self.scripts));

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
        let router = tonic::transport::Server::builder()
            .max_concurrent_streams(max_streams)
            .initial_connection_window_size(window)
            .add_service(health)
            .add_service(services::endpoint::Endpoints::server(state.clone()))
            .add_service(services::iam::Iam::server(state.clone()))
            .add_service(services::operation::Operations::server(state.clone()))
            .add_service(services::text_generation::TextGeneration::sync_server(state.clone()))
            .add_service(services::text_generation::TextGeneration::async_server(state.clone()))
            .add_service(services::text_generation::TextGeneration::tokenizer_server(state.clone()));
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Small streamed chunks must not wait for delayed ACKs (Nagle's algorithm).
            let incoming = futures_util::StreamExt::map(TcpListenerStream::new(listener), |conn| {
                if let Ok(stream) = &conn {
                    let _ = stream.set_nodelay(true);
                }
                conn
            });
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, async { signal.await.unwrap_or(()) }).await {
                tracing::error!(error = %e, "emulator server stopped with an error");
            }
        });
        tracing::info!(address = %local, "{BANNER}");
        Ok(EmulatorHandle { address: reachable, state, shutdown: Some(shutdown), task: Some(task), control_task: None })
    }
}

/// A running emulator. Dropping it stops the server.
pub struct EmulatorHandle {
    address: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    control_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle").field("address", &self.address).finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The bound socket address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `host:port` to give to an SDK (`SdkBuilder::emulator`, `YCML_EMULATOR_HOST`).
    pub fn endpoint(&self) -> String {
        self.address.to_string()
    }

    /// Test controls: scripted replies, operations, journal, reset.
    pub fn control(&self) -> Control {
        Control { state: self.state.clone() }
    }

    /// Serves the HTTP/JSON control API on `addr` (a separate port; see the `control_http`
    /// endpoints in the crate docs) and returns the bound address.
    pub async fn serve_control(&mut self, addr: &str) -> std::io::Result<SocketAddr> {
        let (bound, task) = control_http::start(addr, self.control()).await?;
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

/// The emulator's control surface for tests (not part of the cloud API).
#[derive(Clone)]
pub struct Control {
    state: Arc<State>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl Control {
    /// Requests received so far (oldest first), credentials redacted.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.state.journal()
    }

    /// Adds a scripted reply.
    pub fn add_script(&self, rule: ScriptRule) {
        self.state.add_script(rule);
    }

    /// The active scripted replies.
    pub fn scripts(&self) -> Vec<ScriptRule> {
        self.state.scripts()
    }

    /// Ids of all stored operations.
    pub fn operations(&self) -> Vec<String> {
        self.state.operation_ids()
    }

    /// Finishes a running operation with its prepared result.
    pub fn complete_operation(&self, id: &str) -> Result<(), tonic::Status> {
        self.state.complete_operation(id, None).map(|_| ())
    }

    /// Finishes a running operation with an error.
    pub fn fail_operation(&self, id: &str, code: tonic::Code, message: &str) -> Result<(), tonic::Status> {
        let error = yandex_cloud_ml_proto::google::rpc::Status {
            code: code as i32,
            message: message.to_owned(),
            details: vec![],
        };
        self.state.complete_operation(id, Some(error)).map(|_| ())
    }

    /// Changes when new operations finish.
    pub fn set_operation_policy(&self, policy: OperationPolicy) {
        *self.state.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Adds a fault injection rule at run time.
    pub fn add_fault(&self, rule: FaultRule) {
        self.state.add_fault(rule);
    }

    /// The active fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.state.faults()
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// Expires every IAM token issued so far (clients must get new ones).
    pub fn expire_tokens(&self) {
        self.state.expire_tokens();
    }

    /// What the emulator observed: cancelled streams, exceeded deadlines.
    pub fn stats(&self) -> Stats {
        *self.state.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets operations, issued tokens, scripted replies, the journal and runtime fault rules.
    pub fn reset(&self) {
        self.state.reset();
    }
}
