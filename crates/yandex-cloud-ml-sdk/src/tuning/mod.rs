//! Fine-tuning (`model.tune_deferred`, `model.tune`, `sdk.tuning()`): train a completion model
//! on uploaded datasets; the result is a new model URI, usable at once.
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk, train: yandex_cloud_ml_sdk::datasets::Dataset) -> yandex_cloud_ml_sdk::Result<()> {
//! use yandex_cloud_ml_sdk::tuning::{TuneParams, TuningType};
//! let base = sdk.models().completions("yandexgpt-lite");
//! let task = base.tune_deferred(&train).params(TuneParams::default().tuning_type(TuningType::lora(8))).await?;
//! println!("tuning {}", task.id());
//! let tuned = task.wait().on_progress(|p| eprintln!("{} {}/{:?}", p.stage, p.done, p.total)).await?;
//! println!("{}", tuned.run("hello").await?.text());
//! # Ok(()) }
//! ```

mod params;

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use futures_core::Stream;
use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::{ai::tuning::v1 as pb, operation as op_pb};

pub use self::params::{Optimizer, Scheduler, TuneParams, TuningDatasets, TuningType, WeightedDataset};
use crate::{
    call::{Action, BoxFuture, Call, CallOptions},
    completions::GptModel,
    error::{Code, Error, ErrorKind, Result},
    operations::{
        Check, Operation, OperationStatus, PollTarget, Progress, ProgressFn, ProgressUnit, Wait, sealed, unpack,
    },
    pager::{Page, paged},
    sdk::Sdk,
    transport::rpc,
};

const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a tuning task is. Every status the API defines is known here (the official SDK fails
/// on some of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum TuningStatus {
    /// Accepted.
    Created,
    /// Waiting for resources.
    Pending,
    /// Training.
    InProgress,
    /// Done; the tuned model is ready.
    Completed,
    /// Failed.
    Failed,
    /// Cancelled.
    Canceled,
    /// A draft, not started.
    Draft,
    /// Archived.
    Archived,
    /// Paid.
    Paid,
    /// Not set, or unknown to this SDK version (its wire number).
    Unknown(i32),
}

impl TuningStatus {
    pub(crate) fn from_proto(v: i32) -> TuningStatus {
        use pb::tuning_task::Status as S;
        match S::try_from(v) {
            Ok(S::Created) => TuningStatus::Created,
            Ok(S::Pending) => TuningStatus::Pending,
            Ok(S::InProgress) => TuningStatus::InProgress,
            Ok(S::Completed) => TuningStatus::Completed,
            Ok(S::Failed) => TuningStatus::Failed,
            Ok(S::Canceled) => TuningStatus::Canceled,
            Ok(S::Draft) => TuningStatus::Draft,
            Ok(S::Archived) => TuningStatus::Archived,
            Ok(S::Paid) => TuningStatus::Paid,
            _ => TuningStatus::Unknown(v),
        }
    }

    pub(crate) fn to_proto(self) -> i32 {
        use pb::tuning_task::Status as S;
        match self {
            TuningStatus::Created => S::Created as i32,
            TuningStatus::Pending => S::Pending as i32,
            TuningStatus::InProgress => S::InProgress as i32,
            TuningStatus::Completed => S::Completed as i32,
            TuningStatus::Failed => S::Failed as i32,
            TuningStatus::Canceled => S::Canceled as i32,
            TuningStatus::Draft => S::Draft as i32,
            TuningStatus::Archived => S::Archived as i32,
            TuningStatus::Paid => S::Paid as i32,
            TuningStatus::Unknown(v) => v,
        }
    }

    /// Still working.
    pub fn is_running(self) -> bool {
        matches!(self, TuningStatus::Created | TuningStatus::Pending | TuningStatus::InProgress)
    }

    /// The wire name, e.g. `IN_PROGRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            TuningStatus::Created => "CREATED",
            TuningStatus::Pending => "PENDING",
            TuningStatus::InProgress => "IN_PROGRESS",
            TuningStatus::Completed => "COMPLETED",
            TuningStatus::Failed => "FAILED",
            TuningStatus::Canceled => "CANCELED",
            TuningStatus::Draft => "DRAFT",
            TuningStatus::Archived => "ARCHIVED",
            TuningStatus::Paid => "PAID",
            TuningStatus::Unknown(_) => "UNKNOWN",
        }
    }
}

impl std::str::FromStr for TuningStatus {
    type Err = Error;

