//! Long-running operations (`yandex.cloud.operation.Operation`): status, result, waiting with
//! progress, cancellation. An operation is identified by its id alone, so it can always be
//! re-attached later, from any process:
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! use yandex_cloud_ml_sdk::completions::CompletionResult;
//! let operation = sdk.operations().get::<CompletionResult>("d7qqr3frkl81js0udlr9");
//! let result = operation.wait().on_progress(|p| eprintln!("{}", p.stage)).await?;
//! # Ok(()) }
//! ```

mod poll;

use std::{
    fmt,
    future::Future,
    marker::PhantomData,
    time::{Duration, SystemTime},
};

pub(crate) use poll::{Check, PollTarget};
pub use poll::{Progress, ProgressUnit, Wait};

/// A progress callback shared by parallel work (upload parts, waits).
pub(crate) type ProgressFn = std::sync::Arc<dyn Fn(&Progress) + Send + Sync>;
use yandex_cloud_ml_proto::yandex::cloud::operation as pb;

use crate::{
    call::{BoxFuture, CallOptions},
    error::{Code, Error, ErrorKind, Result},
    sdk::Sdk,
    transport::rpc::{self, Rpc},
};

/// Default timeout of each `Get`/`Cancel` RPC.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// A result type that a finished operation's `response` decodes into: a
/// [`CompletionResult`](crate::completions::CompletionResult), or the raw
/// [`prost_types::Any`] for any operation.
pub trait OperationOutput: sealed::Output {}

impl<T: sealed::Output> OperationOutput for T {}

pub(crate) mod sealed {
    use super::*;

    /// How operations of one result type are served, polled and decoded.
    pub trait Output: Sized + Send + 'static {
        /// The `OperationService` endpoint that serves these operations.
        const SERVICE: rpc::OperationRoute;
        /// Defaults of [`Operation::wait`].
        const POLL_INTERVAL: Duration;
        /// Defaults of [`Operation::wait`].
        const WAIT_TIMEOUT: Duration;

        /// Decodes the `response` of a successful operation.
        fn from_response(sdk: &Sdk, response: prost_types::Any) -> impl Future<Output = Result<Self>> + Send;

        /// Progress from the operation's metadata, if the service reports any.
        fn progress(_metadata: Option<&prost_types::Any>) -> Option<Progress> {
            None
        }
    }
}

impl sealed::Output for prost_types::Any {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::Operation;
    const POLL_INTERVAL: Duration = Duration::from_secs(10);
    const WAIT_TIMEOUT: Duration = Duration::from_secs(3600);

    async fn from_response(_sdk: &Sdk, response: prost_types::Any) -> Result<Self> {
        Ok(response)
    }
}

/// Unpacks an operation's `Any` into `M`, with an error naming what was expected.
pub(crate) fn unpack<M: prost::Message + prost::Name + Default>(any: &prost_types::Any) -> Result<M> {
    match yandex_cloud_ml_proto::unpack_any::<M>(any) {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err(Error::decode(format!("operation payload is not a valid {}: {e}", M::NAME))),
        None => Err(Error::decode(format!("operation payload has type `{}`, expected {}", any.type_url, M::NAME))),
    }
}

/// Operations by id (`sdk.operations()`).
#[derive(Debug, Clone)]
pub struct Operations {
    sdk: Sdk,
}

impl Operations {
    pub(crate) fn new(sdk: Sdk) -> Operations {
        Operations { sdk }
    }

    /// Attaches to an operation by id, decoding its result as `T`. No RPC is made.
    pub fn get<T: OperationOutput>(&self, id: impl Into<String>) -> Operation<T> {
        Operation::new(self.sdk.clone(), id.into())
    }

    /// Attaches to any operation by id; its result is the raw `google.protobuf.Any`.
    pub fn get_untyped(&self, id: impl Into<String>) -> Operation<prost_types::Any> {
        self.get(id)
    }
}

/// A handle to a long-running operation producing `T`. Cheap to clone.
pub struct Operation<T> {
    sdk: Sdk,
    id: String,
    rpc_timeout: Duration,
    _output: PhantomData<fn() -> T>,
}

impl<T> Clone for Operation<T> {
    fn clone(&self) -> Self {
        Operation { sdk: self.sdk.clone(), id: self.id.clone(), rpc_timeout: self.rpc_timeout, _output: PhantomData }
    }
}

impl<T> fmt::Debug for Operation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation").field("id", &self.id).finish()
    }
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperationError {
    /// gRPC status code.
    pub code: Code,
    /// Server message.
    pub message: String,
    /// Typed details (`google.protobuf.Any`).
    pub details: Vec<prost_types::Any>,
}

/// A snapshot of an operation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperationStatus {
    /// Operation id.
    pub id: String,
    /// What the operation does, e.g. "Async GPT Completion".
    pub description: String,
    /// True once it has finished (successfully or not).
    pub done: bool,
    /// Set when it failed.
    pub error: Option<OperationError>,
    /// Service-specific information (e.g. progress), as sent.
    pub metadata: Option<prost_types::Any>,
    /// Progress decoded from the metadata, when the service reports it.
    pub progress: Option<Progress>,
    /// Creation time.
    pub created_at: Option<SystemTime>,
    /// Last change.
    pub modified_at: Option<SystemTime>,
    response: Option<prost_types::Any>,
}

