//! `TuningService`: tuning jobs that move CREATED → PENDING → IN_PROGRESS → COMPLETED (or
//! FAILED with a reason, or CANCELED), at a pace set by the configuration, and leave a tuned
//! model that answers what it learned (see [`engine::tuned`](crate::engine::tuned)).

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::{
    google::rpc,
    pack_any,
    yandex::cloud::{
        ai::tuning::v1::{
            self as pb,
            tuning_request::{TuningParams, WeightedDataset},
            tuning_service_server::{TuningService, TuningServiceServer},
            tuning_task::Status as TaskStatus,
        },
        operation::{Operation, operation::Result as OpResult},
    },
};

use super::{Creator, Disarm, required, rpc_status, start_operation};
use crate::{
    engine::tuned::{EmbeddingTuning, Learned},
    state::{
        State,
        tuning::{Saved, is_finished, status_name},
    },
    storage::Grant,
    validate,
};

/// The name of a completed task's metrics file in storage.
pub(crate) const METRICS_FILE: &str = "metrics.csv";

pub(crate) struct Tuning(pub Arc<State>);

/// What a tuning trains: a completion model, or an embeddings model on pairs or triplets.
#[derive(Debug, Clone)]
enum Kind {
    Completion,
    Embeddings { triplet: bool, dims: Vec<usize> },
}

impl Kind {
    fn scheme(&self) -> &'static str {
        match self {
            Kind::Completion => "gpt",
            Kind::Embeddings { .. } => "emb",
        }
    }

    /// The task type its datasets must have, and what for (in errors).
    fn task_type(&self) -> (&'static str, &'static str) {
        match self {
            Kind::Completion => ("TextToTextGeneration", "tuning a completion model"),
            Kind::Embeddings { triplet: false, .. } => ("TextEmbeddingsPair", "tuning an embeddings model on pairs"),
            Kind::Embeddings { triplet: true, .. } => {
                ("TextEmbeddingsTriplet", "tuning an embeddings model on triplets")
            }
        }
    }
}

/// The kind a request's parameters ask for, its parameters checked (the embeddings' messages
/// share the completion one's fields and numbers, so they are checked as one).
fn kind_of(state: &State, params: Option<&TuningParams>) -> Result<Kind, Status> {
    let as_completion = |bytes: Vec<u8>| -> Result<(), Status> {
        let p: pb::TextToTextCompletionTuningParams = prost::Message::decode(bytes.as_slice())
            .map_err(|e| Status::invalid_argument(format!("tuning_params: {e}")))?;
        super::tuning_params::check(&p)
    };
    let dims = |dims: &[i64]| -> Result<Vec<usize>, Status> {
        dims.iter()
            .map(|&d| {
                usize::try_from(d).ok().filter(|d| state.embedder.accepts_dim(*d)).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "embedding_dims: {d} is not a size the embedding model gives ({})",
                        state.embedder.sizes()
                    ))
                })
            })
            .collect()
    };
    match params {
        Some(TuningParams::TextToTextCompletion(p)) => super::tuning_params::check(p).map(|()| Kind::Completion),
        Some(TuningParams::TextEmbeddingPairParams(p)) => {
            as_completion(prost::Message::encode_to_vec(p))?;
            Ok(Kind::Embeddings { triplet: false, dims: dims(&p.embedding_dims)? })
        }
        Some(TuningParams::TextEmbeddingTripletParams(p)) => {
            as_completion(prost::Message::encode_to_vec(p))?;
            Ok(Kind::Embeddings { triplet: true, dims: dims(&p.embedding_dims)? })
        }
        None => Err(Status::invalid_argument(
            "tuning_params: required (text_to_text_completion, text_embedding_pair_params or \
             text_embedding_triplet_params)",
        )),
        Some(_) => Err(Status::unimplemented(
            "the emulator tunes completion and embeddings models (text classifiers are not served)",
        )),
    }
}

impl Tuning {
    pub(crate) fn server(state: Arc<State>) -> TuningServiceServer<Tuning> {
        TuningServiceServer::new(Tuning(state))
    }
}

fn metadata(task: &pb::TuningTask, total_steps: i64, current_step: i64) -> prost_types::Any {
    pack_any(&pb::TuningMetadata {
        tuning_task_id: task.task_id.clone(),
        status: task.status,
        total_steps,
        current_step,
    })
}

