//! Batch inference (`model.batch()`, `sdk.batch()`): run a completion model over every row of a
//! dataset in the cloud; the answers land in a new dataset.
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk, prompts: yandex_cloud_ml_sdk::datasets::Dataset) -> yandex_cloud_ml_sdk::Result<()> {
//! let model = sdk.models().completions("yandexgpt-lite");
//! let task = model.batch().run_deferred(&prompts).await?;
//! let answers = task.wait().on_progress(|p| eprintln!("{}/{:?} batches", p.done, p.total)).await?;
//! println!("answers in dataset {}", answers.id());
//! # Ok(()) }
//! ```

mod task;

use std::{collections::BTreeMap, time::Duration, time::SystemTime};

use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::ai::{batch_inference::v1 as pb, foundation_models::v1 as fm};

pub use self::task::BatchTask;
use crate::{
    call::{Action, BoxFuture, Call, CallOptions, HandleCall},
    completions::GptModel,
    datasets::DatasetRef,
    error::{Error, Result},
    list::{List, ListRpc, Listing, Page, PageRequest},
    operations::unpack,
    sdk::Sdk,
    transport::rpc,
    wire_enum::wire_enum,
};

/// Default timeout of each batch RPC.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

wire_enum! {
    /// Where a batch task is.
    pub enum BatchStatus(pb::batch_inference_task::Status, "batch status") {
        /// Accepted.
        Created,
        /// Waiting for resources.
        Pending,
        /// Running.
        InProgress,
        /// Done; the answers are in the result dataset.
        Completed,
        /// Failed (a partial result may exist).
        Failed,
        /// Cancelled (a partial result may exist).
        Canceled,
    }
}

impl BatchStatus {
    /// Still working.
    pub fn is_running(self) -> bool {
        matches!(self, BatchStatus::Created | BatchStatus::Pending | BatchStatus::InProgress)
    }
}

/// A row the batch could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LineError {
    /// The row's line in the source dataset (from 1).
    pub line: u64,
    /// What was wrong.
    pub message: String,
}

/// A batch of rows that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchError {
    /// The batch's number.
    pub batch: u64,
    /// Its first line.
    pub first_line: u64,
    /// Its last line.
    pub last_line: u64,
    /// What went wrong.
    pub message: String,
}

/// Everything a failed or cancelled batch task says about how it ended: the
/// [details](crate::Error::details) of its error. Its partial result, when there is one, is a
/// dataset of the answers given before it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchFailure {
    /// The task.
    pub task_id: String,
    /// The dataset with the answers it gave before it ended, if any.
    pub partial_result: Option<String>,
    /// Rows it could not answer.
    pub line_errors: Vec<LineError>,
    /// Batches that failed as a whole.
    pub batch_errors: Vec<BatchError>,
}

