//! The cloud API services the emulator serves, each over the shared
//! [`State`](crate::state::State). Admission (journal, faults, authentication) happens before
//! any of them runs, in [`admission`](crate::admission); services read what it found from the
//! request extensions through the helpers here.

pub(crate) mod endpoint;
pub(crate) mod iam;
pub(crate) mod operation;
pub(crate) mod text_generation;

use tokio::time::Instant;
use tonic::Request;

use crate::{
    admission::{Caller, CutByFault, Deadline, OperationFaults},
    faults::OperationFault,
};

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
