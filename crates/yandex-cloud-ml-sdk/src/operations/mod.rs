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

use std::{fmt, future::Future, marker::PhantomData, sync::Arc, time::SystemTime};

use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::operation as pb;

use crate::{
    call::{BoxFuture, Call, CallOptions, HandleCall},
    error::{Code, Error, ErrorKind, Remedy, Result},
    sdk::Sdk,
    transport::rpc::{self, Rpc},
};
pub(crate) use poll::{Check, Pace, PollTarget, ProgressFn, WaitOptions, wait_settings};
pub use poll::{PollErrorPolicy, PollingPolicy, Progress, ProgressUnit, Wait};

/// A result type that a finished operation's `response` decodes into: a
/// [`CompletionResult`](crate::completions::CompletionResult), a
/// [`Dataset`](crate::datasets::Dataset), a tuned [`GptModel`](crate::completions::GptModel),
/// or the raw [`prost_types::Any`] for any operation.
pub trait OperationOutput: sealed::Output {}

impl<T: sealed::Output> OperationOutput for T {}

pub(crate) mod sealed {
    use super::*;

    /// How operations of one result type are served, waited for and decoded.
    pub trait Output: Sized + Send + 'static {
        /// The `OperationService` endpoint that serves these operations.
        const SERVICE: rpc::OperationRoute;
        /// The defaults of [`Operation::wait`].
        const PACE: Pace;

        /// Decodes the `response` of a successful operation.
        /// Decodes the `response` of a successful operation; an RPC this needs (e.g. describing
        /// the dataset a validation checked) is made with `options`.
        fn from_response(
            sdk: &Sdk,
            response: prost_types::Any,
            options: &CallOptions,
        ) -> impl Future<Output = Result<Self>> + Send;

        /// Progress from the operation's metadata, if the service reports any.
        fn progress(_metadata: Option<&prost_types::Any>) -> Option<Progress> {
            None
        }
    }
}

impl sealed::Output for prost_types::Any {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::Operation;
    const PACE: Pace = Pace::OPERATION;

