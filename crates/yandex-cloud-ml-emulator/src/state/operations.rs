//! Long-running operations: created by deferred completions (and, later, datasets, tuning and
//! batch), polled and cancelled through `OperationService`. The store is bounded: finished
//! operations are evicted after a time to live and, beyond a count, oldest first.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};

use tonic::Status;
use yandex_cloud_ml_proto::{
    google::rpc,
    yandex::cloud::operation::{Operation, operation::Result as OpResult},
};

use crate::{config::OperationPolicy, faults::OperationFault};

/// What an operation ends with.
pub(crate) type Outcome = Result<prost_types::Any, rpc::Status>;

/// Limits of the store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Operations kept at most (running ones are never evicted).
    pub max: usize,
    /// How long a finished operation stays visible.
    pub ttl: Duration,
}

struct Record {
    op: Operation,
    /// The result, once the work is done (hidden until the policy lets the operation finish).
    outcome: Option<Outcome>,
    /// Forced by an injected fault, replacing whatever the work produces.
    forced: Option<rpc::Status>,
    polls: u32,
    policy: OperationPolicy,
    /// Whether the policy allows finishing (the outcome must also be there).
    released: bool,
    /// Stops the work when the operation is cancelled.
    work: Option<tokio::task::AbortHandle>,
}

impl Record {
    /// Finishes the operation if both its outcome and its policy allow.
    fn try_finish(&mut self) -> bool {
        if self.op.done || !self.released {
            return false;
        }
        let outcome = match (self.forced.take(), self.outcome.take()) {
            (Some(error), _) => Err(error),
            (None, Some(outcome)) => outcome,
            (None, None) => return false,
        };
        self.op.done = true;
        self.op.modified_at = Some(SystemTime::now().into());
        self.op.result = Some(match outcome {
            Ok(any) => OpResult::Response(any),
            Err(status) => OpResult::Error(status),
        });
        if let Some(work) = self.work.take() {
            work.abort();
        }
        true
    }
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Record>,
    idempotency: HashMap<String, String>,
    /// Finished operations in finishing order, for eviction.
    finished: VecDeque<(Instant, String)>,
}

impl Inner {
    fn finished_now(&mut self, id: &str) {
        self.finished.push_back((Instant::now(), id.to_owned()));
    }
}

/// What a new operation is.
pub(crate) struct NewOperation<'a> {
    /// Start of the id: the cloud's ids show the service (`d7e` completions, `fds` datasets,
    /// `ftn` tuning, `fbi` batch).
    pub prefix: &'a str,
    pub description: &'a str,
    pub created_by: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub metadata: Option<prost_types::Any>,
    pub faults: &'a [OperationFault],
}

/// The operation store.
pub(crate) struct Operations {
    inner: Mutex<Inner>,
    /// Woken whenever an operation's work produced its outcome.
    outcomes: tokio::sync::Notify,
    limits: Limits,
    default_policy: OperationPolicy,
    policy: Mutex<OperationPolicy>,
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!("Operation {id} not found"))
}

