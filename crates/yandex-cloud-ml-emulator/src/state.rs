//! State shared by all services: operations, issued tokens, scripted replies and the request
//! journal.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use tonic::{Status, metadata::MetadataMap};
use yandex_cloud_ml_proto::{google::rpc, yandex::cloud::operation::Operation};

use crate::{
    config::{EmulatorConfig, OperationPolicy},
    engine::{Engine, Reply},
    faults::{FaultAction, FaultRule, Faults, OperationFault, StreamFault},
};

/// Faults that hit one call and must be applied by its handler.
#[derive(Debug, Default)]
pub(crate) struct Injected {
    pub stream: Option<StreamFault>,
    pub operation: Vec<OperationFault>,
    /// Error to return after the call has done its work.
    pub lose_response: Option<Status>,
}

impl Injected {
    /// The response, unless a fault loses it after processing.
    pub(crate) fn deliver<T>(self, response: T) -> Result<T, Status> {
        match self.lose_response {
            Some(status) => Err(status),
            None => Ok(response),
        }
    }
}

/// A scripted answer, chosen before the engine when its rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ScriptedAnswer {
    /// Answer with this text.
    Text {
        /// The answer.
        text: String,
    },
    /// Ask for these function calls.
    ToolCalls {
        /// `(name, arguments)` pairs; arguments must be JSON objects.
        calls: Vec<ScriptedCall>,
    },
    /// Answer with status CONTENT_FILTER and this text.
    ContentFilter {
        /// The replacement text.
        text: String,
    },
    /// Fail the call with this gRPC status.
    Error {
        /// Numeric gRPC code (e.g. 8 for RESOURCE_EXHAUSTED).
        code: i32,
        /// Status message.
        message: String,
    },
}

/// One scripted function call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedCall {
    /// Function name.
    pub name: String,
    /// Arguments (a JSON object).
    #[serde(default)]
    pub arguments: Value,
}

/// A rule mapping a prompt pattern to a scripted answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRule {
    /// Case-insensitive substring of the last user message; empty matches every request.
    #[serde(default)]
    pub prompt_contains: String,
    /// Only for this model name (the `<model>` part of the URI).
    #[serde(default)]
    pub model: Option<String>,
    /// What to answer.
    pub answer: ScriptedAnswer,
    /// How many requests the rule answers before it expires (unlimited if unset).
    #[serde(default)]
    pub times: Option<u32>,
}

/// One request the emulator received.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// Sequence number since start or the last reset.
    pub seq: u64,
    /// gRPC method, `package.Service/Method`.
    pub method: String,
    /// Request metadata; `authorization` and other credentials are redacted.
    pub metadata: BTreeMap<String, String>,
    /// The request message as protobuf JSON.
    pub request: Value,
}

struct RawEntry {
    seq: u64,
    method: &'static str,
    type_name: String,
    metadata: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A stored operation with its hidden outcome.
pub(crate) struct OpRecord {
    pub op: Operation,
    pub outcome: Option<Result<prost_types::Any, rpc::Status>>,
    pub polls: u32,
    pub policy: OperationPolicy,
}

impl OpRecord {
    /// Makes the outcome visible.
    pub(crate) fn finish(&mut self) {
        if self.op.done {
            return;
        }
        use yandex_cloud_ml_proto::yandex::cloud::operation::operation::Result as R;
        self.op.done = true;
        self.op.modified_at = Some(SystemTime::now().into());
        self.op.result = match self.outcome.take() {
            Some(Ok(any)) => Some(R::Response(any)),
            Some(Err(status)) => Some(R::Error(status)),
            None => {
                Some(R::Error(rpc::Status { code: 13, message: "operation lost its result".into(), details: vec![] }))
            }
        };
    }
}

/// Counters of what the emulator observed (not part of the cloud API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Calls received (every RPC, including rejected ones).
    pub requests: u64,
    /// Streams whose client went away before the last chunk; their generation stopped.
    pub streams_cancelled: u64,
    /// Streams ended with DEADLINE_EXCEEDED because the client's deadline passed.
    pub deadlines_exceeded: u64,
}