impl OperationStatus {
    fn from_proto<T: sealed::Output>(op: pb::Operation) -> OperationStatus {
        let (error, response) = match op.result {
            Some(pb::operation::Result::Error(s)) => {
                (Some(OperationError { code: Code::from_i32(s.code), message: s.message, details: s.details }), None)
            }
            Some(pb::operation::Result::Response(r)) => (None, Some(r)),
            None => (None, None),
        };
        OperationStatus {
            progress: T::progress(op.metadata.as_ref()),
            id: op.id,
            description: op.description,
            done: op.done,
            error,
            metadata: op.metadata,
            created_at: op.created_at.and_then(|t| SystemTime::try_from(t).ok()),
            modified_at: op.modified_at.and_then(|t| SystemTime::try_from(t).ok()),
            response,
        }
    }

    /// Still running.
    pub fn is_running(&self) -> bool {
        !self.done
    }

    /// Finished with a response.
    pub fn is_succeeded(&self) -> bool {
        self.done && self.error.is_none() && self.response.is_some()
    }

    /// Finished with an error.
    pub fn is_failed(&self) -> bool {
        self.done && self.error.is_some()
    }

    /// The raw response of a succeeded operation.
    pub fn response(&self) -> Option<&prost_types::Any> {
        self.response.as_ref()
    }
}

impl<T: OperationOutput> Operation<T> {
    pub(crate) fn new(sdk: Sdk, id: String) -> Operation<T> {
        Operation { sdk, id, rpc_timeout: RPC_TIMEOUT, _output: PhantomData }
    }

    /// Timeout of each `status`, `result` and `cancel` RPC (and of each poll of `wait`);
    /// default 60 s.
    pub fn with_rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// The operation id; keep it to re-attach after a restart.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Fetches the current status (`OperationService/Get`).
    pub async fn status(&self) -> Result<OperationStatus> {
        self.get(self.rpc_timeout).await
    }

    /// The result if the operation has finished: `T` on success, an
    /// [`ErrorKind::OperationFailed`] error if it failed, [`ErrorKind::OperationRunning`] if it
    /// is still running.
    pub async fn result(&self) -> Result<T> {
        let status = self.status().await?;
        self.finish(status).await
    }

    /// Asks the server to cancel the operation (`OperationService/Cancel`).
    pub async fn cancel(&self) -> Result<OperationStatus> {
        let request = pb::CancelOperationRequest { operation_id: self.id.clone() };
        self.call(T::SERVICE.cancel(), &request, self.rpc_timeout).await
    }

    /// Polls until the operation finishes and returns its result, reporting progress on the
    /// way. Defaults depend on the operation (deferred completions: at most 10 s between polls,
    /// give up after 1 h); giving up leaves the operation running on the server.
    pub fn wait(&self) -> Wait<T> {
        Wait::new(self.clone(), T::POLL_INTERVAL, T::WAIT_TIMEOUT, self.rpc_timeout)
    }

    async fn get(&self, timeout: Duration) -> Result<OperationStatus> {
        let request = pb::GetOperationRequest { operation_id: self.id.clone() };
        self.call(T::SERVICE.get(), &request, timeout).await
    }

    async fn call<Req: prost::Message + fmt::Debug>(
        &self,
        rpc: &'static Rpc,
        request: &Req,
        timeout: Duration,
    ) -> Result<OperationStatus> {
        if self.id.trim().is_empty() {
            return Err(Error::invalid_input("operation id is empty: pass the id returned by the deferred call"));
        }
        let op: pb::Operation = self
            .sdk
            .transport()
            .unary(rpc, request, &CallOptions::with_timeout(timeout))
            .await
            .map_err(|e| e.with_operation_id(&self.id))?;
        Ok(OperationStatus::from_proto::<T>(op))
    }

    async fn finish(&self, status: OperationStatus) -> Result<T> {
        if !status.done {
            return Err(Error::new(
                ErrorKind::OperationRunning,
                "is still running and has no result yet; call wait() or poll status()",
            )
            .with_operation_id(&self.id));
        }
        if let Some(e) = status.error {
            return Err(Error::new(ErrorKind::OperationFailed, e.message)
                .with_code(e.code)
                .with_operation_id(&self.id));
        }
        match status.response {
            Some(response) => T::from_response(&self.sdk, response).await.map_err(|e| e.with_operation_id(&self.id)),
            None => Err(Error::decode("finished without a response or an error").with_operation_id(&self.id)),
        }
    }
}

impl<T: OperationOutput> PollTarget for Operation<T> {
    type Output = T;

    fn id(&self) -> &str {
        &self.id
    }

    fn check(&self, rpc_timeout: Duration, _wants_progress: bool) -> BoxFuture<'_, Check<T>> {
        Box::pin(async move {
            let status = self.get(rpc_timeout).await?;
            if status.done {
                let progress = status.progress.clone();
                Ok(Check::Done(self.finish(status).await, progress))
            } else {
                tracing::debug!(operation = %self.id, "operation still running");
                Ok(Check::Running(status.progress.or_else(|| Some(Progress::stage("running")))))
            }
        })
    }
}