impl Operations {
    pub(crate) fn new(limits: Limits, policy: OperationPolicy) -> Arc<Operations> {
        Arc::new(Operations {
            inner: Mutex::default(),
            outcomes: tokio::sync::Notify::new(),
            limits,
            default_policy: policy,
            policy: Mutex::new(policy),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes when new operations finish.
    pub(crate) fn set_policy(&self, policy: OperationPolicy) {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Stores a new, running operation. With an idempotency key already seen, returns the
    /// earlier operation and `false` (the caller must not start the work again).
    pub(crate) fn create(self: &Arc<Self>, new: NewOperation<'_>) -> Result<(Operation, bool), Status> {
        let mut inner = self.lock();
        if let Some(key) = new.idempotency_key
            && let Some(existing) = inner.idempotency.get(key).and_then(|id| inner.records.get(id))
        {
            return Ok((existing.op.clone(), false));
        }
        self.evict(&mut inner);
        if inner.records.len() >= self.limits.max {
            return Err(Status::resource_exhausted(format!(
                "too many operations in progress (limit {}); wait for some to finish",
                self.limits.max
            )));
        }
        let mut policy = *self.policy.lock().unwrap_or_else(|e| e.into_inner());
        let mut forced = None;
        for fault in new.faults {
            match fault {
                OperationFault::Fail { code, message } => {
                    forced = Some(rpc::Status { code: *code, message: message.clone(), details: vec![] })
                }
                OperationFault::Slow { polls } => policy = OperationPolicy::AfterPolls(*polls),
            }
        }
        let now = SystemTime::now();
        let id = super::new_id(new.prefix);
        let op = Operation {
            id: id.clone(),
            description: new.description.to_owned(),
            created_at: Some(now.into()),
            created_by: new.created_by.to_owned(),
            modified_at: Some(now.into()),
            done: false,
            metadata: new.metadata,
            result: None,
        };
        let record = Record {
            op: op.clone(),
            outcome: None,
            forced,
            polls: 0,
            policy,
            released: policy == OperationPolicy::Immediate,
            work: None,
        };
        inner.records.insert(id.clone(), record);
        if let Some(key) = new.idempotency_key {
            inner.idempotency.insert(key.to_owned(), id.clone());
        }
        drop(inner);
        if let OperationPolicy::AfterDelayMs(ms) = policy {
            let store = Arc::clone(self);
            let id = id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                store.release(&id);
            });
        }
        Ok((op, true))
    }

    /// Drops finished operations past their time to live, and the oldest finished ones while
    /// the store is full.
    fn evict(&self, inner: &mut Inner) {
        while let Some((at, id)) = inner.finished.front().cloned() {
            let expired = at.elapsed() >= self.limits.ttl;
            if !expired && inner.records.len() < self.limits.max {
                break;
            }
            inner.finished.pop_front();
            inner.records.remove(&id);
        }
        if inner.idempotency.len() > inner.records.len() * 2 + 16 {
            let records = &inner.records;
            inner.idempotency.retain(|_, id| records.contains_key(id));
        }
    }

    /// Registers the task doing an operation's work, so cancelling stops it.
    pub(crate) fn attach_work(&self, id: &str, work: tokio::task::AbortHandle) {
        let mut inner = self.lock();
        match inner.records.get_mut(id) {
            Some(r) if !r.op.done => r.work = Some(work),
            _ => work.abort(),
        }
    }

    /// The work finished with `outcome`; the operation ends now or when its policy allows.
    pub(crate) fn set_outcome(&self, id: &str, outcome: Outcome) {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else { return };
        if record.op.done {
            return;
        }
        record.work = None;
        record.outcome = Some(outcome);
        if record.try_finish() {
            inner.finished_now(id);
        }
        drop(inner);
        self.outcomes.notify_waiters();
    }

    fn release(&self, id: &str) {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else { return };
        record.released = true;
        if record.try_finish() {
            inner.finished_now(id);
        }
    }

    /// `OperationService/Get`: counts the poll and releases the operation when its policy says so.
    pub(crate) fn poll(&self, id: &str) -> Result<Operation, Status> {
        let mut inner = self.lock();
        let record = inner.records.get_mut(id).ok_or_else(|| not_found(id))?;
        record.polls += 1;
        if let OperationPolicy::AfterPolls(n) = record.policy
            && record.polls >= n
        {
            record.released = true;
        }
        let finished = record.try_finish();
        let op = record.op.clone();
        if finished {
            inner.finished_now(id);
        }
        Ok(op)
    }

    /// Finishes an operation now (control API) and waits, at most `within`, for its work to
    /// produce the result, so the caller sees it done.
    pub(crate) async fn complete_when_ready(
        &self,
        id: &str,
        error: Option<rpc::Status>,
        within: Duration,
    ) -> Result<Operation, Status> {
        let op = self.complete(id, error)?;
        let deadline = tokio::time::Instant::now() + within;
        let mut op = op;
        while !op.done {
            // Created before the check, so an outcome arriving in between still wakes it.
            let arrived = self.outcomes.notified();
            op = self.get(id).ok_or_else(|| not_found(id))?;
            if op.done {
                break;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(Status::deadline_exceeded(format!(
                    "operation {id} is released but its work has not finished within {within:?}; it is done when the work is"
                )));
            }
        }
        Ok(op)
    }

    /// Replaces the metadata of a running operation (progress).
    pub(crate) fn set_metadata(&self, id: &str, metadata: prost_types::Any) {
        let mut inner = self.lock();
        if let Some(record) = inner.records.get_mut(id)
            && !record.op.done
        {
            record.op.metadata = Some(metadata);
            record.op.modified_at = Some(SystemTime::now().into());
        }
    }

    /// The operation an earlier call with this idempotency key created, if it is still kept.
    pub(crate) fn by_idempotency_key(&self, key: &str) -> Option<Operation> {
        let inner = self.lock();
        inner.idempotency.get(key).and_then(|id| inner.records.get(id)).map(|r| r.op.clone())
    }

    /// The operation as it is, without counting a poll.
    pub(crate) fn get(&self, id: &str) -> Option<Operation> {
        self.lock().records.get(id).map(|r| r.op.clone())
    }

    /// `OperationService/Cancel`: a running operation ends with CANCELLED and its work stops,
    /// even when the work is done and only the policy held the operation back (so tests can
    /// cancel at will). Tuning tasks decide first whether they can still be cancelled.
    pub(crate) fn cancel(&self, id: &str) -> Result<Operation, Status> {
        let mut inner = self.lock();
        let record = inner.records.get_mut(id).ok_or_else(|| not_found(id))?;
        if record.op.done {
            return Ok(record.op.clone());
        }
        record.forced = Some(rpc::Status { code: 1, message: "operation was cancelled".into(), details: vec![] });
        record.released = true;
        record.try_finish();
        let op = record.op.clone();
        inner.finished_now(id);
        drop(inner);
        // A control-API completion waiting for this operation sees it done.
        self.outcomes.notify_waiters();
        Ok(op)
    }

    /// Finishes an operation now (control API), optionally with an error instead of its result.
    /// Without an error the work's result is awaited if it is not there yet.
    pub(crate) fn complete(&self, id: &str, error: Option<rpc::Status>) -> Result<Operation, Status> {
        let mut inner = self.lock();
        let record = inner.records.get_mut(id).ok_or_else(|| not_found(id))?;
        if record.op.done {
            return Err(Status::failed_precondition(format!("operation {id} is already done")));
        }
        if error.is_some() {
            record.forced = error;
        }
        record.released = true;
        let finished = record.try_finish();
        let op = record.op.clone();
        if finished {
            inner.finished_now(id);
        }
        Ok(op)
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().records.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        for record in inner.records.values_mut() {
            if let Some(work) = record.work.take() {
                work.abort();
            }
        }
        *inner = Inner::default();
        drop(inner);
        self.set_policy(self.default_policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize, ttl: Duration) -> Arc<Operations> {
        Operations::new(Limits { max, ttl }, OperationPolicy::Immediate)
    }

    fn create(s: &Arc<Operations>) -> String {
        let new = NewOperation {
            prefix: "d7e",
            description: "d",
            created_by: "u",
            idempotency_key: None,
            metadata: None,
            faults: &[],
        };
        s.create(new).unwrap().0.id
    }

    #[tokio::test]
    async fn finished_operations_are_evicted_and_running_ones_bound_the_store() {
        let s = store(3, Duration::from_secs(3600));
        let ids: Vec<String> = (0..3).map(|_| create(&s)).collect();
        // Full of running operations: new ones are refused, nothing is dropped.
        let new = NewOperation {
            prefix: "d7e",
            description: "d",
            created_by: "u",
            idempotency_key: None,
            metadata: None,
            faults: &[],
        };
        let full = s.create(new).unwrap_err();
        assert_eq!(full.code(), tonic::Code::ResourceExhausted);
        assert_eq!(full.message(), "too many operations in progress (limit 3); wait for some to finish");
        s.set_outcome(&ids[0], Ok(prost_types::Any::default()));
        let fourth = create(&s);
        assert!(s.get(&ids[0]).is_none(), "the finished one made room");
        assert!(s.get(&fourth).is_some());
        // Past the time to live, finished operations go.
        let s = store(100, Duration::ZERO);
        let id = create(&s);
        s.set_outcome(&id, Ok(prost_types::Any::default()));
        create(&s);
        assert!(s.get(&id).is_none());
    }

    #[tokio::test]
    async fn the_outcome_waits_for_the_policy_and_cancel_wins() {
        let s = Operations::new(Limits { max: 10, ttl: Duration::from_secs(60) }, OperationPolicy::AfterPolls(2));
        let id = create(&s);
        s.set_outcome(&id, Ok(prost_types::Any::default()));
        assert!(!s.poll(&id).unwrap().done);
        assert!(s.poll(&id).unwrap().done);
        let id = create(&s);
        let cancelled = s.cancel(&id).unwrap();
        assert!(matches!(cancelled.result, Some(OpResult::Error(ref e)) if e.code == 1));
        s.set_outcome(&id, Ok(prost_types::Any::default()));
        assert!(matches!(s.get(&id).unwrap().result, Some(OpResult::Error(_))));
    }
}