pub(crate) struct State {
    pub config: EmulatorConfig,
    pub stats: Mutex<Stats>,
    pub engine: Arc<dyn Engine>,
    pub advertised: String,
    operations: Mutex<HashMap<String, OpRecord>>,
    idempotency: Mutex<HashMap<String, String>>,
    pub policy: Mutex<OperationPolicy>,
    tokens: Mutex<HashMap<String, SystemTime>>,
    scripts: Mutex<Vec<ScriptRule>>,
    faults: Mutex<Faults>,
    journal: Mutex<(u64, VecDeque<RawEntry>)>,
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
        engine: Arc<dyn Engine>,
        advertised: String,
        scripts: Vec<ScriptRule>,
    ) -> State {
        State {
            policy: Mutex::new(config.operations),
            stats: Mutex::default(),
            faults: Mutex::new(Faults::new(config.fault_seed, config.faults.clone())),
            config,
            engine,
            advertised,
            operations: Mutex::default(),
            idempotency: Mutex::default(),
            tokens: Mutex::default(),
            scripts: Mutex::new(scripts),
            journal: Mutex::default(),
        }
    }

    // ---- operations ----

    /// Stores a new operation whose outcome becomes visible according to the current policy.
    /// With an idempotency key already seen, returns the earlier operation instead.
    pub(crate) fn create_operation(
        self: &Arc<Self>,
        description: &str,
        created_by: &str,
        idempotency_key: Option<&str>,
        outcome: Result<prost_types::Any, rpc::Status>,
        faults: Vec<OperationFault>,
    ) -> Operation {
        // Held until the new operation is registered, so concurrent retries of one logical
        // call never create two operations.
        let mut ids = lock(&self.idempotency);
        if let Some(key) = idempotency_key
            && let Some(existing) = ids.get(key).and_then(|id| lock(&self.operations).get(id).map(|r| r.op.clone()))
        {
            return existing;
        }
        let now = SystemTime::now();
        let id = new_id("d7e");
        let mut policy = *lock(&self.policy);
        let mut outcome = outcome;
        for fault in faults {
            match fault {
                OperationFault::Fail { code, message } => outcome = Err(rpc::Status { code, message, details: vec![] }),
                OperationFault::Slow { polls } => policy = OperationPolicy::AfterPolls(polls),
            }
        }
        let mut record = OpRecord {
            op: Operation {
                id: id.clone(),
                description: description.to_owned(),
                created_at: Some(now.into()),
                created_by: created_by.to_owned(),
                modified_at: Some(now.into()),
                done: false,
                metadata: None,
                result: None,
            },
            outcome: Some(outcome),
            polls: 0,
            policy,
        };
        if policy == OperationPolicy::Immediate {
            record.finish();
        }
        let op = record.op.clone();
        lock(&self.operations).insert(id.clone(), record);
        if let Some(key) = idempotency_key {
            ids.insert(key.to_owned(), id.clone());
        }
        drop(ids);
        if let OperationPolicy::AfterDelayMs(ms) = policy {
            let state = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                if let Some(r) = lock(&state.operations).get_mut(&id) {
                    r.finish();
                }
            });
        }
        op
    }

    /// `OperationService/Get`: counts the poll and finishes the operation when its policy says so.
    pub(crate) fn poll_operation(&self, id: &str) -> Result<Operation, Status> {
        let mut ops = lock(&self.operations);
        let record = ops.get_mut(id).ok_or_else(|| not_found(id))?;
        record.polls += 1;
        if let OperationPolicy::AfterPolls(n) = record.policy
            && record.polls >= n
        {
            record.finish();
        }
        Ok(record.op.clone())
    }

    /// `OperationService/Cancel`: a running operation ends with CANCELLED.
    pub(crate) fn cancel_operation(&self, id: &str) -> Result<Operation, Status> {
        let mut ops = lock(&self.operations);
        let record = ops.get_mut(id).ok_or_else(|| not_found(id))?;
        if !record.op.done {
            record.outcome =
                Some(Err(rpc::Status { code: 1, message: "operation was cancelled".into(), details: vec![] }));
            record.finish();
        }
        Ok(record.op.clone())
    }

    /// Finishes an operation now, optionally replacing its outcome with an error (control API).
    pub(crate) fn complete_operation(&self, id: &str, error: Option<rpc::Status>) -> Result<Operation, Status> {
        let mut ops = lock(&self.operations);
        let record = ops.get_mut(id).ok_or_else(|| not_found(id))?;
        if record.op.done {
            return Err(Status::failed_precondition(format!("operation {id} is already done")));
        }
        if let Some(e) = error {
            record.outcome = Some(Err(e));
        }
        record.finish();
        Ok(record.op.clone())
    }

    pub(crate) fn operation_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.operations).keys().cloned().collect();
        ids.sort();
        ids
    }

    // ---- tokens ----

    pub(crate) fn issue_token(&self) -> (String, SystemTime) {
        let token = format!("t1.emulator.{}", new_id("").repeat(2));
        let expires = SystemTime::now() + Duration::from_secs(self.config.token_lifetime_secs);
        lock(&self.tokens).insert(token.clone(), expires);
        (token, expires)
    }

    /// `Some(true)` for an unexpired issued token, `Some(false)` for an expired one, `None` if
    /// the emulator never issued it.
    pub(crate) fn token_valid(&self, token: &str) -> Option<bool> {
        lock(&self.tokens).get(token).map(|exp| SystemTime::now() < *exp)
    }

    /// Makes every issued token expired.
    pub(crate) fn expire_tokens(&self) {
        let past = SystemTime::now() - Duration::from_secs(1);
        lock(&self.tokens).values_mut().for_each(|exp| *exp = past);
    }

    pub(crate) fn revoke_token(&self, token: &str) -> bool {
        lock(&self.tokens).remove(token).is_some()
    }

    // ---- scripts ----

    /// The scripted answer for a request, consuming one use of the matching rule.
    pub(crate) fn scripted(&self, model: &str, prompt: &str) -> Option<ScriptedAnswer> {
        let mut rules = lock(&self.scripts);
        let prompt = prompt.to_lowercase();
        let index = rules.iter().position(|r| {
            r.model.as_deref().is_none_or(|m| m == model) && prompt.contains(&r.prompt_contains.to_lowercase())
        })?;
        let rule = &mut rules[index];
        let answer = rule.answer.clone();
        if let Some(times) = rule.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                rules.remove(index);
            }
        }
        Some(answer)
    }

    pub(crate) fn add_script(&self, rule: ScriptRule) {
        lock(&self.scripts).push(rule);
    }

    pub(crate) fn scripts(&self) -> Vec<ScriptRule> {
        lock(&self.scripts).clone()
    }

    // ---- faults ----

    pub(crate) fn add_fault(&self, rule: FaultRule) {
        lock(&self.faults).add(rule);
    }

    pub(crate) fn faults(&self) -> Vec<FaultRule> {
        lock(&self.faults).rules()
    }

    pub(crate) fn clear_faults(&self) {
        *lock(&self.faults) = Faults::new(self.config.fault_seed, Vec::new());
    }

    /// Applies the faults that hit this call: waits out added latency, fails the call, expires
    /// tokens, and returns what the handler itself must do (stream and operation faults).
    pub(crate) async fn inject(&self, method: &str) -> Result<Injected, Status> {
        let actions = lock(&self.faults).decide(method);
        let mut injected = Injected::default();
        let mut delay = Duration::ZERO;
        let mut failure = None;
        for action in actions {
            match action {
                FaultAction::Fail { code, message } => {
                    failure = Some(Status::new(tonic::Code::from_i32(code), message))
                }
                FaultAction::LoseResponse { code } => {
                    injected.lose_response =
                        Some(Status::new(tonic::Code::from_i32(code), "response lost by fault injection"))
                }
                FaultAction::Delay { ms } => delay += Duration::from_millis(ms),
                FaultAction::CutStream { after_chunks, code } => {
                    injected.stream = Some(StreamFault::Cut { after: after_chunks as usize, code })
                }
                FaultAction::StallStream { after_chunks } => {
                    injected.stream = Some(StreamFault::Stall { after: after_chunks as usize })
                }
                FaultAction::FailOperation { code, message } => {
                    injected.operation.push(OperationFault::Fail { code, message })
                }
                FaultAction::SlowOperation { polls } => injected.operation.push(OperationFault::Slow { polls }),
                FaultAction::ExpireTokens => self.expire_tokens(),
            }
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match failure {
            Some(status) => Err(status),
            None => Ok(injected),
        }
    }

    pub(crate) fn count(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut lock(&self.stats));
    }

    // ---- journal ----

    pub(crate) fn record<M: prost::Message + prost::Name>(
        &self,
        method: &'static str,
        metadata: &MetadataMap,
        request: &M,
    ) {
        self.count(|s| s.requests += 1);
        let capacity = self.config.journal_capacity;
        if capacity == 0 {
            return;
        }
        let metadata = redacted(metadata);
        let mut journal = lock(&self.journal);
        journal.0 += 1;
        let entry =
            RawEntry { seq: journal.0, method, type_name: M::full_name(), metadata, body: request.encode_to_vec() };
        if journal.1.len() >= capacity {
            journal.1.pop_front();
        }
        journal.1.push_back(entry);
    }

    /// The journal as protobuf JSON, oldest first.
    pub(crate) fn journal(&self) -> Vec<JournalEntry> {
        let journal = lock(&self.journal);
        journal
            .1
            .iter()
            .map(|e| JournalEntry {
                seq: e.seq,
                method: e.method.to_owned(),
                metadata: e.metadata.clone(),
                request: crate::reflect::to_json(&e.type_name, &e.body).unwrap_or(Value::Null),
            })
            .collect()
    }

    /// Forgets operations, tokens, scripts and the journal.
    pub(crate) fn reset(&self) {
        lock(&self.operations).clear();
        lock(&self.idempotency).clear();
        lock(&self.tokens).clear();
        lock(&self.scripts).clear();
        *lock(&self.journal) = Default::default();
        *lock(&self.policy) = self.config.operations;
        *lock(&self.stats) = Stats::default();
        *lock(&self.faults) = Faults::new(self.config.fault_seed, self.config.faults.clone());
    }

    /// When the deadline of a request passes (from its `grpc-timeout`), if it has one.
    pub(crate) fn deadline(metadata: &MetadataMap) -> Option<Instant> {
        let raw = metadata.get("grpc-timeout")?.to_str().ok()?;
        let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
        let n: u64 = digits.parse().ok()?;
        let d = match unit {
            "H" => Duration::from_secs(n * 3600),
            "M" => Duration::from_secs(n * 60),
            "S" => Duration::from_secs(n),
            "m" => Duration::from_millis(n),
            "u" => Duration::from_micros(n),
            "n" => Duration::from_nanos(n),
            _ => return None,
        };
        Some(Instant::now() + d)
    }
}