/// The operation of a task the operation store no longer has (evicted, or from before a
/// restart), rebuilt from the task, so a task can always be re-attached by its id.
pub(crate) fn operation_of(state: &State, id: &str) -> Option<Operation> {
    let saved = state.tuning.get(id).ok()?;
    let task = saved.task?;
    let done = is_finished(task.status);
    let result = done.then(|| match TaskStatus::try_from(task.status) {
        Ok(TaskStatus::Completed) => OpResult::Response(pack_any(&pb::TuningResponse {
            tuning_task_id: task.task_id.clone(),
            status: task.status,
            target_model_uri: task.target_model_uri.clone(),
        })),
        _ => OpResult::Error(rpc::Status {
            code: if task.status == TaskStatus::Canceled as i32 { 1 } else { 9 },
            message: saved.errors.last().map_or_else(|| "the tuning failed".to_owned(), |e| e.message.clone()),
            details: vec![],
        }),
    });
    let times = [task.created_at, task.started_at, task.finished_at];
    Some(super::task_operation(&task.task_id, "Tuning", &task.created_by, times, metadata(&task, 0, 0), result))
}

/// Tuning's operations for `OperationService`: rebuilt from their task, cancelled with it.
pub(crate) struct TuningOperations;

impl super::OperationKind for TuningOperations {
    fn rebuild(&self, state: &State, id: &str) -> Option<Operation> {
        operation_of(state, id)
    }

    fn cancel(&self, state: &State, id: &str) -> bool {
        if state.tuning.get(id).is_err() {
            return false;
        }
        cancel(state, id);
        true
    }
}

/// Cancels a running task: it is marked CANCELED first (so a job finishing at that moment
/// cannot complete it), then its operation is cancelled and its job stops. False if the task
/// had already finished, and then nothing changes.
pub(crate) fn cancel(state: &State, id: &str) -> bool {
    if state.tuning.fail(id, TaskStatus::Canceled, "the tuning was cancelled").is_err() {
        return false;
    }
    let _ = state.operations.cancel(id);
    true
}

/// Most datasets a tuning takes, in each of its lists.
const MAX_DATASETS: usize = 100;
/// Most training rows a tuning memorizes.
const MAX_EXAMPLES: usize = 100_000;
/// Longest prompt and response a tuned model keeps of each row (longer ones are cut, on a
/// character boundary): what it keeps is bounded in bytes, not by what was uploaded.
const MAX_EXAMPLE_BYTES: usize = 16 << 10;

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_EXAMPLE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn check_datasets(field: &str, datasets: &[WeightedDataset]) -> Result<(), Status> {
    if datasets.len() > MAX_DATASETS {
        return Err(Status::invalid_argument(format!(
            "{field}: at most {MAX_DATASETS} datasets, got {}",
            datasets.len()
        )));
    }
    for (i, d) in datasets.iter().enumerate() {
        required(&format!("{field}[{i}].dataset_id"), &d.dataset_id)?;
        if !d.weight.is_finite() || d.weight < 0.0 {
            return Err(Status::invalid_argument(format!(
                "{field}[{i}].weight: must be a number ≥ 0, got {}",
                d.weight
            )));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), Status> {
    let ok = (3..=100).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-'));
    if name.is_empty() || ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(
            "name: 3 to 100 characters of letters, digits, spaces, `_` and `-` (or leave it empty)",
        ))
    }
}