/// The fields of a batch task (`BatchInferenceService/Describe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchTaskInfo {
    /// Task id (a batch task is known by it).
    pub task_id: String,
    /// The operation that started it.
    pub operation_id: String,
    /// Folder.
    pub folder_id: String,
    /// The model that answers.
    pub model_uri: String,
    /// The dataset of prompts.
    pub source_dataset_id: String,
    /// The dataset of answers, once there is one (a failed or cancelled task may have a
    /// partial one).
    pub result_dataset_id: Option<String>,
    /// Status.
    pub status: BatchStatus,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Who started it.
    pub created_by: String,
    /// When it was created.
    #[serde(default, with = "crate::timestamp")]
    pub created_at: Option<SystemTime>,
    /// When it started running.
    #[serde(default, with = "crate::timestamp")]
    pub started_at: Option<SystemTime>,
    /// When it finished.
    #[serde(default, with = "crate::timestamp")]
    pub finished_at: Option<SystemTime>,
    /// Why the task as a whole failed, when it did.
    pub error: Option<String>,
    /// Rows that could not be answered.
    pub line_errors: Vec<LineError>,
    /// Batches that failed as a whole.
    pub batch_errors: Vec<BatchError>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl BatchTaskInfo {
    pub(crate) fn from_proto(t: pb::BatchInferenceTask) -> BatchTaskInfo {
        let time = |t: Option<prost_types::Timestamp>| t.and_then(|t| SystemTime::try_from(t).ok());
        let errors = t.errors.unwrap_or_default();
        let unsigned = |v: i64| u64::try_from(v).unwrap_or(0);
        BatchTaskInfo {
            task_id: t.task_id,
            operation_id: t.operation_id,
            folder_id: t.folder_id,
            model_uri: t.model_uri,
            source_dataset_id: t.source_dataset_id,
            result_dataset_id: non_empty(t.result_dataset_id),
            status: BatchStatus::from_proto(t.status),
            labels: t.labels.into_iter().collect(),
            created_by: t.created_by,
            created_at: time(t.created_at),
            started_at: time(t.started_at),
            finished_at: time(t.finished_at),
            error: errors.status.filter(|s| s.code != 0 || !s.message.is_empty()).map(|s| s.message),
            line_errors: errors
                .line_errors
                .into_iter()
                .map(|e| LineError { line: unsigned(e.line_number), message: e.message })
                .collect(),
            batch_errors: errors
                .batch_errors
                .into_iter()
                .map(|e| BatchError {
                    batch: unsigned(e.batch_number),
                    first_line: unsigned(e.first_line),
                    last_line: unsigned(e.last_line),
                    message: e.message,
                })
                .collect(),
        }
    }
}

/// Batch runs of one model (`model.batch()`).
#[derive(Debug, Clone)]
pub struct ModelBatch {
    model: GptModel,
}

impl GptModel {
    /// Batch runs of this model over whole datasets, with its configuration.
    pub fn batch(&self) -> ModelBatch {
        ModelBatch { model: self.clone() }
    }
}

impl ModelBatch {
    /// Starts answering every row of `dataset` (a `TextToTextGenerationRequest` dataset, by
    /// id or [`Dataset`](crate::datasets::Dataset)) with the model and its configuration
    /// (completion options and response format; tools are not sent, as the batch service
    /// does not take them). Returns the task, known by its task id.
    pub fn run_deferred(&self, dataset: impl DatasetRef) -> Call<RunBatch> {
        Call::new(RunBatch { model: self.model.clone(), dataset: dataset.dataset_id() })
    }
}

/// [`ModelBatch::run_deferred`].
#[derive(Debug)]
pub struct RunBatch {
    model: GptModel,
    dataset: String,
}

impl RunBatch {
    /// The wire request: the model's completion options and response format.
    fn request(&self) -> Result<fm::BatchCompletionRequest> {
        if self.dataset.trim().is_empty() {
            return Err(Error::invalid_input("the dataset id is empty: pass a dataset id or a Dataset"));
        }
        let config = self.model.config();
        if config.has_tools() {
            tracing::warn!(
                model = self.model.uri(),
                "batch runs do not take tools, tool_choice or parallel_tool_calls; they are not sent"
            );
        }
        // The configuration fills a completion request; its options and format carry over.
        let mut request = fm::CompletionRequest::default();
        config.apply(&mut request)?;
        let options = request.completion_options.unwrap_or_default();
        Ok(fm::BatchCompletionRequest {
            model_uri: self.model.uri().to_owned(),
            completion_options: Some(fm::CompletionOptions { stream: false, ..options }),
            request_format: Some(fm::batch_completion_request::RequestFormat::SourceDatasetId(self.dataset.clone())),
            response_format: request.response_format.map(|f| match f {
                fm::completion_request::ResponseFormat::JsonObject(v) => {
                    fm::batch_completion_request::ResponseFormat::JsonObject(v)
                }
                fm::completion_request::ResponseFormat::JsonSchema(s) => {
                    fm::batch_completion_request::ResponseFormat::JsonSchema(s)
                }
            }),
        })
    }
}

