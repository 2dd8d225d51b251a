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
//! println!("{} answers {}", tuned.uri(), tuned.run("hello").await?.text());
//! # Ok(()) }
//! ```
//!
//! A tuned model is named by its URI, `gpt://<folder>/<base model>/<version>@<suffix>`; keep it
//! and use it later with `sdk.models().completions(uri)`.
//!
//! Embedding models tune the same way, on pair or triplet datasets: `sdk.models()
//! .text_embeddings("text-embeddings").tune_deferred(&train, EmbeddingsTuneType::Pair)` gives a
//! `TuningTask<TextEmbeddingsModel>`, whose model is `emb://<folder>/text-embeddings/latest@<suffix>`.

mod params;

use std::{
    collections::BTreeMap,
    fmt,
    marker::PhantomData,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use yandex_cloud_ml_proto::yandex::cloud::{ai::tuning::v1 as pb, operation as op_pb};

pub use self::params::{Optimizer, Scheduler, TuneParams, TuningDatasets, TuningType, WeightedDataset};
use crate::{
    call::{Action, BoxFuture, Call, CallOptions, HandleCall},
    completions::GptModel,
    embeddings::TextEmbeddingsModel,
    error::{Code, Error, ErrorKind, Result},
    list::{List, ListRpc, Listing, Page, PageRequest},
    operations::{
        Check, Operation, OperationOutput, Pace, PollTarget, Progress, ProgressUnit, Wait, WaitOptions, sealed, unpack,
        wait_settings,
    },
    sdk::Sdk,
    transport::rpc,
    wire_enum::wire_enum,
};

const RPC_TIMEOUT: Duration = Duration::from_secs(60);

wire_enum! {
    /// Where a tuning task is. Every status the API defines is known here (the official SDK
    /// fails on some of them).
    pub enum TuningStatus(pb::tuning_task::Status, "tuning status") {
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
    }
}

impl TuningStatus {
    /// Still working.
    pub fn is_running(self) -> bool {
        matches!(self, TuningStatus::Created | TuningStatus::Pending | TuningStatus::InProgress)
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
    #[serde(default, with = "crate::timestamp")]
    pub created_at: Option<SystemTime>,
    /// When training started.
    #[serde(default, with = "crate::timestamp")]
    pub started_at: Option<SystemTime>,
    /// When it finished.
    #[serde(default, with = "crate::timestamp")]
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

/// A tuning in the cloud: follow it, wait for the tuned model (`M`: a [`GptModel`], or a
/// [`TextEmbeddingsModel`] for an embeddings tuning), cancel it. It knows its operation id or
/// its task id and looks up the other when needed. Cheap to clone. Like every handle of long
/// work in this SDK it has `id()`, `info()`, `status()`, `result()`, `cancel()` and `wait()`;
/// each method that talks to the cloud returns a [`Call`].
pub struct TuningTask<M = GptModel> {
    sdk: Sdk,
    id: Arc<str>,
    ids: Arc<Mutex<Ids>>,
    model: PhantomData<fn() -> M>,
}

impl<M> Clone for TuningTask<M> {
    fn clone(&self) -> Self {
        TuningTask { sdk: self.sdk.clone(), id: self.id.clone(), ids: self.ids.clone(), model: PhantomData }
    }
}

impl<M> fmt::Debug for TuningTask<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TuningTask").field("id", &self.id).finish_non_exhaustive()
    }
}

impl TuningTask<GptModel> {
    /// The same task, as the tuning of an embeddings model (what `sdk.tuning().get(id)` gives
    /// is typed for completion models; an embeddings tuning's `result()` needs this).
    pub fn embeddings(self) -> TuningTask<TextEmbeddingsModel> {
        TuningTask { sdk: self.sdk, id: self.id, ids: self.ids, model: PhantomData }
    }
}

impl<M: OperationOutput> TuningTask<M> {
    fn with(sdk: Sdk, ids: Ids) -> TuningTask<M> {
        let id: Arc<str> = ids.operation.clone().or_else(|| ids.task.clone()).unwrap_or_default().into();
        TuningTask { sdk, id, ids: Arc::new(Mutex::new(ids)), model: PhantomData }
    }

    pub(crate) fn from_operation(sdk: Sdk, operation_id: String, task_id: Option<String>) -> TuningTask<M> {
        TuningTask::with(sdk, Ids { operation: Some(operation_id), task: task_id })
    }

    pub(crate) fn from_task(sdk: Sdk, task_id: String) -> TuningTask<M> {
        TuningTask::with(sdk, Ids { operation: None, task: Some(task_id) })
    }

    /// The id it was created or attached with (the operation id, or the task id).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn known(&self) -> (Option<String>, Option<String>) {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        (ids.operation.clone(), ids.task.clone())
    }

    /// The task id (from the operation's metadata, looked up once).
    pub fn task_id(&self) -> Call<HandleCall<String>> {
        let this = self.clone();
        HandleCall::call("tuning task id", move |options| async move { this.lookup_task_id(&options).await })
    }

    /// The operation id (from the task's description, looked up once).
    pub fn operation_id(&self) -> Call<HandleCall<String>> {
        let this = self.clone();
        HandleCall::call("tuning operation id", move |options| async move { this.lookup_operation_id(&options).await })
    }

    async fn lookup_task_id(&self, options: &CallOptions) -> Result<String> {
        let (operation, task) = self.known();
        if let Some(id) = task {
            return Ok(id);
        }
        let operation = operation.unwrap_or_else(|| self.id.to_string());
        let info = Operation::<M>::new(self.sdk.clone(), operation.clone()).get(options).await?;
        let task = info
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

    async fn lookup_operation_id(&self, options: &CallOptions) -> Result<String> {
        let (operation, task) = self.known();
        if let Some(id) = operation {
            return Ok(id);
        }
        let info = self.describe(task.unwrap_or_else(|| self.id.to_string()), options).await?;
        if info.operation_id.is_empty() {
            return Err(Error::decode(format!("tuning task {} has no operation id", info.task_id)));
        }
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).operation = Some(info.operation_id.clone());
        Ok(info.operation_id)
    }

    async fn operation(&self, options: &CallOptions) -> Result<Operation<M>> {
        let id = self.lookup_operation_id(options).await?;
        Ok(Operation::new(self.sdk.clone(), id))
    }

    async fn describe(&self, task_id: String, options: &CallOptions) -> Result<TuningTaskInfo> {
        let request = pb::DescribeTuningRequest { tuning_task_id: task_id.clone() };
        let response: pb::DescribeTuningResponse =
            self.sdk.transport().unary(&rpc::TUNING_DESCRIBE, request, options).await?;
        let task = response
            .tuning_task
            .ok_or_else(|| Error::decode(format!("tuning task {task_id} was described without its fields")))?;
        Ok(TuningTaskInfo::from_proto(task))
    }

    async fn info_within(&self, options: &CallOptions) -> Result<TuningTaskInfo> {
        let deadline = options.deadline();
        let task_id = self.lookup_task_id(options).await?;
        self.describe(task_id, &options.until(deadline)).await
    }

    /// The task's fields (`TuningService/Describe`), whatever its status.
    pub fn info(&self) -> Call<HandleCall<TuningTaskInfo>> {
        let this = self.clone();
        HandleCall::call("tuning info", move |options| async move { this.info_within(&options).await })
    }

    /// Where the task is.
    pub fn status(&self) -> Call<HandleCall<TuningStatus>> {
        let this = self.clone();
        HandleCall::call("tuning status", move |options| async move { Ok(this.info_within(&options).await?.status) })
    }

    /// The training steps done of all, from the task's operation (`None` before it reports
    /// any).
    pub fn progress(&self) -> Call<HandleCall<Option<Progress>>> {
        let this = self.clone();
        HandleCall::call("tuning progress", move |options| async move {
            let deadline = options.deadline();
            let operation = this.operation(&options).await?;
            Ok(operation.get(&options.until(deadline)).await?.progress)
        })
    }

    /// The tuned model if the task completed; an error if it failed, was cancelled, or is
    /// still running.
    pub fn result(&self) -> Call<HandleCall<M>> {
        let this = self.clone();
        HandleCall::call("tuning result", move |options| async move {
            let deadline = options.deadline();
            let operation = this.operation(&options).await?;
            operation.result().timeout(deadline.saturating_duration_since(Instant::now())).await
        })
    }

    /// Cancels the tuning (`OperationService/Cancel`, as the official SDK does). A task that
    /// had already finished is an error with code `FailedPrecondition` naming how it ended,
    /// not a silent no-op.
    pub fn cancel(&self) -> Call<HandleCall<()>> {
        let this = self.clone();
        HandleCall::call("tuning cancel", move |options| async move {
            let deadline = options.deadline();
            let operation = this.operation(&options).await?;
            let request = op_pb::CancelOperationRequest { operation_id: operation.id().to_owned() };
            let op: op_pb::Operation = this
                .sdk
                .transport()
                .unary(rpc::OperationRoute::FoundationModels.cancel(), request, &options.until(deadline))
                .await
                .map_err(|e| e.with_operation_id(operation.id()))?;
            let error = match &op.result {
                Some(op_pb::operation::Result::Error(e)) => Some((Code::from_i32(e.code), e.message.clone())),
                _ => None,
            };
            let cancelled = error.as_ref().is_some_and(|(code, _)| *code == Code::Cancelled);
            if op.done && !cancelled {
                let ended = match error {
                    None => "completed".to_owned(),
                    Some((code, message)) => format!("failed ({code}: {message})"),
                };
                return Err(Error::new(
                    ErrorKind::Rpc,
                    format!("tuning {} had already {ended}; there is nothing to cancel", this.id),
                )
                .with_code(Code::FailedPrecondition)
                .with_operation_id(op.id));
            }
            Ok(())
        })
    }

    /// Where the training metrics can be downloaded; `None` if there are none (yet).
    pub fn metrics_url(&self) -> Call<HandleCall<Option<String>>> {
        let this = self.clone();
        HandleCall::call("tuning metrics url", move |options| async move {
            let deadline = options.deadline();
            let request = pb::GetMetricsUrlRequest { task_id: this.lookup_task_id(&options).await? };
            match this
                .sdk
                .transport()
                .unary::<_, pb::GetMetricsUrlResponse>(&rpc::TUNING_GET_METRICS_URL, request, &options.until(deadline))
                .await
            {
                Ok(r) => Ok(non_empty(r.load_url)),
                Err(e) if e.code() == Some(Code::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Polls until the tuning finishes and returns the tuned model, reporting the training
    /// steps as progress. Defaults: at most 10 s between polls, give up after 72 h (the task
    /// keeps running).
    pub fn wait(&self) -> Wait<M> {
        Wait::new(self.clone(), Pace::TUNING)
    }
}

impl<M: OperationOutput> PollTarget for TuningTask<M> {
    type Output = M;

    fn id(&self) -> &str {
        &self.id
    }

    fn check(&self, options: CallOptions, wants_progress: bool) -> BoxFuture<'_, Check<M>> {
        Box::pin(async move {
            let deadline = options.deadline();
            let op = self.operation(&options).await?;
            op.check(options.until(deadline), wants_progress).await
        })
    }
}

/// The URI of the model a finished tuning made (from its response, or its task's fields).
async fn tuned_uri(sdk: &Sdk, response: prost_types::Any, options: &CallOptions) -> Result<String> {
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
        let task = TuningTask::<GptModel>::from_task(sdk.clone(), result.tuning_task_id.clone());
        uri = task.info_within(options).await?.target_model_uri.unwrap_or_default();
    }
    if uri.is_empty() {
        return Err(Error::decode(format!("tuning task {} finished without a tuned model URI", result.tuning_task_id)));
    }
    Ok(uri)
}

/// A tuned model of the other kind than the handle expects: say how to get it.
fn other_kind(uri: &str, wanted: &str, how: &str) -> Error {
    Error::invalid_input(format!("the tuning made {uri}, not a {wanted}: {how}"))
}

fn tuning_progress(metadata: Option<&prost_types::Any>) -> Option<Progress> {
    let m: pb::TuningMetadata = unpack(metadata?).ok()?;
    let status = TuningStatus::from_proto(m.status);
    let total = u64::try_from(m.total_steps).ok().filter(|t| *t > 0);
    Some(Progress::new(status.as_str(), u64::try_from(m.current_step).unwrap_or(0), total, ProgressUnit::Steps))
}

impl sealed::Output for GptModel {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::FoundationModels;
    const PACE: Pace = Pace::TUNING;

    async fn from_response(sdk: &Sdk, response: prost_types::Any, options: &CallOptions) -> Result<Self> {
        let uri = tuned_uri(sdk, response, options).await?;
        if uri.starts_with("emb://") {
            let how = "wait for it as an embeddings tuning (`task.embeddings()`, or \
                       `sdk.models().text_embeddings(..).attach_tune_deferred(id)`)";
            return Err(other_kind(&uri, "completion model", how));
        }
        Ok(sdk.models().completions(&uri))
    }

    fn progress(metadata: Option<&prost_types::Any>) -> Option<Progress> {
        tuning_progress(metadata)
    }
}

impl sealed::Output for TextEmbeddingsModel {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::FoundationModels;
    const PACE: Pace = Pace::TUNING;

    async fn from_response(sdk: &Sdk, response: prost_types::Any, options: &CallOptions) -> Result<Self> {
        let uri = tuned_uri(sdk, response, options).await?;
        if uri.starts_with("gpt://") {
            let how = "wait for it as a completion tuning (`sdk.tuning().get(id)`)";
            return Err(other_kind(&uri, "text-embeddings model", how));
        }
        Ok(sdk.models().text_embeddings(&uri))
    }

    fn progress(metadata: Option<&prost_types::Any>) -> Option<Progress> {
        tuning_progress(metadata)
    }
}

/// What an embeddings model is tuned on: pairs (`anchor`, `positive`) or triplets (`anchor`,
/// `positive`, `negative`), each with datasets of its task type (`TextEmbeddingsPair`,
/// `TextEmbeddingsTriplet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingsTuneType {
    /// Texts that should end up close.
    Pair,
    /// Texts that should end up close, and a third that should end up farther.
    Triplet,
}

/// The kind of tuning a request asks for, with what only that kind has.
#[derive(Debug, Clone)]
enum Kind {
    Completion,
    Embeddings { tune_type: EmbeddingsTuneType, dims: Vec<i64> },
}

/// [`GptModel::tune_deferred`] and [`TextEmbeddingsModel::tune_deferred`]: set datasets and
/// parameters with the [`Call`]'s methods, then `.await` the [`TuningTask`].
pub struct TuneDeferred<M = GptModel> {
    sdk: Sdk,
    base_model_uri: String,
    kind: Kind,
    train: Vec<WeightedDataset>,
    validation: Vec<WeightedDataset>,
    params: TuneParams,
    name: Option<String>,
    description: Option<String>,
    labels: BTreeMap<String, String>,
    model: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for TuneDeferred<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TuneDeferred")
            .field("base_model_uri", &self.base_model_uri)
            .field("kind", &self.kind)
            .field("train", &self.train)
            .field("validation", &self.validation)
            .field("params", &self.params)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<M: OperationOutput> TuneDeferred<M> {
    fn new(sdk: Sdk, base_model_uri: &str, kind: Kind, train: Vec<WeightedDataset>) -> TuneDeferred<M> {
        TuneDeferred {
            sdk,
            base_model_uri: base_model_uri.to_owned(),
            kind,
            train,
            validation: Vec::new(),
            params: TuneParams::default(),
            name: None,
            description: None,
            labels: BTreeMap::new(),
            model: PhantomData,
        }
    }

    fn tuning_params(&self) -> Result<pb::tuning_request::TuningParams> {
        use pb::tuning_request::TuningParams as P;
        let completion = self.params.to_proto();
        let Kind::Embeddings { tune_type, dims } = &self.kind else { return Ok(P::TextToTextCompletion(completion)) };
        if let Some(d) = dims.iter().find(|d| **d < 1) {
            return Err(Error::invalid_input(format!(
                "embedding_dims: {d} is not a vector size; give sizes of at least 1"
            )));
        }
        // The three parameter messages share their fields and numbers (the wire check holds
        // them to the official ones); the embeddings' add `embedding_dims`, and their warm-up
        // ratio is optional, so a scheduler's ratio is set there even when it is 0 (which the
        // completion message's plain field does not encode).
        let warmup = completion.scheduler.as_ref().map(|s| s.warmup_ratio);
        let bytes = prost::Message::encode_to_vec(&completion);
        let undecodable = |e: prost::DecodeError| Error::decode(format!("tuning parameters: {e}"));
        Ok(match tune_type {
            EmbeddingsTuneType::Pair => {
                use pb::text_embedding_pair_params::scheduler::OptionalWarmupRatio;
                let mut p: pb::TextEmbeddingPairParams =
                    prost::Message::decode(bytes.as_slice()).map_err(undecodable)?;
                p.embedding_dims = dims.clone();
                if let (Some(s), Some(w)) = (p.scheduler.as_mut(), warmup) {
                    s.optional_warmup_ratio = Some(OptionalWarmupRatio::WarmupRatio(w));
                }
                P::TextEmbeddingPairParams(p)
            }
            EmbeddingsTuneType::Triplet => {
                use pb::text_embedding_triplet_params::scheduler::OptionalWarmupRatio;
                let mut p: pb::TextEmbeddingTripletParams =
                    prost::Message::decode(bytes.as_slice()).map_err(undecodable)?;
                p.embedding_dims = dims.clone();
                if let (Some(s), Some(w)) = (p.scheduler.as_mut(), warmup) {
                    s.optional_warmup_ratio = Some(OptionalWarmupRatio::WarmupRatio(w));
                }
                P::TextEmbeddingTripletParams(p)
            }
        })
    }

    async fn start(self, options: &CallOptions) -> Result<TuningTask<M>> {
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
        let request = pb::TuningRequest {
            base_model_uri: self.base_model_uri.clone(),
            train_datasets: self.train.iter().map(WeightedDataset::to_proto).collect(),
            validation_datasets: self.validation.iter().map(WeightedDataset::to_proto).collect(),
            tuning_params: Some(self.tuning_params()?),
            name: self.name.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            labels: self.labels.into_iter().collect(),
            ..Default::default()
        };
        let op: op_pb::Operation = self.sdk.transport().unary(&rpc::TUNING_TUNE, request, options).await?;
        let task_id = op
            .metadata
            .as_ref()
            .and_then(|m| unpack::<pb::TuningMetadata>(m).ok())
            .map(|m| m.tuning_task_id)
            .filter(|id| !id.is_empty());
        Ok(TuningTask::from_operation(self.sdk, op.id, task_id))
    }
}

impl<M: OperationOutput> Action for TuneDeferred<M> {
    type Output = TuningTask<M>;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<TuningTask<M>> {
        self.start(&options).await
    }
}

/// [`GptModel::tune`] and [`TextEmbeddingsModel::tune`]: like [`TuneDeferred`], then waits for
/// the tuned model. Its timeout (default 72 h) bounds both; each RPC attempt is bounded by the
/// attempt timeout (default 60 s). The settings of the wait are on the call.
pub struct Tune<M = GptModel> {
    deferred: TuneDeferred<M>,
    wait: WaitOptions,
}

impl<M> fmt::Debug for Tune<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tune").field("deferred", &self.deferred).field("wait", &self.wait).finish()
    }
}

impl<M: OperationOutput> Action for Tune<M> {
    type Output = M;
    const DEFAULT_TIMEOUT: Duration = Pace::TUNING.timeout;
    const DEFAULT_ATTEMPT_TIMEOUT: Option<Duration> = Some(RPC_TIMEOUT);

    async fn execute(self, options: CallOptions) -> Result<M> {
        let Tune { deferred, mut wait } = self;
        let deadline = options.deadline();
        let task = deferred.start(&options.until(deadline)).await?;
        wait.timeout = deadline.saturating_duration_since(Instant::now());
        wait.retry = options.retry.clone();
        Wait::with_options(task, wait).await
    }
}

/// Settings shared by [`TuneDeferred`] and [`Tune`], on their calls.
trait TuningRequestMut<M> {
    fn request(&mut self) -> &mut TuneDeferred<M>;
}

impl<M> TuningRequestMut<M> for TuneDeferred<M> {
    fn request(&mut self) -> &mut TuneDeferred<M> {
        self
    }
}

impl<M> TuningRequestMut<M> for Tune<M> {
    fn request(&mut self) -> &mut TuneDeferred<M> {
        &mut self.deferred
    }
}

macro_rules! tuning_setters {
    ($t:ident) => {
        impl<M: OperationOutput> Call<$t<M>> {
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

        impl Call<$t<TextEmbeddingsModel>> {
            /// The vector sizes the tuned model answers in (the Python SDK's `dimensions`); it
            /// answers in the largest unless a run asks for another with `dim`.
            pub fn embedding_dims(mut self, dims: impl IntoIterator<Item = u32>) -> Self {
                if let Kind::Embeddings { dims: kept, .. } = &mut self.action_mut().request().kind {
                    *kept = dims.into_iter().map(i64::from).collect();
                }
                self
            }
        }
    };
}

tuning_setters!(TuneDeferred);
tuning_setters!(Tune);
wait_settings!(Call<Tune<GptModel>>, |this| this.action_mut().wait);
wait_settings!(Call<Tune<TextEmbeddingsModel>>, |this| this.action_mut().wait);

impl GptModel {
    /// Starts fine-tuning this model on `train` (an id, a [`Dataset`](crate::datasets::Dataset),
    /// `(id, weight)`, a map or a list of these); set validation datasets, parameters and a
    /// name on the returned call. Resolves to the [`TuningTask`].
    pub fn tune_deferred(&self, train: impl TuningDatasets) -> Call<TuneDeferred> {
        Call::new(TuneDeferred::new(self.sdk().clone(), self.uri(), Kind::Completion, train.into_weighted()))
    }

    /// Fine-tunes and waits for the tuned model, which is usable at once (its configuration
    /// starts from the defaults). The wait's settings are on the call, as on
    /// [`TuningTask::wait`].
    pub fn tune(&self, train: impl TuningDatasets) -> Call<Tune> {
        let deferred = TuneDeferred::new(self.sdk().clone(), self.uri(), Kind::Completion, train.into_weighted());
        Call::new(Tune { deferred, wait: WaitOptions::new(Pace::TUNING) })
    }

    /// Re-attaches to a tuning by its operation id (for tuning it equals the task id). No RPC
    /// is made.
    pub fn attach_tune_deferred(&self, id: impl Into<String>) -> TuningTask {
        TuningTask::from_operation(self.sdk().clone(), id.into(), None)
    }
}

impl TextEmbeddingsModel {
    /// Starts tuning this embeddings model (`text-embeddings`) on pairs or triplets in `train`
    /// (datasets of task type `TextEmbeddingsPair` or `TextEmbeddingsTriplet`); set validation
    /// datasets, parameters, `embedding_dims` and a name on the returned call. Resolves to the
    /// [`TuningTask`], whose result is the tuned [`TextEmbeddingsModel`].
    pub fn tune_deferred(
        &self,
        train: impl TuningDatasets,
        tune_type: EmbeddingsTuneType,
    ) -> Call<TuneDeferred<TextEmbeddingsModel>> {
        let kind = Kind::Embeddings { tune_type, dims: Vec::new() };
        Call::new(TuneDeferred::new(self.sdk().clone(), self.uri(), kind, train.into_weighted()))
    }

    /// Tunes and waits for the tuned model, usable at once with `run` and `run_many`.
    pub fn tune(&self, train: impl TuningDatasets, tune_type: EmbeddingsTuneType) -> Call<Tune<TextEmbeddingsModel>> {
        let kind = Kind::Embeddings { tune_type, dims: Vec::new() };
        let deferred = TuneDeferred::new(self.sdk().clone(), self.uri(), kind, train.into_weighted());
        Call::new(Tune { deferred, wait: WaitOptions::new(Pace::TUNING) })
    }

    /// Re-attaches to an embeddings tuning by its operation id (equal to the task id). No RPC
    /// is made.
    pub fn attach_tune_deferred(&self, id: impl Into<String>) -> TuningTask<TextEmbeddingsModel> {
        TuningTask::from_operation(self.sdk().clone(), id.into(), None)
    }
}

/// Tuning tasks of a folder (`sdk.tuning()`).
#[derive(Debug, Clone)]
pub struct Tuning {
    sdk: Sdk,
}

impl Sdk {
    /// Tuning tasks of the folder (`sdk.tuning().get(id)`, `.list()`); start one with
    /// `model.tune_deferred(train)`.
    pub fn tuning(&self) -> Tuning {
        Tuning { sdk: self.clone() }
    }
}

impl Tuning {
    /// A tuning task by task id; checks that it exists (`Describe`).
    pub fn get(&self, task_id: impl Into<String>) -> Call<HandleCall<TuningTask>> {
        let (sdk, task_id) = (self.sdk.clone(), task_id.into());
        HandleCall::call("get tuning", move |options| async move {
            let info = TuningTask::<GptModel>::from_task(sdk.clone(), task_id).info_within(&options).await?;
            Ok(TuningTask::with(sdk, Ids { operation: non_empty(info.operation_id), task: Some(info.task_id) }))
        })
    }

    /// A task from fields already fetched (no RPC).
    pub fn from_info(&self, info: &TuningTaskInfo) -> TuningTask {
        let ids = Ids { operation: non_empty(info.operation_id.clone()), task: Some(info.task_id.clone()) };
        TuningTask::with(self.sdk.clone(), ids)
    }

    /// Tuning tasks of the folder, newest first, over every page (the official SDK can loop on
    /// the first page); filter, then `.await` them all or `.stream()` them.
    pub fn list(&self) -> List<TuningQuery> {
        Listing::call(TuningQuery { sdk: self.sdk.clone(), status: None })
    }
}

/// The filters of a tuning listing ([`Tuning::list`]).
#[derive(Debug, Clone)]
pub struct TuningQuery {
    sdk: Sdk,
    status: Option<TuningStatus>,
}

impl ListRpc for TuningQuery {
    type Item = TuningTaskInfo;

    fn page(&self, page: PageRequest) -> BoxFuture<'static, Page<TuningTaskInfo>> {
        let request = pb::ListTuningsRequest {
            folder_id: self.sdk.folder_id().to_owned(),
            page_size: page.size,
            page_token: page.token.clone(),
            status: self.status.map_or(0, TuningStatus::to_proto),
        };
        page.fetch(&self.sdk, &rpc::TUNING_LIST, request, |r: pb::ListTuningsResponse| {
            (r.tuning_tasks.into_iter().map(TuningTaskInfo::from_proto).collect(), r.next_page_token)
        })
    }
}

impl List<TuningQuery> {
    /// Only tasks in this status.
    pub fn status(mut self, status: TuningStatus) -> Self {
        self.query_mut().status = Some(status);
        self
    }
}