#[tonic::async_trait]
impl TuningService for Tuning {
    async fn tune(&self, request: Request<pb::TuningRequest>) -> Result<Response<Operation>, Status> {
        let creator = match Creator::of(&self.0, &request) {
            Ok(creator) => creator,
            Err(existing) => return Ok(Response::new(*existing)),
        };
        let r = request.into_inner();
        let kind = kind_of(&self.0, r.tuning_params.as_ref())?;
        let base_uri = required("base_model_uri", &r.base_model_uri)?;
        let base = match kind {
            Kind::Completion => validate::model_uri(&self.0, base_uri)?,
            Kind::Embeddings { .. } => {
                let base = validate::parse_model_uri(&self.0, base_uri, "emb")?;
                if base.tuned.is_none() && !super::embeddings::MODELS.contains(&base.name.as_str()) {
                    return Err(Status::not_found(format!("base_model_uri: model {} not found", base.name)));
                }
                base
            }
        };
        if base.tuned.is_some() {
            return Err(Status::invalid_argument(
                "base_model_uri: a tuned model cannot be tuned again; tune its base model",
            ));
        }
        if r.train_datasets.is_empty() {
            return Err(Status::invalid_argument("train_datasets: at least one dataset is required"));
        }
        check_datasets("train_datasets", &r.train_datasets)?;
        check_datasets("validation_datasets", &r.validation_datasets)?;
        check_name(&r.name)?;
        // Checked before the operation exists, so a full store never leaves one behind.
        self.0.tuning.tasks.make_room()?;

        let now = SystemTime::now();
        let state = self.0.clone();
        let new = creator.operation("ftn", "Tuning");
        let caller = creator.caller().to_owned();
        let op = start_operation(&self.0, new, |id| {
            let task = pb::TuningTask {
                task_id: id.clone(),
                operation_id: id.clone(),
                status: TaskStatus::Created as i32,
                folder_id: base.folder.clone(),
                created_by: caller.clone(),
                created_at: Some(now.into()),
                // The cloud shows the source without its folder, the target with it.
                source_model_uri: format!("{}://{}/{}", kind.scheme(), base.name, base.version),
                name: r.name.clone(),
                description: r.description.clone(),
                labels: r.labels.clone(),
                ..Default::default()
            };
            let options = pb::GetOptionsResponse {
                task_id: id.clone(),
                base_model_uri: r.base_model_uri.clone(),
                train_datasets: r.train_datasets.clone(),
                validation_datasets: r.validation_datasets.clone(),
                tuning_params: r.tuning_params.clone().map(|p| match p {
                    TuningParams::TextToTextCompletion(p) => {
                        pb::get_options_response::TuningParams::TextToTextCompletion(p)
                    }
                    TuningParams::TextClassificationMultilabel(p) => {
                        pb::get_options_response::TuningParams::TextClassificationMultilabel(p)
                    }
                    TuningParams::TextClassificationMulticlass(p) => {
                        pb::get_options_response::TuningParams::TextClassificationMulticlass(p)
                    }
                    TuningParams::TextEmbeddingPairParams(p) => {
                        pb::get_options_response::TuningParams::TextEmbeddingPairParams(p)
                    }
                    TuningParams::TextEmbeddingTripletParams(p) => {
                        pb::get_options_response::TuningParams::TextEmbeddingTripletParams(p)
                    }
                }),
            };
            state.operations.set_metadata(&id, metadata(&task, 0, 0));
            state.tuning.tasks.insert(Saved { task: Some(task), options: Some(options), ..Default::default() });
            run(state.clone(), id, base, kind, r.train_datasets.clone(), r.validation_datasets.clone())
        })?;
        Ok(Response::new(self.0.operations.get(&op.id).unwrap_or(op)))
    }

    async fn describe(
        &self,
        request: Request<pb::DescribeTuningRequest>,
    ) -> Result<Response<pb::DescribeTuningResponse>, Status> {
        let saved = self.0.tuning.get(required("tuning_task_id", &request.get_ref().tuning_task_id)?)?;
        Ok(Response::new(pb::DescribeTuningResponse { tuning_task: saved.task }))
    }

    async fn list(
        &self,
        request: Request<pb::ListTuningsRequest>,
    ) -> Result<Response<pb::ListTuningsResponse>, Status> {
        let (tuning_tasks, next_page_token) = self.0.tuning.list(request.get_ref())?;
        Ok(Response::new(pb::ListTuningsResponse { tuning_tasks, next_page_token }))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelTuningRequest>,
    ) -> Result<Response<pb::CancelTuningResponse>, Status> {
        let id = required("tuning_task_id", &request.get_ref().tuning_task_id)?;
        self.0.tuning.get(id)?;
        if !cancel(&self.0, id) {
            let status = self.0.tuning.get(id)?.task.map_or(0, |t| t.status);
            return Err(Status::failed_precondition(format!(
                "tuning task {id} is {}; only a running task can be cancelled",
                status_name(status)
            )));
        }
        Ok(Response::new(pb::CancelTuningResponse { tuning_task_id: id.to_owned() }))
    }

    async fn get_metrics_url(
        &self,
        request: Request<pb::GetMetricsUrlRequest>,
    ) -> Result<Response<pb::GetMetricsUrlResponse>, Status> {
        let id = required("task_id", &request.get_ref().task_id)?;
        let status = self.0.tuning.get(id)?.task.map_or(0, |t| t.status);
        if status != TaskStatus::Completed as i32 {
            return Err(Status::not_found(format!(
                "tuning task {id} has no metrics yet (status {})",
                status_name(status)
            )));
        }
        let scheme = if self.0.tls { "https" } else { "http" };
        let grant = Grant::Download { dataset: id.to_owned(), key: METRICS_FILE.to_owned() };
        let load_url = self.0.datasets.signer.url(&format!("{scheme}://{}", self.0.advertised), &grant);
        Ok(Response::new(pb::GetMetricsUrlResponse { load_url }))
    }