    /// A wire name (`IN_PROGRESS`) or its lower-case, dashed form (`in-progress`).
    fn from_str(s: &str) -> Result<TuningStatus> {
        let wire = s.trim().to_ascii_uppercase().replace('-', "_");
        [
            TuningStatus::Created,
            TuningStatus::Pending,
            TuningStatus::InProgress,
            TuningStatus::Completed,
            TuningStatus::Failed,
            TuningStatus::Canceled,
            TuningStatus::Draft,
            TuningStatus::Archived,
            TuningStatus::Paid,
        ]
        .into_iter()
        .find(|status| status.as_str() == wire)
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "unknown tuning status `{s}`: use created, pending, in-progress, completed, failed, canceled, draft, archived or paid"
            ))
        })
    }
}

/// The fields of a tuning task (`TuningService/Describe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TuningTaskInfo {
    /// Task id.
    pub task_id: String,
    /// Operation id.
    pub operation_id: String,
    /// Status.
    pub status: TuningStatus,
    /// Folder.
    pub folder_id: String,
    /// Who started it.
    pub created_by: String,
    /// When it was created.
    pub created_at: Option<SystemTime>,
    /// When training started.
    pub started_at: Option<SystemTime>,
    /// When it finished.
    pub finished_at: Option<SystemTime>,
    /// The model it tunes.
    pub source_model_uri: Option<String>,
    /// The tuned model, once completed.
    pub target_model_uri: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl TuningTaskInfo {
    fn from_proto(t: pb::TuningTask) -> TuningTaskInfo {
        let time = |t: Option<prost_types::Timestamp>| t.and_then(|t| SystemTime::try_from(t).ok());
        TuningTaskInfo {
            task_id: t.task_id,
            operation_id: t.operation_id,
            status: TuningStatus::from_proto(t.status),
            folder_id: t.folder_id,
            created_by: t.created_by,
            created_at: time(t.created_at),
            started_at: time(t.started_at),
            finished_at: time(t.finished_at),
            source_model_uri: non_empty(t.source_model_uri),
            target_model_uri: non_empty(t.target_model_uri),
            name: non_empty(t.name),
            description: non_empty(t.description),
            labels: t.labels.into_iter().collect(),
        }
    }
}

/// Which ids of a task are known; the other is looked up when needed.
#[derive(Debug, Default)]
struct Ids {
    operation: Option<String>,
    task: Option<String>,
}

/// A tuning in the cloud: poll it, wait for the tuned model, cancel it. It knows its operation
/// id or its task id and looks up the other when needed. Cheap to clone.
#[derive(Clone)]
pub struct TuningTask {
    sdk: Sdk,
    id: Arc<str>,
    ids: Arc<Mutex<Ids>>,
    rpc_timeout: Duration,
}

impl fmt::Debug for TuningTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TuningTask").field("id", &self.id).finish_non_exhaustive()
    }
}

impl TuningTask {
    fn with(sdk: Sdk, ids: Ids) -> TuningTask {
        let id: Arc<str> = ids.operation.clone().or_else(|| ids.task.clone()).unwrap_or_default().into();
        TuningTask { sdk, id, ids: Arc::new(Mutex::new(ids)), rpc_timeout: RPC_TIMEOUT }
    }

    pub(crate) fn from_operation(sdk: Sdk, operation_id: String, task_id: Option<String>) -> TuningTask {
        TuningTask::with(sdk, Ids { operation: Some(operation_id), task: task_id })
    }

    pub(crate) fn from_task(sdk: Sdk, task_id: String) -> TuningTask {
        TuningTask::with(sdk, Ids { operation: None, task: Some(task_id) })
    }

