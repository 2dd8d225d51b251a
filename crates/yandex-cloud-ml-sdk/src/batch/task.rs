//! A batch task: its status, its result dataset, cancel, delete, and waiting for it.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use yandex_cloud_ml_proto::yandex::cloud::ai::{batch_inference::v1 as pb, foundation_models::v1 as fm};

use super::{BatchFailure, BatchStatus, BatchTaskInfo};
use crate::{
    call::{BoxFuture, Call, CallOptions, HandleCall},
    datasets::Dataset,
    error::{Code, Error, ErrorKind, Remedy, Result},
    operations::{Check, Operation, Pace, PollTarget, Progress, ProgressUnit, Wait, sealed, unpack},
    sdk::Sdk,
    transport::rpc,
};

/// A batch run in the cloud, known by its task id (as the official SDK knows it). Cheap to
/// clone. Like every handle of long work in this SDK it has `id()`, `info()`, `status()`,
/// `result()`, `cancel()` and `wait()` (and `delete()`); each method that talks to the cloud
/// returns a [`Call`].
#[derive(Clone)]
pub struct BatchTask {
    sdk: Sdk,
    id: Arc<str>,
    /// The operation that started it, once known (progress is read from its metadata).
    operation: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for BatchTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchTask").field("id", &self.id).finish_non_exhaustive()
    }
}

impl BatchTask {
    pub(crate) fn new(sdk: Sdk, task_id: String, operation_id: Option<String>) -> BatchTask {
        BatchTask { sdk, id: task_id.into(), operation: Arc::new(Mutex::new(operation_id)) }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) async fn describe(&self, options: &CallOptions) -> Result<BatchTaskInfo> {
        let request = pb::DescribeBatchInferenceRequest { task_id: self.id.to_string() };
        let response: pb::DescribeBatchInferenceResponse =
            self.sdk.transport().unary(&rpc::BATCH_DESCRIBE, request, options).await?;
        let task = response
            .task
            .ok_or_else(|| Error::decode(format!("batch task {} was described without its fields", self.id)))?;
        let info = BatchTaskInfo::from_proto(task);
        if !info.operation_id.is_empty() {
            *self.operation.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.operation_id.clone());
        }
        Ok(info)
    }

    /// Every field of the task (`BatchInferenceService/Describe`), whatever its status.
    pub fn info(&self) -> Call<HandleCall<BatchTaskInfo>> {
        let this = self.clone();
        HandleCall::call("batch info", move |options| async move { this.describe(&options).await })
    }

    /// Where the task is.
    pub fn status(&self) -> Call<HandleCall<BatchStatus>> {
        let this = self.clone();
        HandleCall::call("batch status", move |options| async move { Ok(this.describe(&options).await?.status) })
    }

    /// The batches done of all, from the task's operation (`None` before it reports any); the
    /// stage is the task's status.
    pub fn progress(&self) -> Call<HandleCall<Option<Progress>>> {
        let this = self.clone();
        HandleCall::call("batch progress", move |options| async move {
            let deadline = options.deadline();
            let status = this.describe(&options).await?.status;
            Ok(this.progress_of(status, &options.until(deadline)).await)
        })
    }

    /// The dataset of answers, if the task completed; an error with the task's errors if it
    /// failed or was cancelled (a partial result, when there is one, is named in its
    /// [`BatchFailure`] details), or if it is still running.
    pub fn result(&self) -> Call<HandleCall<Dataset>> {
        let this = self.clone();
        HandleCall::call("batch result", move |options| async move {
            let deadline = options.deadline();
            let info = this.describe(&options).await?;
            this.outcome(info, &options.until(deadline)).await
        })
    }

    /// What a task's fields say about its outcome.
    async fn outcome(&self, info: BatchTaskInfo, options: &CallOptions) -> Result<Dataset> {
        match info.status {
            BatchStatus::Completed => {
                let id = info.result_dataset_id.ok_or_else(|| {
                    Error::decode(format!("batch task {} completed without a result dataset", self.id))
                })?;
                crate::datasets::describe(&self.sdk, &id, options).await
            }
            s if s.is_running() => Err(Error::new(
                ErrorKind::OperationRunning,
                format!("batch task {} is still {s}; wait for it", self.id),
            )
            .with_operation_id(self.id.to_string())
            .with_remedy(Remedy::WaitForCompletion { id: self.id.to_string() })),
            _ => Err(failure(&self.id, info)),
        }
    }

    /// Asks the cloud to stop the task (`BatchInferenceService/Cancel`). A task that has
    /// finished is an error with code `FailedPrecondition`.
    pub fn cancel(&self) -> Call<HandleCall<()>> {
        let this = self.clone();
        HandleCall::call("batch cancel", move |options| async move {
            let request = pb::CancelBatchInferenceRequest { task_id: this.id.to_string() };
            let _: pb::CancelBatchInferenceResponse =
                this.sdk.transport().unary(&rpc::BATCH_CANCEL, request, &options).await?;
            Ok(())
        })
    }

    /// Removes the finished task from the folder's history (`BatchInferenceService/Delete`);
    /// its result dataset stays.
    pub fn delete(&self) -> Call<HandleCall<()>> {
        let this = self.clone();
        HandleCall::call("batch delete", move |options| async move {
            let request = pb::DeleteBatchInferenceRequest { task_id: this.id.to_string() };
            let _: pb::DeleteBatchInferenceResponse =
                this.sdk.transport().unary(&rpc::BATCH_DELETE, request, &options).await?;
            Ok(())
        })
    }

    /// Polls until the task finishes and returns the result dataset; a failed or cancelled
    /// task is an error. Progress (batches done of all) is read from the task's operation
    /// when a callback listens. Defaults: at most 10 s between polls, give up after 72 h (the
    /// task keeps running).
    pub fn wait(&self) -> Wait<Dataset> {
        Wait::new(self.clone(), Pace::BATCH)
    }

    /// Progress from the operation's metadata (batches done of all), if it can be had; the
    /// stage is the task's status.
    async fn progress_of(&self, status: BatchStatus, options: &CallOptions) -> Option<Progress> {
        let operation = self.operation.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        // Batch operations are served where the batch service is (`ai-foundation-models`).
        let op = Operation::<fm::BatchCompletionResponse>::new(self.sdk.clone(), operation);
        let m: fm::BatchCompletionMetadata = unpack(op.get(options).await.ok()?.metadata.as_ref()?).ok()?;
        let total = u64::try_from(m.total_batches).ok().filter(|t| *t > 0);
        let done = u64::try_from(m.completed_batches).unwrap_or(0);
        Some(Progress::new(status.as_str(), done, total, ProgressUnit::Batches))
    }

    /// The answers, each with the conversation it answers, read as they stream in (feature
    /// `parquet`); memory stays bounded whatever the number of rows.
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn results(
        &self,
    ) -> impl futures_core::Stream<Item = Result<crate::datasets::CompletionRecord>> + Send + 'static {
        use futures_util::StreamExt;
        let task = self.clone();
        futures_util::stream::once(async move { task.result().await }).flat_map(|dataset| match dataset {
            Ok(d) => d.read_as::<crate::datasets::CompletionRecord>().boxed(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
        })
    }
}