    async fn get_options(
        &self,
        request: Request<pb::GetOptionsRequest>,
    ) -> Result<Response<pb::GetOptionsResponse>, Status> {
        let id = required("task_id", &request.get_ref().task_id)?;
        Ok(Response::new(self.0.tuning.get(id)?.options.unwrap_or_default()))
    }

    async fn list_errors(
        &self,
        request: Request<pb::ListErrorsRequest>,
    ) -> Result<Response<pb::ListErrorsResponse>, Status> {
        let id = required("tuning_task_id", &request.get_ref().tuning_task_id)?;
        Ok(Response::new(pb::ListErrorsResponse { tuning_error: self.0.tuning.get(id)?.errors }))
    }
}

/// The tuning job. Dropped mid-way when its operation is cancelled; the task is then CANCELED.
async fn run(
    state: Arc<State>,
    id: String,
    base: crate::engine::ModelRef,
    kind: Kind,
    train: Vec<WeightedDataset>,
    validation: Vec<WeightedDataset>,
) -> Result<prost_types::Any, rpc::Status> {
    let on_cancel = {
        let (state, id) = (state.clone(), id.clone());
        Disarm::new(move || {
            let _ = state.tuning.fail(&id, TaskStatus::Canceled, "the tuning was cancelled");
        })
    };
    let outcome = tune(&state, &id, base, kind, train, validation).await;
    on_cancel.disarm();
    outcome.map_err(|status| {
        // A task that was cancelled meanwhile stays CANCELED; otherwise it failed.
        let _ = state.tuning.fail(&id, TaskStatus::Failed, status.message());
        match state.tuning.get(&id).ok().and_then(|s| s.task).map(|t| t.status) {
            Some(s) if s == TaskStatus::Canceled as i32 => rpc_status(&Status::cancelled("the tuning was cancelled")),
            _ => rpc_status(&status),
        }
    })
}

async fn tune(
    state: &Arc<State>,
    id: &str,
    base: crate::engine::ModelRef,
    kind: Kind,
    train: Vec<WeightedDataset>,
    validation: Vec<WeightedDataset>,
) -> Result<prost_types::Any, Status> {
    let step = Duration::from_millis(state.config.tuning_step_ms);
    let steps = i64::from(state.config.tuning_steps.max(1));
    let advance = |status: TaskStatus, current: i64, change: &dyn Fn(&mut Saved)| -> Result<(), Status> {
        let task = state.tuning.update(id, |saved| {
            if let Some(task) = saved.task.as_mut() {
                task.status = status as i32;
            }
            change(saved);
        })?;
        state.operations.set_metadata(id, metadata(&task, steps, current));
        Ok(())
    };
    tokio::time::sleep(step).await;
    advance(TaskStatus::Pending, 0, &|_| {})?;

    // Reading the datasets and indexing what is learned is blocking work.
    let suffix = crate::state::new_id("tam");
    let model = {
        let (state, suffix, base, kind) = (state.clone(), suffix.clone(), base.clone(), kind.clone());
        tokio::task::spawn_blocking(move || {
            check_ready(&state, &kind, "validation_datasets", &validation)?;
            let (examples, embedding) = learn(&state, &kind, &train)?;
            let learned = Learned {
                folder: base.folder.clone(),
                base: base.name.clone(),
                version: base.version.clone(),
                examples,
                embedding,
            };
            let saved = state.tuning.save_model(&suffix, learned)?;
            state.tuning.check_budget(&saved)?;
            Ok::<_, Status>(saved)
        })
        .await
        .map_err(|e| Status::internal(format!("reading the datasets stopped: {e}")))??
    };

    tokio::time::sleep(step).await;
    advance(TaskStatus::InProgress, 0, &|saved| {
        if let Some(task) = saved.task.as_mut() {
            task.started_at = Some(SystemTime::now().into());
        }
    })?;
    for current in 1..=steps {
        tokio::time::sleep(step).await;
        // The model takes in its rows step by step; the loss is the share not learned yet.
        let loss = 1.0 - current as f64 / steps as f64;
        advance(TaskStatus::InProgress, current, &|saved| saved.losses.push(loss))?;
    }

    // The model answers from the moment the task says COMPLETED; if the task was cancelled
    // at this very moment, the model goes again.
    let target = format!("{}://{}/{}/{}@{suffix}", kind.scheme(), base.folder, base.name, base.version);
    state.tuning.register(model)?;
    let completed = advance(TaskStatus::Completed, steps, &|saved| {
        if let Some(task) = saved.task.as_mut() {
            task.target_model_uri = target.clone();
            task.finished_at = Some(SystemTime::now().into());
        }
    });
    if let Err(e) = completed {
        state.tuning.unregister(&suffix);
        return Err(e);
    }
    Ok(pack_any(&pb::TuningResponse {
        tuning_task_id: id.to_owned(),
        status: TaskStatus::Completed as i32,
        target_model_uri: target,
    }))
}