    /// Timeout of each RPC it makes (default 60 s).
    pub fn with_rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// The id it was created or attached with (the operation id, or the task id).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn options(&self) -> CallOptions {
        CallOptions::with_timeout(self.rpc_timeout)
    }

    fn known(&self) -> (Option<String>, Option<String>) {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        (ids.operation.clone(), ids.task.clone())
    }

    /// The task id (from the operation's metadata, looked up once).
    pub async fn task_id(&self) -> Result<String> {
        let (operation, task) = self.known();
        if let Some(id) = task {
            return Ok(id);
        }
        let operation = operation.unwrap_or_else(|| self.id.to_string());
        let status = Operation::<GptModel>::new(self.sdk.clone(), operation.clone())
            .with_rpc_timeout(self.rpc_timeout)
            .status()
            .await?;
        let task = status
            .metadata
            .as_ref()
            .and_then(|m| unpack::<pb::TuningMetadata>(m).ok())
            .map(|m| m.tuning_task_id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::decode(format!("operation {operation} carries no tuning task id: is it a tuning operation?"))
            })?;
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).task = Some(task.clone());
        Ok(task)
    }

    /// The operation id (from the task's description, looked up once).
    pub async fn operation_id(&self) -> Result<String> {
        let (operation, task) = self.known();
        if let Some(id) = operation {
            return Ok(id);
        }
        let info = self.describe(task.unwrap_or_else(|| self.id.to_string())).await?;
        if info.operation_id.is_empty() {
            return Err(Error::decode(format!("tuning task {} has no operation id", info.task_id)));
        }
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).operation = Some(info.operation_id.clone());
        Ok(info.operation_id)
    }

    async fn operation(&self) -> Result<Operation<GptModel>> {
        let id = self.operation_id().await?;
        Ok(Operation::new(self.sdk.clone(), id).with_rpc_timeout(self.rpc_timeout))
    }

    async fn describe(&self, task_id: String) -> Result<TuningTaskInfo> {
        let request = pb::DescribeTuningRequest { tuning_task_id: task_id.clone() };
        let response: pb::DescribeTuningResponse =
            self.sdk.transport().unary(&rpc::TUNING_DESCRIBE, &request, &self.options()).await?;
        let task = response
            .tuning_task
            .ok_or_else(|| Error::decode(format!("tuning task {task_id} was described without its fields")))?;
        Ok(TuningTaskInfo::from_proto(task))
    }

    /// The operation's current status (progress in [`OperationStatus::progress`]).
    pub async fn status(&self) -> Result<OperationStatus> {
        self.operation().await?.status().await
    }

    /// The tuned model if the task completed; an error if it failed, was cancelled, or is
    /// still running.
    pub async fn result(&self) -> Result<GptModel> {
        self.operation().await?.result().await
    }

    /// Cancels the tuning (`OperationService/Cancel`, as the official SDK does). A task that
    /// had already finished is an error with code `FailedPrecondition` naming how it ended,
    /// not a silent no-op.
    pub async fn cancel(&self) -> Result<OperationStatus> {
        let status = self.operation().await?.cancel().await?;
        let cancelled = status.error.as_ref().is_some_and(|e| e.code == Code::Cancelled);
        if status.done && !cancelled {
            let ended = match &status.error {
                None => "completed".to_owned(),
                Some(e) => format!("failed ({}: {})", e.code, e.message),
            };
            return Err(Error::new(
                ErrorKind::Rpc,
                format!("tuning {} had already {ended}; there is nothing to cancel", self.id),
            )
            .with_code(Code::FailedPrecondition)
            .with_operation_id(status.id.clone()));
        }
        Ok(status)
    }

    /// The task's fields (`TuningService/Describe`), whatever its status.
    pub async fn task_info(&self) -> Result<TuningTaskInfo> {
        let task_id = self.task_id().await?;
        self.describe(task_id).await
    }

    /// Where the training metrics can be downloaded; `None` if there are none (yet).
    pub async fn metrics_url(&self) -> Result<Option<String>> {
        let request = pb::GetMetricsUrlRequest { task_id: self.task_id().await? };
        match self
            .sdk
            .transport()
            .unary::<_, pb::GetMetricsUrlResponse>(&rpc::TUNING_GET_METRICS_URL, &request, &self.options())
            .await
        {
            Ok(r) => Ok(non_empty(r.load_url)),
            Err(e) if e.code() == Some(Code::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Polls until the tuning finishes and returns the tuned model, reporting the training
    /// steps as progress. Defaults: at most 10 s between polls, give up after 1 h (the task
    /// keeps running; `model.tune()` waits 72 h).
    pub fn wait(&self) -> Wait<GptModel> {
        Wait::new(self.clone(), Duration::from_secs(10), Duration::from_secs(3600), self.rpc_timeout)
    }
}

impl PollTarget for TuningTask {
    type Output = GptModel;

    fn id(&self) -> &str {
        &self.id
    }

    fn check(&self, rpc_timeout: Duration, wants_progress: bool) -> BoxFuture<'_, Check<GptModel>> {
        Box::pin(async move {
            let op = self.operation().await?.with_rpc_timeout(rpc_timeout);
            op.check(rpc_timeout, wants_progress).await
        })
    }
}

impl sealed::Output for GptModel {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::FoundationModels;
    const POLL_INTERVAL: Duration = Duration::from_secs(10);
    const WAIT_TIMEOUT: Duration = Duration::from_secs(3600);

    async fn from_response(sdk: &Sdk, response: prost_types::Any) -> Result<Self> {
        let result: pb::TuningResponse = unpack(&response)?;
        let status = TuningStatus::from_proto(result.status);
        if matches!(status, TuningStatus::Failed | TuningStatus::Canceled) {
            return Err(Error::new(
                ErrorKind::OperationFailed,
                format!("tuning task {} ended {}", result.tuning_task_id, status.as_str()),
            ));
        }
        let mut uri = result.target_model_uri;
        if uri.is_empty() && !result.tuning_task_id.is_empty() {
            let task = TuningTask::from_task(sdk.clone(), result.tuning_task_id.clone());
            uri = task.task_info().await?.target_model_uri.unwrap_or_default();
        }
        if uri.is_empty() {
            return Err(Error::decode(format!(
                "tuning task {} finished without a tuned model URI",
                result.tuning_task_id
            )));
        }
        Ok(sdk.models().completions(&uri))
    }

    fn progress(metadata: Option<&prost_types::Any>) -> Option<Progress> {
        let m: pb::TuningMetadata = unpack(metadata?).ok()?;
        let status = TuningStatus::from_proto(m.status);
        let total = u64::try_from(m.total_steps).ok().filter(|t| *t > 0);
        Some(Progress::new(status.as_str(), u64::try_from(m.current_step).unwrap_or(0), total, ProgressUnit::Steps))
    }
}

/// [`GptModel::tune_deferred`]: set datasets and parameters with the [`Call`]'s methods, then
/// `.await` the [`TuningTask`].
#[derive(Debug)]
pub struct TuneDeferred {
    model: GptModel,
    train: Vec<WeightedDataset>,
    validation: Vec<WeightedDataset>,
    params: TuneParams,
    name: Option<String>,
    description: Option<String>,
    labels: BTreeMap<String, String>,
}

impl TuneDeferred {
    pub(crate) fn new(model: GptModel, train: Vec<WeightedDataset>) -> TuneDeferred {
        TuneDeferred {
            model,
            train,
            validation: Vec::new(),
            params: TuneParams::default(),
            name: None,
            description: None,
            labels: BTreeMap::new(),
        }
    }

    async fn start(self, options: &CallOptions) -> Result<TuningTask> {
        if self.train.is_empty() {
            return Err(Error::invalid_input(
                "no training datasets: pass at least one dataset (id, Dataset or (id, weight))",
            ));
        }
        for d in self.train.iter().chain(&self.validation) {
            if d.id.trim().is_empty() {
                return Err(Error::invalid_input("a tuning dataset id is empty"));
            }
            if !d.weight.is_finite() || d.weight < 0.0 {
                return Err(Error::invalid_input(format!(
                    "dataset {} has weight {}, which is not a non-negative number",
                    d.id, d.weight
                )));
            }
        }
        let sdk = self.model.sdk().clone();
        let request = pb::TuningRequest {
            base_model_uri: self.model.uri().to_owned(),
            train_datasets: self.train.iter().map(WeightedDataset::to_proto).collect(),
            validation_datasets: self.validation.iter().map(WeightedDataset::to_proto).collect(),
            name: self.name.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            labels: self.labels.into_iter().collect(),
            tuning_params: Some(pb::tuning_request::TuningParams::TextToTextCompletion(self.params.to_proto())),
            ..Default::default()
        };
        let op: op_pb::Operation = sdk.transport().unary(&rpc::TUNING_TUNE, &request, options).await?;
        let task_id = op
            .metadata
            .as_ref()
            .and_then(|m| unpack::<pb::TuningMetadata>(m).ok())
            .map(|m| m.tuning_task_id)
            .filter(|id| !id.is_empty());
        Ok(TuningTask::from_operation(sdk, op.id, task_id))
    }
}

impl Action for TuneDeferred {
    type Output = TuningTask;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;
    const NAME: &'static str = "tune";

    async fn execute(self, options: CallOptions) -> Result<TuningTask> {
        self.start(&options).await
    }
}

/// [`GptModel::tune`]: like [`TuneDeferred`], then waits for the tuned model.
pub struct Tune {
    deferred: TuneDeferred,
    poll_interval: Duration,
    wait_timeout: Duration,
    progress: Option<ProgressFn>,
}

impl fmt::Debug for Tune {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tune")
            .field("deferred", &self.deferred)
            .field("poll_interval", &self.poll_interval)
            .field("wait_timeout", &self.wait_timeout)
            .finish_non_exhaustive()
    }
}