    async fn from_response(_sdk: &Sdk, response: prost_types::Any, _options: &CallOptions) -> Result<Self> {
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

impl Sdk {
    /// Long-running operations by id (`sdk.operations().get::<T>(id)`).
    pub fn operations(&self) -> Operations {
        Operations { sdk: self.clone() }
    }
}

impl Operations {
    /// Attaches to an operation by id, decoding its result as `T`. No RPC is made.
    pub fn get<T: OperationOutput>(&self, id: impl Into<String>) -> Operation<T> {
        Operation::new(self.sdk.clone(), id.into())
    }

    /// Attaches to any operation by id; its result is the raw `google.protobuf.Any`.
    pub fn get_untyped(&self, id: impl Into<String>) -> Operation<prost_types::Any> {
        self.get(id)
    }
}

/// A handle to a long-running operation producing `T`. Cheap to clone. Like every handle of
/// long work in this SDK (tuning and batch tasks too) it has `id()`, `info()`, `status()`,
/// `result()`, `cancel()` and `wait()`.
pub struct Operation<T> {
    sdk: Sdk,
    id: String,
    /// The id of what the operation works on, when the call that started it knew it (a
    /// domain exposes it by its own name, e.g. `dataset_id`).
    subject: Option<Arc<str>>,
    _output: PhantomData<fn() -> T>,
}

impl<T> Clone for Operation<T> {
    fn clone(&self) -> Self {
        Operation { sdk: self.sdk.clone(), id: self.id.clone(), subject: self.subject.clone(), _output: PhantomData }
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

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum OperationStatus {
    /// Not finished.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished with an error (a cancelled operation fails with code `Cancelled`).
    Failed,
}

impl OperationStatus {
    /// Still working.
    pub fn is_running(self) -> bool {
        self == OperationStatus::Running
    }

    /// The name, e.g. `RUNNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "RUNNING",
            OperationStatus::Succeeded => "SUCCEEDED",
            OperationStatus::Failed => "FAILED",
        }
    }
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything an operation says about itself (`OperationService/Get`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperationInfo {
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

impl OperationInfo {
    fn from_proto<T: sealed::Output>(op: pb::Operation) -> OperationInfo {
        let (error, response) = match op.result {
            Some(pb::operation::Result::Error(s)) => {
                (Some(OperationError { code: Code::from_i32(s.code), message: s.message, details: s.details }), None)
            }
            Some(pb::operation::Result::Response(r)) => (None, Some(r)),
            None => (None, None),
        };
        OperationInfo {
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

    /// Where it is.
    pub fn status(&self) -> OperationStatus {
        match (self.done, &self.error) {
            (false, _) => OperationStatus::Running,
            (true, None) => OperationStatus::Succeeded,
            (true, Some(_)) => OperationStatus::Failed,
        }
    }

    /// The raw response of a succeeded operation.
    pub fn response(&self) -> Option<&prost_types::Any> {
        self.response.as_ref()
    }
}

impl<T: OperationOutput> Operation<T> {
    pub(crate) fn new(sdk: Sdk, id: String) -> Operation<T> {
        Operation { sdk, id, subject: None, _output: PhantomData }
    }

    pub(crate) fn with_subject(mut self, subject: &str) -> Operation<T> {
        self.subject = Some(subject.into());
        self
    }

    pub(crate) fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The operation id; keep it to re-attach after a restart.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Everything the operation says about itself (`OperationService/Get`).
    pub fn info(&self) -> Call<HandleCall<OperationInfo>> {
        let this = self.clone();
        HandleCall::call("operation info", move |options| async move { this.get(&options).await })
    }

    /// Where it is: running, succeeded or failed.
    pub fn status(&self) -> Call<HandleCall<OperationStatus>> {
        let this = self.clone();
        HandleCall::call("operation status", move |options| async move { Ok(this.get(&options).await?.status()) })
    }

    /// The result if the operation has finished: `T` on success, an
    /// [`ErrorKind::OperationFailed`] error if it failed, [`ErrorKind::OperationRunning`] if it
    /// is still running.
    pub fn result(&self) -> Call<HandleCall<T>> {
        let this = self.clone();
        HandleCall::call("operation result", move |options| async move {
            let deadline = options.deadline();
            let info = this.get(&options).await?;
            this.finish(info, &options.until(deadline)).await
        })
    }

    /// Asks the server to cancel the operation (`OperationService/Cancel`). Cancelling one that
    /// has finished changes nothing; see [`info`](Self::info) for how it ended.
    pub fn cancel(&self) -> Call<HandleCall<()>> {
        let this = self.clone();
        HandleCall::call("operation cancel", move |options| async move {
            let request = pb::CancelOperationRequest { operation_id: this.id.clone() };
            this.call(T::SERVICE.cancel(), request, &options).await.map(drop)
        })
    }

    /// Polls until the operation finishes and returns its result, reporting progress on the
    /// way; giving up leaves the operation running on the server. Defaults depend on the kind
    /// of operation (see [`Wait`]).
    pub fn wait(&self) -> Wait<T> {
        Wait::new(self.clone(), T::PACE)
    }

    pub(crate) async fn get(&self, options: &CallOptions) -> Result<OperationInfo> {
        let request = pb::GetOperationRequest { operation_id: self.id.clone() };
        self.call(T::SERVICE.get(), request, options).await
    }

    async fn call<Req: crate::transport::Message>(
        &self,
        rpc: &'static Rpc,
        request: Req,
        options: &CallOptions,
    ) -> Result<OperationInfo> {
        if self.id.trim().is_empty() {
            return Err(Error::invalid_input("operation id is empty: pass the id returned by the deferred call"));
        }
        let op: pb::Operation =
            self.sdk.transport().unary(rpc, request, options).await.map_err(|e| e.with_operation_id(&self.id))?;
        Ok(OperationInfo::from_proto::<T>(op))
    }

    async fn finish(&self, info: OperationInfo, options: &CallOptions) -> Result<T> {
        if !info.done {
            return Err(Error::new(ErrorKind::OperationRunning, "is still running and has no result yet")
                .with_operation_id(&self.id)
                .with_remedy(Remedy::WaitForCompletion { id: self.id.clone() }));
        }
        if let Some(e) = info.error {
            return Err(Error::new(ErrorKind::OperationFailed, e.message)
                .with_code(e.code)
                .with_operation_id(&self.id));
        }
        match info.response {
            Some(response) => {
                T::from_response(&self.sdk, response, options).await.map_err(|e| e.with_operation_id(&self.id))
            }
            None => Err(Error::decode("finished without a response or an error").with_operation_id(&self.id)),
        }
    }
}

impl<T: OperationOutput> PollTarget for Operation<T> {
    type Output = T;

    fn id(&self) -> &str {
        &self.id
    }

    fn check(&self, options: CallOptions, _wants_progress: bool) -> BoxFuture<'_, Check<T>> {
        Box::pin(async move {
            let info = self.get(&options).await?;
            if info.done {
                let progress = info.progress.clone();
                Ok(Check::Done(self.finish(info, &options).await, progress))
            } else {
                tracing::debug!(operation = %self.id, "operation still running");
                Ok(Check::Running(info.progress.or_else(|| Some(Progress::stage("running")))))
            }
        })
    }
}