/// Every dataset must exist, be READY and hold rows of the kind's task type.
fn check_ready(state: &State, kind: &Kind, field: &str, datasets: &[WeightedDataset]) -> Result<(), Status> {
    let (task_type, purpose) = kind.task_type();
    for (i, d) in datasets.iter().enumerate() {
        let field = format!("{field}[{i}]");
        state.datasets.ready_for(&field, &d.dataset_id, task_type, purpose)?;
    }
    Ok(())
}

/// What a tuning learns: its rows (prompt and response, or anchor and positive) and, for an
/// embeddings model, the rest of what it keeps.
type Rows = (Vec<(String, String)>, Option<EmbeddingTuning>);

/// The training rows, from every train dataset with a positive weight, in order (blocking:
/// reads parquet): for completions the last user message of each request and its response;
/// for embeddings each row's anchor and positive (and negative, for triplets).
fn learn(state: &State, kind: &Kind, train: &[WeightedDataset]) -> Result<Rows, Status> {
    check_ready(state, kind, "train_datasets", train)?;
    let mut examples = Vec::new();
    let mut negatives = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in train.iter().filter(|d| d.weight > 0.0 && seen.insert(d.dataset_id.as_str())) {
        let unreadable = |e: &dyn std::fmt::Display| Status::internal(format!("reading dataset {}: {e}", d.dataset_id));
        let source = state.datasets.data(&d.dataset_id).map_err(|e| unreadable(&e))?;
        let mut too_many = false;
        crate::rows::read_parquet(source, |row| {
            let pair = match kind {
                Kind::Completion => {
                    let prompt = row["request"]
                        .as_array()
                        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user").or(messages.last()))
                        .and_then(|m| m["text"].as_str())
                        .unwrap_or_default();
                    row["response"].as_str().filter(|_| !prompt.is_empty()).map(|r| (prompt, r))
                }
                Kind::Embeddings { .. } => row["anchor"].as_str().zip(row["positive"].as_str()),
            };
            if let Some((first, second)) = pair {
                if examples.len() == MAX_EXAMPLES {
                    too_many = true;
                    return false;
                }
                examples.push((cut(first), cut(second)));
                if let Kind::Embeddings { triplet: true, .. } = kind {
                    negatives.push(cut(row["negative"].as_str().unwrap_or_default()));
                }
            }
            true
        })
        .map_err(|e| unreadable(&e))?;
        if too_many {
            return Err(Status::failed_precondition(format!(
                "train_datasets: more than {MAX_EXAMPLES} rows; the emulator learns at most {MAX_EXAMPLES}"
            )));
        }
    }
    if examples.is_empty() {
        return Err(Status::failed_precondition("train_datasets: no rows to learn from"));
    }
    if let Kind::Embeddings { .. } = kind {
        // Every text must fit the embedding model, or the tuned model could not embed it later.
        let limit = state.embedder.max_tokens();
        let texts = examples.iter().flat_map(|(a, p)| [a, p]).chain(&negatives);
        for (i, text) in texts.enumerate() {
            let tokens = state.embedder.count_tokens(text).unwrap_or_else(|| {
                use crate::engine::Engine;
                state.engine.tokenizer().tokenize(text).len()
            });
            if tokens > limit {
                return Err(Status::failed_precondition(format!(
                    "train_datasets: text {i} of the rows has {tokens} tokens, more than the embedding model's limit of {limit}"
                )));
            }
        }
    }
    let embedding = match kind {
        Kind::Completion => None,
        Kind::Embeddings { dims, .. } => Some(EmbeddingTuning { dims: dims.clone(), negatives }),
    };
    Ok((examples, embedding))
}