impl Tune {
    pub(crate) fn new(deferred: TuneDeferred) -> Tune {
        Tune {
            deferred,
            poll_interval: Duration::from_secs(60),
            wait_timeout: Duration::from_secs(72 * 3600),
            progress: None,
        }
    }
}

impl Action for Tune {
    type Output = GptModel;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;
    const NAME: &'static str = "tune and wait";

    async fn execute(self, options: CallOptions) -> Result<GptModel> {
        let task = self.deferred.start(&options).await?;
        let mut wait =
            task.wait().poll_interval(self.poll_interval).timeout(self.wait_timeout).rpc_timeout(options.timeout);
        if let Some(report) = self.progress {
            wait = wait.on_progress(move |p| report(p));
        }
        wait.await
    }
}

/// Settings shared by [`TuneDeferred`] and [`Tune`], on their calls.
trait TuningRequestMut {
    fn request(&mut self) -> &mut TuneDeferred;
}

impl TuningRequestMut for TuneDeferred {
    fn request(&mut self) -> &mut TuneDeferred {
        self
    }
}

impl TuningRequestMut for Tune {
    fn request(&mut self) -> &mut TuneDeferred {
        &mut self.deferred
    }
}

macro_rules! tuning_setters {
    ($t:ty) => {
        impl Call<$t> {
            /// Validation datasets (same shapes as the training ones).
            pub fn validation(mut self, datasets: impl TuningDatasets) -> Self {
                self.action_mut().request().validation = datasets.into_weighted();
                self
            }

            /// Hyperparameters.
            pub fn params(mut self, params: TuneParams) -> Self {
                self.action_mut().request().params = params;
                self
            }

            /// Name of the tuning.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.action_mut().request().name = Some(name.into());
                self
            }

            /// Description of the tuning.
            pub fn description(mut self, description: impl Into<String>) -> Self {
                self.action_mut().request().description = Some(description.into());
                self
            }

            /// Adds a label.
            pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
                self.action_mut().request().labels.insert(key.into(), value.into());
                self
            }
        }
    };
}

