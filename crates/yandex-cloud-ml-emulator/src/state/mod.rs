//! State shared by every service, one store per concern: operations, issued tokens, the
//! request journal, fault rules, scripts (inside the engine) and counters. Every store is
//! bounded by limits from the configuration.

pub(crate) mod batch;
pub(crate) mod datasets;
pub(crate) mod journal;
pub(crate) mod operations;
pub(crate) mod paging;
pub(crate) mod tasks;
pub(crate) mod tokens;
pub(crate) mod tuning;

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde::Serialize;

use crate::{config::EmulatorConfig, engine::scripted::Scripted, faults::Faults};

/// Counters of what the emulator observed (not part of the cloud API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Calls received (every RPC, including rejected ones).
    pub requests: u64,
    /// Streams whose client went away before the last chunk; their generation stopped.
    pub streams_cancelled: u64,
    /// Streams ended with DEADLINE_EXCEEDED because the client's deadline passed.
    pub deadlines_exceeded: u64,
    /// Generations holding the local model right now (always 0 with the built-in model).
    pub model_generations_running: u64,
    /// Tokens the local model generated since start.
    pub model_tokens_generated: u64,
}

pub(crate) struct State {
    pub config: EmulatorConfig,
    /// The model, with scripted replies in front of it.
    pub engine: Arc<Scripted>,
    /// The embeddings model (the built-in hashed one unless a real model was loaded).
    pub embedder: Arc<dyn crate::engine::embedding::Embedder>,
    pub advertised: String,
    /// Whether the API port speaks TLS (storage URLs then start with `https://`).
    pub tls: bool,
    pub operations: Arc<operations::Operations>,
    pub datasets: datasets::Datasets,
    pub tuning: tuning::Tuning,
    pub batch: batch::Batches,
    pub tokens: tokens::Tokens,
    pub journal: journal::Journal,
    /// Turns of the embeddings computed at once (one per core).
    pub embedding_turns: tokio::sync::Semaphore,
    /// Turns of the dataset validations that may run at once.
    pub validations: tokio::sync::Semaphore,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lowercase alphanumeric id like the cloud's (`d7qqr3frkl81js0udlr9`).
pub(crate) fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = prefix.to_owned();
    while id.len() < 20 {
        id.push(ALPHABET[fastrand::usize(..ALPHABET.len())] as char);
    }
    id
}

impl State {
    pub(crate) fn new(
        config: EmulatorConfig,
        engine: Scripted,
        embedder: Arc<dyn crate::engine::embedding::Embedder>,
        advertised: String,
        tls: bool,
        tuning: tuning::Tuning,
    ) -> std::io::Result<State> {
        Ok(State {
            engine: Arc::new(engine),
            embedding_turns: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from)),
            embedder,
            advertised,
            tls,
            datasets: datasets::Datasets::open(
                config.data_dir.as_deref(),
                config.max_datasets,
                config.max_stored_bytes,
            )?,
            tuning,
            batch: batch::Batches::open(config.data_dir.as_deref(), config.max_batch_tasks)?,
            validations: tokio::sync::Semaphore::new(config.max_concurrent_validations.max(1)),
            operations: operations::Operations::new(
                operations::Limits { max: config.max_operations, ttl: Duration::from_secs(config.operation_ttl_secs) },
                config.operations,
            ),
            tokens: tokens::Tokens::new(Duration::from_secs(config.token_lifetime_secs), config.max_issued_tokens),
            journal: journal::Journal::new(journal::Limits {
                entries: config.journal_capacity,
                bytes: config.journal_bytes,
                body_bytes: config.journal_body_bytes,
            }),
            faults: Mutex::new(Faults::new(config.fault_seed, config.faults.clone())),
            stats: Mutex::default(),
            config,
        })
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn reset_faults(&self, keep_configured: bool) {
        let rules = if keep_configured { self.config.faults.clone() } else { Vec::new() };
        *lock(&self.faults) = Faults::new(self.config.fault_seed, rules);
    }

    pub(crate) fn count(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut lock(&self.stats));
    }

    pub(crate) fn stats(&self) -> Stats {
        use crate::engine::Engine;
        Stats {
            model_generations_running: self.engine.generations_running() as u64,
            model_tokens_generated: self.engine.tokens_generated(),
            ..*lock(&self.stats)
        }
    }

    /// Forgets operations, tokens, scripts, the journal, counters, runtime fault rules,
    /// datasets and tuning (in the data directory too).
    pub(crate) fn reset(&self) {
        self.operations.reset();
        self.batch.clear();
        self.datasets.clear();
        self.tuning.clear();
        self.tokens.clear();
        self.engine.clear();
        self.journal.clear();
        *lock(&self.stats) = Stats::default();
        self.reset_faults(true);
    }
}
