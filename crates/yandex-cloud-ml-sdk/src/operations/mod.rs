//! Long-running operations (`yandex.cloud.operation.Operation`): status, result, waiting with
//! polling, cancellation. An operation is identified by its id alone, so it can always be
//! re-attached later (e.g. [`GptModel::attach_deferred`](crate::GptModel::attach_deferred)).

use std::{
    fmt,
    future::{Future, IntoFuture},
    marker::PhantomData,
    pin::Pin,
    time::{Duration, SystemTime},
};

use yandex_cloud_ml_proto::yandex::cloud::operation as pb;

use crate::{
    error::{Code, Error, ErrorKind, Result},
    sdk::Sdk,
    transport::{CallOptions, Rpc},
};

/// Default timeout of each `Get`/`Cancel` RPC.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// A result type that a finished operation's `response` decodes into.
pub trait OperationOutput: Sized + Send + 'static + sealed::Sealed {
    /// Decodes the `response` of a successful operation.
    #[doc(hidden)]
    fn from_response(sdk: &Sdk, response: &prost_types::Any) -> impl Future<Output = Result<Self>> + Send;
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// Which `OperationService` endpoint serves an operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub get: &'static Rpc,
    pub cancel: &'static Rpc,
    pub poll_interval: Duration,
    pub poll_timeout: Duration,
}

/// A handle to a long-running operation producing `T`.
pub struct Operation<T> {
    sdk: Sdk,
    id: String,
    route: Route,
    rpc_timeout: Duration,
    _output: PhantomData<fn() -> T>,
}

impl<T> Clone for Operation<T> {
    fn clone(&self) -> Self {
        Operation {
            sdk: self.sdk.clone(),
            id: self.id.clone(),
            route: self.route,
            rpc_timeout: self.rpc_timeout,
            _output: PhantomData,
        }
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
    /// Service-specific progress information.
    pub metadata: Option<prost_types::Any>,
    /// Creation time.
    pub created_at: Option<SystemTime>,
    /// Last change.
    pub modified_at: Option<SystemTime>,
    response: Option<prost_types::Any>,
}

impl OperationStatus {
    fn from_proto(op: pb::Operation) -> OperationStatus {
        let (error, response) = match op.result {
            Some(pb::operation::Result::Error(s)) => {
                (Some(OperationError { code: Code::from_i32(s.code), message: s.message, details: s.details }), None)
            }
            Some(pb::operation::Result::Response(r)) => (None, Some(r)),
            None => (None, None),
        };
        OperationStatus {
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
    pub(crate) fn new(sdk: Sdk, id: String, route: Route) -> Operation<T> {
        Operation { sdk, id, route, rpc_timeout: RPC_TIMEOUT, _output: PhantomData }
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
        self.call(self.route.cancel, &request, self.rpc_timeout).await
    }

    /// Polls until the operation finishes and returns its result. Defaults: poll every 10 s,
    /// give up after 1 h (the operation keeps running on the server; re-attach by id).
    pub fn wait(&self) -> Wait<T> {
        Wait {
            operation: self.clone(),
            poll_interval: self.route.poll_interval,
            timeout: self.route.poll_timeout,
            rpc_timeout: self.rpc_timeout,
        }
    }

    async fn get(&self, timeout: Duration) -> Result<OperationStatus> {
        let request = pb::GetOperationRequest { operation_id: self.id.clone() };
        self.call(self.route.get, &request, timeout).await
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
        Ok(OperationStatus::from_proto(op))
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
        match &status.response {
            Some(response) => T::from_response(&self.sdk, response).await.map_err(|e| e.with_operation_id(&self.id)),
            None => Err(Error::decode("finished without a response or an error").with_operation_id(&self.id)),
        }
    }
}

/// Waiting for an [`Operation`]; configure, then `.await`.
#[must_use = "a Wait does nothing until awaited"]
pub struct Wait<T> {
    operation: Operation<T>,
    poll_interval: Duration,
    timeout: Duration,
    rpc_timeout: Duration,
}

impl<T> Wait<T> {
    /// Time between status polls.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long to wait in total before giving up (the operation keeps running).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of each status RPC.
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }
}

impl<T: OperationOutput> IntoFuture for Wait<T> {
    type Output = Result<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let op = &self.operation;
            let deadline = tokio::time::Instant::now() + self.timeout;
            let poll = async {
                loop {
                    let status = op.get(self.rpc_timeout).await?;
                    if status.done {
                        return op.finish(status).await;
                    }
                    tracing::debug!(operation = %op.id, sleep = ?self.poll_interval, "operation still running");
                    tokio::time::sleep(self.poll_interval).await;
                }
            };
            match tokio::time::timeout_at(deadline, poll).await {
                Ok(result) => result,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "did not finish within {:?}; it keeps running on the server, re-attach with its id",
                        self.timeout
                    ),
                )
                .with_code(Code::DeadlineExceeded)
                .with_operation_id(&op.id)),
            }
        })
    }
}