tuning_setters!(TuneDeferred);
tuning_setters!(Tune);

impl Call<Tune> {
    /// Longest time between polls (default 60 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.action_mut().poll_interval = interval;
        self
    }

    /// How long to wait for the tuned model (default 72 h; the task keeps running after).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.action_mut().wait_timeout = timeout;
        self
    }

    /// Called with the training steps as they advance.
    pub fn on_progress(mut self, report: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.action_mut().progress = Some(Arc::new(report));
        self
    }
}

/// Tuning tasks of a folder (`sdk.tuning()`).
#[derive(Debug, Clone)]
pub struct Tuning {
    sdk: Sdk,
}

impl Tuning {
    pub(crate) fn new(sdk: Sdk) -> Tuning {
        Tuning { sdk }
    }

    /// A tuning task by task id; checks that it exists (`Describe`).
    pub async fn get(&self, task_id: impl Into<String>) -> Result<TuningTask> {
        let task = TuningTask::from_task(self.sdk.clone(), task_id.into());
        let info = task.task_info().await?;
        Ok(TuningTask::with(
            self.sdk.clone(),
            Ids { operation: non_empty(info.operation_id), task: Some(info.task_id) },
        ))
    }

    /// Tuning tasks of the folder, newest first, over every page (the official SDK can loop on
    /// the first page); filter, then `.stream()` or `.await` them all.
    pub fn list(&self) -> ListTunings {
        ListTunings { sdk: self.sdk.clone(), status: None, page_size: 0, timeout: RPC_TIMEOUT }
    }
}

/// Listing tuning tasks: set filters, then `.stream()` or `.await` the whole list.
#[derive(Debug, Clone)]
#[must_use = "a listing does nothing until streamed or awaited"]
pub struct ListTunings {
    sdk: Sdk,
    status: Option<TuningStatus>,
    page_size: i64,
    timeout: Duration,
}

impl ListTunings {
    /// Only tasks in this status.
    pub fn status(mut self, status: TuningStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Every matching task, fetched page by page as the stream is read.
    pub fn stream(self) -> impl Stream<Item = Result<TuningTaskInfo>> + Send {
        paged(move |page_token| {
            let this = self.clone();
            async move {
                let request = pb::ListTuningsRequest {
                    folder_id: this.sdk.folder_id().to_owned(),
                    page_size: this.page_size,
                    page_token,
                    status: this.status.map_or(0, TuningStatus::to_proto),
                };
                let response: pb::ListTuningsResponse = this
                    .sdk
                    .transport()
                    .unary(&rpc::TUNING_LIST, &request, &CallOptions::with_timeout(this.timeout))
                    .await?;
                Ok(Page {
                    items: response.tuning_tasks.into_iter().map(TuningTaskInfo::from_proto).collect(),
                    next: response.next_page_token,
                })
            }
        })
    }
}

crate::pager::listing!(ListTunings, TuningTaskInfo);
