//! The cloud API services the emulator serves, each over the shared
//! [`State`](crate::state::State). Admission (journal, faults, authentication) happens before
//! any of them runs, in [`admission`](crate::admission); services read what it found from the
//! request extensions through the helpers here.

pub(crate) mod batch;
pub(crate) mod chat;
pub(crate) mod dataset;
pub(crate) mod embeddings;
pub(crate) mod endpoint;
pub(crate) mod generation;
pub(crate) mod iam;
pub(crate) mod operation;
pub(crate) mod storage;
pub(crate) mod text_generation;
pub(crate) mod tuning;
mod tuning_params;

use std::sync::Arc;

use tokio::time::Instant;
use tonic::{Request, Status};
use yandex_cloud_ml_proto::{google::rpc, yandex::cloud::operation::Operation};

use crate::{
    admission::{Caller, CutByFault, Deadline, OperationFaults},
    faults::OperationFault,
    state::{
        State,
        operations::{NewOperation, Outcome},
    },
};

/// What every call that creates an operation needs first: who calls, the idempotency key and
/// the operation faults the call was given.
pub(crate) struct Creator {
    caller: String,
    key: Option<String>,
    faults: Vec<OperationFault>,
}

impl Creator {
    /// The preface of a creating call; `Err` holds the operation a retry of the same call (same
    /// idempotency key) already made, to be answered again before any work is done.
    pub(crate) fn of<T>(state: &State, request: &Request<T>) -> Result<Creator, Box<Operation>> {
        let key = idempotency_key(request);
        if let Some(existing) = key.as_deref().and_then(|k| state.operations.by_idempotency_key(k)) {
            return Err(Box::new(existing));
        }
        Ok(Creator { caller: caller(request), key, faults: operation_faults(request) })
    }

    /// Who calls (recorded as `created_by`).
    pub(crate) fn caller(&self) -> &str {
        &self.caller
    }

    /// The new operation of this call.
    pub(crate) fn operation<'a>(&'a self, prefix: &'a str, description: &'a str) -> NewOperation<'a> {
        NewOperation {
            prefix,
            description,
            created_by: &self.caller,
            idempotency_key: self.key.as_deref(),
            metadata: None,
            faults: &self.faults,
        }
    }
}

/// What a kind of long work (tuning, batch) does for `OperationService`, which knows no
/// domain: it registers these hooks.
pub(crate) trait OperationKind: Send + Sync {
    /// The operation `id` rebuilt from this kind's task, when the store no longer has it (its
    /// task outlived it: evicted, or from before a restart).
    fn rebuild(&self, _state: &State, _id: &str) -> Option<Operation> {
        None
    }

    /// Whether `id` is the operation of one of this kind's tasks; if so, the task is cancelled
    /// with it (one that has finished stays as it ended).
    fn cancel(&self, state: &State, id: &str) -> bool;
}

/// A task's operation as rebuilt from the task when the store no longer has it (evicted, or
/// from before a restart): done once `result` is known, last changed when the task last did.
pub(crate) fn task_operation(
    id: &str,
    description: &str,
    created_by: &str,
    [created, started, finished]: [Option<prost_types::Timestamp>; 3],
    metadata: prost_types::Any,
    result: Option<yandex_cloud_ml_proto::yandex::cloud::operation::operation::Result>,
) -> Operation {
    Operation {
        id: id.to_owned(),
        description: description.to_owned(),
        created_at: created,
        created_by: created_by.to_owned(),
        modified_at: finished.or(started).or(created),
        done: result.is_some(),
        metadata: Some(metadata),
        result,
    }
}

/// A gRPC status as an operation's error.
pub(crate) fn rpc_status(status: &Status) -> rpc::Status {
    rpc::Status { code: status.code() as i32, message: status.message().to_owned(), details: vec![] }
}

/// Creates an operation and does its work in the background; the work's outcome ends the
/// operation, and cancelling the operation drops the work (run cleanup in a [`Disarm`] guard).
/// A retried call (same idempotency key) gets the first operation and starts nothing.
pub(crate) fn start_operation<F>(
    state: &Arc<State>,
    new: NewOperation<'_>,
    work: impl FnOnce(String) -> F,
) -> Result<Operation, Status>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let (op, created) = state.operations.create(new)?;
    if created {
        let operations = state.operations.clone();
        let id = op.id.clone();
        let work = work(id.clone());
        let task = tokio::spawn(async move {
            let outcome = work.await;
            operations.set_outcome(&id, outcome);
        });
        state.operations.attach_work(&op.id, task.abort_handle());
    }
    Ok(op)
}

/// Runs a cleanup when dropped unless disarmed: the work of a cancelled operation is dropped
/// mid-way, and this is how it still leaves its records consistent.
pub(crate) struct Disarm<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Disarm<F> {
    pub(crate) fn new(cleanup: F) -> Disarm<F> {
        Disarm(Some(cleanup))
    }

    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for Disarm<F> {
    fn drop(&mut self) {
        if let Some(cleanup) = self.0.take() {
            cleanup();
        }
    }
}

/// A required string field.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.trim().is_empty() { Err(Status::invalid_argument(format!("{field}: required"))) } else { Ok(value) }
}

/// Who made the call (`created_by` of what it creates).
pub(crate) fn caller<T>(request: &Request<T>) -> String {
    request.extensions().get::<Caller>().map_or_else(|| "anonymous".to_owned(), |c| c.0.clone())
}

/// When the client stops waiting.
pub(crate) fn deadline<T>(request: &Request<T>) -> Option<Instant> {
    request.extensions().get::<Deadline>().map(|d| d.0)
}

/// Whether a stream fault stopped this call's response (see [`CutByFault`]).
pub(crate) fn cut_by_fault<T>(request: &Request<T>) -> CutByFault {
    request.extensions().get::<CutByFault>().cloned().unwrap_or_default()
}

/// Faults for a new operation.
pub(crate) fn operation_faults<T>(request: &Request<T>) -> Vec<OperationFault> {
    request.extensions().get::<OperationFaults>().map(|f| f.0.clone()).unwrap_or_default()
}

/// The `idempotency-key` of a call that creates something.
pub(crate) fn idempotency_key<T>(request: &Request<T>) -> Option<String> {
    request.metadata().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned)
}