impl Action for RunBatch {
    type Output = BatchTask;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<BatchTask> {
        let request = self.request()?;
        let sdk = self.model.sdk().clone();
        let op: yandex_cloud_ml_proto::yandex::cloud::operation::Operation =
            sdk.transport().unary(&rpc::BATCH_COMPLETION, request, &options).await?;
        let metadata = op
            .metadata
            .as_ref()
            .and_then(|m| unpack::<fm::BatchCompletionMetadata>(m).ok())
            .filter(|m| !m.task_id.is_empty())
            .ok_or_else(|| Error::decode(format!("batch operation {} carries no task id", op.id)))?;
        Ok(BatchTask::new(sdk, metadata.task_id, Some(op.id)))
    }
}

/// Batch tasks of a folder (`sdk.batch()`).
#[derive(Debug, Clone)]
pub struct Batches {
    sdk: Sdk,
}

impl Sdk {
    /// Batch tasks of the folder (`sdk.batch().get(id)`, `.list()`); start one with
    /// `model.batch().run_deferred(dataset)`.
    pub fn batch(&self) -> Batches {
        Batches { sdk: self.clone() }
    }
}

impl Batches {
    /// A batch task by task id; checks that it exists (`Describe`).
    pub fn get(&self, task_id: impl Into<String>) -> Call<HandleCall<BatchTask>> {
        let (sdk, task_id) = (self.sdk.clone(), task_id.into());
        HandleCall::call("get batch", move |options| async move {
            let info = BatchTask::new(sdk.clone(), task_id, None).describe(&options).await?;
            Ok(BatchTask::new(sdk, info.task_id, non_empty(info.operation_id)))
        })
    }

    /// A task from fields already fetched (no RPC).
    pub fn from_info(&self, info: &BatchTaskInfo) -> BatchTask {
        BatchTask::new(self.sdk.clone(), info.task_id.clone(), non_empty(info.operation_id.clone()))
    }

    /// Batch tasks of the folder, over every page; filter, then `.await` them all or
    /// `.stream()` them.
    pub fn list(&self) -> List<BatchQuery> {
        Listing::call(BatchQuery { sdk: self.sdk.clone(), status: None })
    }
}

/// The filters of a batch listing ([`Batches::list`]).
#[derive(Debug, Clone)]
pub struct BatchQuery {
    sdk: Sdk,
    status: Option<BatchStatus>,
}

impl ListRpc for BatchQuery {
    type Item = BatchTaskInfo;

    fn page(&self, page: PageRequest) -> BoxFuture<'static, Page<BatchTaskInfo>> {
        let request = pb::ListBatchInferencesRequest {
            folder_id: self.sdk.folder_id().to_owned(),
            page_size: page.size,
            page_token: page.token.clone(),
            status: self.status.map_or(0, BatchStatus::to_proto),
        };
        page.fetch(&self.sdk, &rpc::BATCH_LIST, request, |r: pb::ListBatchInferencesResponse| {
            (r.tasks.into_iter().map(BatchTaskInfo::from_proto).collect(), r.next_page_token)
        })
    }
}

impl List<BatchQuery> {
    /// Only tasks in this status.
    pub fn status(mut self, status: BatchStatus) -> Self {
        self.query_mut().status = Some(status);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_parse_in_any_case() {
        for s in BatchStatus::KNOWN {
            assert_eq!(BatchStatus::from_proto(s.to_proto()), *s);
        }
        assert_eq!("in-progress".parse::<BatchStatus>().unwrap(), BatchStatus::InProgress);
        assert_eq!("Completed".parse::<BatchStatus>().unwrap(), BatchStatus::Completed);
        assert!("done".parse::<BatchStatus>().is_err());
        assert_eq!(BatchStatus::from_proto(42), BatchStatus::Unknown(42));
    }
}