/// Converts a scripted answer into an engine reply, or the status to fail with.
pub(crate) fn scripted_reply(answer: ScriptedAnswer) -> Result<Reply, Status> {
    match answer {
        ScriptedAnswer::Text { text } => Ok(Reply::Text(text)),
        ScriptedAnswer::ContentFilter { text } => Ok(Reply::ContentFilter(text)),
        ScriptedAnswer::ToolCalls { calls } => {
            Ok(Reply::ToolCalls(calls.into_iter().map(|c| (c.name, c.arguments)).collect()))
        }
        ScriptedAnswer::Error { code, message } => Err(Status::new(tonic::Code::from_i32(code), message)),
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!("Operation {id} not found"))
}

/// Metadata with credentials replaced by `***` (the scheme is kept).
fn redacted(metadata: &MetadataMap) -> BTreeMap<String, String> {
    metadata
        .iter()
        .filter_map(|kv| match kv {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            }
            tonic::metadata::KeyAndValueRef::Binary(_, _) => None,
        })
        .map(|(k, v)| {
            if k == "authorization" {
                let scheme = v.split_whitespace().next().unwrap_or("").to_owned();
                (k, format!("{scheme} ***"))
            } else if k.contains("token") || k.contains("key") && k != "idempotency-key" {
                (k, "***".to_owned())
            } else {
                (k, v)
            }
        })
        .collect()
}