/// The error of a failed or cancelled task, with everything the task says about it.
fn failure(id: &str, info: BatchTaskInfo) -> Error {
    let code = if info.status == BatchStatus::Canceled { Code::Cancelled } else { Code::Internal };
    let mut message = format!("batch task {id} ended {}", info.status);
    if let Some(why) = info.error.as_deref().filter(|w| !w.is_empty()) {
        message.push_str(&format!(": {why}"));
    }
    if !info.line_errors.is_empty() {
        message.push_str(&format!("; {} rows failed", info.line_errors.len()));
    }
    if let Some(partial) = &info.result_dataset_id {
        message.push_str(&format!("; partial results in dataset {partial}"));
    }
    Error::new(ErrorKind::OperationFailed, message).with_code(code).with_operation_id(id.to_owned()).with_details(
        BatchFailure {
            task_id: id.to_owned(),
            partial_result: info.result_dataset_id,
            line_errors: info.line_errors,
            batch_errors: info.batch_errors,
        },
    )
}

impl PollTarget for BatchTask {
    type Output = Dataset;

    fn id(&self) -> &str {
        &self.id
    }

    fn check(&self, options: CallOptions, wants_progress: bool) -> BoxFuture<'_, Check<Dataset>> {
        Box::pin(async move {
            let deadline = options.deadline();
            let info = self.describe(&options).await?;
            let options = options.until(deadline);
            if info.status.is_running() {
                let progress = match wants_progress {
                    true => self.progress_of(info.status, &options).await,
                    false => None,
                };
                return Ok(Check::Running(progress.or_else(|| Some(Progress::stage(info.status.as_str())))));
            }
            // Fetching the result dataset is part of the poll: if that fails for a transient
            // reason, the poll is retried rather than the wait failing.
            if info.status == BatchStatus::Completed {
                return Ok(Check::Done(Ok(self.outcome(info, &options).await?), None));
            }
            Ok(Check::Done(self.outcome(info, &options).await, None))
        })
    }
}

impl sealed::Output for fm::BatchCompletionResponse {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::FoundationModels;
    const PACE: Pace = Pace::BATCH;

    async fn from_response(_sdk: &Sdk, response: prost_types::Any, _options: &CallOptions) -> Result<Self> {
        unpack(&response)
    }
}
