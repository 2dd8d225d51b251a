//! `TextGenerationBatchService` and `BatchInferenceService`: a batch task really runs. A worker
//! reads the source dataset's rows, answers each with the same engine as online calls (so a
//! tuned model answers its tuned responses), a bounded number at a time, in batches whose
//! count is the task's progress, and writes the answers to a new dataset in the cloud's
//! layout. A row that cannot be answered is a line error, not the end of the task; a
//! cancelled task stops after the batch it is on and keeps what it answered as a partial
//! result.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::{
    google::rpc,
    pack_any,
    yandex::cloud::{
        ai::{
            batch_inference::v1::{
                self as pb,
                batch_inference_service_server::{BatchInferenceService, BatchInferenceServiceServer},
            },
            foundation_models::v1::{
                self as fm,
                text_generation_batch_service_server::{TextGenerationBatchService, TextGenerationBatchServiceServer},
            },
        },
        operation::{Operation, operation::Result as OpResult},
    },
};

use super::{Creator, Disarm, required, rpc_status, start_operation};
use crate::{
    engine::Engine,
    rows::ParquetWriter,
    services::generation::Generation,
    state::{
        State,
        batch::{BatchStatus, end},
        tasks::StoredTask,
    },
    storage::blobs::SyncBlobWriter,
    validate,
};

/// Rows per batch; progress counts batches, like the cloud's metadata.
const ROWS_PER_BATCH: usize = 100;
/// Rows answered at once.
const CONCURRENCY: usize = 8;
/// Line errors kept at most.
const MAX_LINE_ERRORS: usize = 1000;
/// The task type of a batch's source dataset, and of its result.
const SOURCE_TYPE: &str = "TextToTextGenerationRequest";
const RESULT_TYPE: &str = "TextToTextGeneration";

#[derive(Clone)]
pub(crate) struct Batch(pub Arc<State>);

impl Batch {
    pub(crate) fn completion_server(state: Arc<State>) -> TextGenerationBatchServiceServer<Batch> {
        TextGenerationBatchServiceServer::new(Batch(state))
    }

    pub(crate) fn inference_server(state: Arc<State>) -> BatchInferenceServiceServer<Batch> {
        BatchInferenceServiceServer::new(Batch(state))
    }
}

fn metadata(task: &pb::BatchInferenceTask, done: i64, total: i64) -> prost_types::Any {
    pack_any(&fm::BatchCompletionMetadata {
        task_id: task.task_id.clone(),
        task_status: task.status,
        completed_batches: done,
        total_batches: total,
    })
}

/// The online request of one row.
fn row_request(batch: &fm::BatchCompletionRequest, messages: Vec<fm::Message>) -> fm::CompletionRequest {
    fm::CompletionRequest {
        model_uri: batch.model_uri.clone(),
        completion_options: Some(fm::CompletionOptions {
            stream: false,
            ..batch.completion_options.unwrap_or_default()
        }),
        messages,
        response_format: batch.response_format.clone().map(|f| match f {
            fm::batch_completion_request::ResponseFormat::JsonObject(v) => {
                fm::completion_request::ResponseFormat::JsonObject(v)
            }
            fm::batch_completion_request::ResponseFormat::JsonSchema(s) => {
                fm::completion_request::ResponseFormat::JsonSchema(s)
            }
        }),
        ..Default::default()
    }
}

/// The task's copy of the request, as `Describe` shows it.
fn task_request(batch: &fm::BatchCompletionRequest, source: &str) -> pb::BatchCompletionRequest {
    let options = batch.completion_options.unwrap_or_default();
    pb::BatchCompletionRequest {
        model_uri: batch.model_uri.clone(),
        source_dataset_id: source.to_owned(),
        completion_options: Some(pb::CompletionOptions {
            temperature: options.temperature,
            max_tokens: options.max_tokens,
            reasoning_options: options.reasoning_options.map(|r| pb::ReasoningOptions { mode: r.mode }),
        }),
        data_logging_enabled: false,
        structured_output: batch.response_format.clone().map(|f| match f {
            fm::batch_completion_request::ResponseFormat::JsonObject(v) => {
                pb::batch_completion_request::StructuredOutput::JsonObject(v)
            }
            fm::batch_completion_request::ResponseFormat::JsonSchema(s) => {
                pb::batch_completion_request::StructuredOutput::JsonSchema(pb::JsonSchema { schema: s.schema })
            }
        }),
    }
}

#[tonic::async_trait]
impl TextGenerationBatchService for Batch {
    async fn completion(&self, request: Request<fm::BatchCompletionRequest>) -> Result<Response<Operation>, Status> {
        let creator = match Creator::of(&self.0, &request) {
            Ok(creator) => creator,
            Err(existing) => return Ok(Response::new(*existing)),
        };
        let r = request.into_inner();
        let model = validate::model_uri(&self.0, required("model_uri", &r.model_uri)?)?;
        let source = match &r.request_format {
            Some(fm::batch_completion_request::RequestFormat::SourceDatasetId(id)) => {
                required("source_dataset_id", id)?.to_owned()
            }
            None => return Err(Status::invalid_argument("source_dataset_id: required")),
        };
        // The options and the response format are checked as an online request would be.
        let probe = row_request(
            &r,
            vec![fm::Message { role: "user".into(), content: Some(fm::message::Content::Text("?".into())) }],
        );
        validate::completion(&self.0, &probe, self.0.engine.tokenizer())?;
        // A schema no answer can satisfy is refused now, not after every row failed.
        self.0.engine.check_format(&probe)?;
        let dataset = self.0.datasets.ready_for("source_dataset_id", &source, SOURCE_TYPE, "a batch")?;
        if dataset.rows == 0 {
            return Err(Status::failed_precondition(format!("source_dataset_id: dataset {source} has no rows")));
        }
        self.0.batch.tasks.make_room()?;

        let task_id = crate::state::new_id("fbi");
        let total_rows = u64::try_from(dataset.rows).unwrap_or(0);
        let new = creator.operation("fbi", "");
        let caller = creator.caller().to_owned();
        let state = self.0.clone();
        let op = start_operation(&self.0, new, |op_id| {
            let task = pb::BatchInferenceTask {
                task_id: task_id.clone(),
                operation_id: op_id.clone(),
                folder_id: model.folder.clone(),
                model_uri: r.model_uri.clone(),
                source_dataset_id: source.clone(),
                request: Some(pb::batch_inference_task::Request::CompletionRequest(task_request(&r, &source))),
                status: BatchStatus::Created as i32,
                created_by: caller.clone(),
                created_at: Some(SystemTime::now().into()),
                ..Default::default()
            };
            // The cloud's first metadata names only the task.
            state.operations.set_metadata(
                &op_id,
                pack_any(&fm::BatchCompletionMetadata { task_id: task_id.clone(), ..Default::default() }),
            );
            state.batch.tasks.insert(task);
            run(state.clone(), task_id.clone(), op_id, r.clone(), total_rows)
        })?;
        Ok(Response::new(self.0.operations.get(&op.id).unwrap_or(op)))
    }
}

/// The operation's work: the worker runs in a task of its own, so a cancelled operation (this
/// future dropped) only tells it to stop; it still writes its partial result and records how
/// the task ended.
async fn run(
    state: Arc<State>,
    task_id: String,
    op_id: String,
    request: fm::BatchCompletionRequest,
    total_rows: u64,
) -> Result<prost_types::Any, rpc::Status> {
    let stop = state.batch.stop_flag(&task_id);
    let on_cancel = {
        let stop = stop.clone();
        Disarm::new(move || stop.store(true, Ordering::Relaxed))
    };
    let worker = tokio::spawn({
        let (state, task_id) = (state.clone(), task_id.clone());
        async move {
            // However the worker ends (a panic included), the task does not stay running.
            let _ended = {
                let (state, task_id) = (state.clone(), task_id.clone());
                Disarm::new(move || {
                    state.batch.forget_worker(&task_id);
                    let _ = state.batch.tasks.update(&task_id, |t| {
                        end(t, BatchStatus::Failed, Some("the batch worker stopped unexpectedly"))
                    });
                })
            };
            work(&state, &task_id, &op_id, &request, total_rows, &stop).await
        }
    });
    let outcome = worker.await.unwrap_or_else(|e| Err(Status::internal(format!("the batch stopped: {e}"))));
    on_cancel.disarm();
    outcome.map_err(|s| rpc_status(&s))
}

/// What answering the rows came to.
struct Answered {
    file: SyncBlobWriter,
    written: u64,
    /// Rows that could not be answered (all of them counted, at most [`MAX_LINE_ERRORS`] kept).
    failed: u64,
    stopped: bool,
}

/// Ends a running task `status` and returns the error its operation ends with.
fn end_task(state: &State, task_id: &str, status: BatchStatus, why: Status) -> Status {
    let message = (status == BatchStatus::Failed).then(|| why.message().to_owned());
    let _ = state.batch.tasks.update(task_id, |t| end(t, status, message.as_deref()));
    why
}

/// How a stopped worker's task ends: as its operation says (cancelled, or failed by a fault),
/// unless a `Cancel` already ended it.
fn end_stopped(state: &State, task_id: &str, op_id: &str) -> Status {
    let op = state.operations.get(op_id);
    match op.and_then(|o| o.result) {
        Some(OpResult::Error(e)) if e.code != tonic::Code::Cancelled as i32 => {
            end_task(state, task_id, BatchStatus::Failed, Status::new(tonic::Code::from_i32(e.code), e.message))
        }
        _ => end_task(state, task_id, BatchStatus::Canceled, Status::cancelled("the batch was cancelled")),
    }
}

async fn work(
    state: &Arc<State>,
    task_id: &str,
    op_id: &str,
    request: &fm::BatchCompletionRequest,
    total_rows: u64,
    stop: &AtomicBool,
) -> Result<prost_types::Any, Status> {
    let step = Duration::from_millis(state.config.batch_step_ms);
    let task = state.batch.tasks.get(task_id)?;
    tokio::time::sleep(step).await;
    if stop.load(Ordering::Relaxed) {
        return Err(end_stopped(state, task_id, op_id));
    }

    // From PENDING on, the task names the dataset its answers go to, as in the cloud; from
    // here on that dataset ends READY with the answers, or goes.
    let labels = [
        ("foundation_models_batch_task_id".to_owned(), task_id.to_owned()),
        ("foundation_models_source_dataset".to_owned(), task.source_dataset_id.clone()),
    ];
    let name = format!("Batch inference {task_id} result");
    let result = state
        .datasets
        .create_result(&task.folder_id, &name, RESULT_TYPE, labels.into(), &task.created_by)
        .map_err(|e| end_task(state, task_id, BatchStatus::Failed, e))?;
    let answered = answer_all(state, task_id, op_id, request, total_rows, stop, &task, &result).await;
    // However the task ends, the dataset it names ends READY, with the answers written (none
    // when it stopped or failed before answering).
    let seal = |file: Option<SyncBlobWriter>, written: u64| {
        let (state, result) = (state.clone(), result.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let file = match file {
                    Some(file) => file,
                    None => {
                        let empty = state
                            .datasets
                            .data_writer(&result)
                            .map_err(|e| Status::internal(format!("writing results: {e}")))?;
                        ParquetWriter::new(RESULT_TYPE, empty).and_then(|w| w.finish()).map_err(Status::internal)?
                    }
                };
                state.datasets.finish_result(&result, file, written)
            })
            .await
            .map_err(|e| Status::internal(format!("storing results stopped: {e}")))?
        }
    };
    let Answered { file, written, failed, stopped } = match answered {
        Ok(a) => a,
        Err(e) => {
            let _ = seal(None, 0).await;
            return Err(if stop.load(Ordering::Relaxed) {
                end_stopped(state, task_id, op_id)
            } else {
                end_task(state, task_id, BatchStatus::Failed, e)
            });
        }
    };
    if let Err(e) = seal(Some(file), written).await {
        return Err(end_task(state, task_id, BatchStatus::Failed, e));
    }
    if stopped || stop.load(Ordering::Relaxed) {
        return Err(end_stopped(state, task_id, op_id));
    }
    if written == 0 {
        let why = Status::failed_precondition(format!("no row could be answered ({failed} rows failed)"));
        return Err(end_task(state, task_id, BatchStatus::Failed, why));
    }
    let total = i64::try_from(total_rows.div_ceil(ROWS_PER_BATCH as u64)).unwrap_or(i64::MAX);
    let task = state.batch.tasks.update(task_id, |t| end(t, BatchStatus::Completed, None))?;
    state.operations.set_metadata(op_id, metadata(&task, total, total));
    Ok(pack_any(&fm::BatchCompletionResponse {
        task_id: task_id.to_owned(),
        task_status: BatchStatus::Completed as i32,
        result_dataset_id: result,
    }))
}

/// PENDING, a turn among the running workers, IN_PROGRESS, then every row answered and written,
/// a batch at a time; line errors are recorded on the task batch by batch.
#[allow(clippy::too_many_arguments)]
async fn answer_all(
    state: &Arc<State>,
    task_id: &str,
    op_id: &str,
    request: &fm::BatchCompletionRequest,
    total_rows: u64,
    stop: &AtomicBool,
    task: &pb::BatchInferenceTask,
    result: &str,
) -> Result<Answered, Status> {
    let step = Duration::from_millis(state.config.batch_step_ms);
    let total = i64::try_from(total_rows.div_ceil(ROWS_PER_BATCH as u64)).unwrap_or(i64::MAX);
    let progress = |done: i64| {
        let status = BatchStatus::InProgress as i32;
        state.operations.set_metadata(op_id, metadata(&pb::BatchInferenceTask { status, ..task.clone() }, done, total));
    };
    let pending = state.batch.tasks.update(task_id, |t| {
        t.status = BatchStatus::Pending as i32;
        t.result_dataset_id = result.to_owned();
    })?;
    state.operations.set_metadata(op_id, metadata(&pending, 0, total));
    // A bounded number of workers run at once; the others wait PENDING.
    let _turn = loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Status::cancelled("the batch was cancelled"));
        }
        match state.batch.running.try_acquire() {
            Ok(permit) => break permit,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    tokio::time::sleep(step).await;
    state.batch.tasks.update(task_id, |t| {
        t.status = BatchStatus::InProgress as i32;
        t.started_at = Some(SystemTime::now().into());
    })?;
    progress(0);

    // Rows come from a blocking reader of the source parquet; answers go to a blocking parquet
    // writer; both through bounded channels, so memory does not grow with the dataset.
    let (rows_tx, mut rows) = tokio::sync::mpsc::channel::<Result<Value, Status>>(ROWS_PER_BATCH * 2);
    let reader = {
        let (state, source) = (state.clone(), task.source_dataset_id.clone());
        tokio::task::spawn_blocking(move || read_rows(&state, &source, &rows_tx))
    };
    let (answers_tx, mut answers) = tokio::sync::mpsc::channel::<(Value, usize)>(ROWS_PER_BATCH * 2);
    let writer = {
        let (state, result) = (state.clone(), result.to_owned());
        tokio::task::spawn_blocking(move || {
            let file =
                state.datasets.data_writer(&result).map_err(|e| Status::internal(format!("writing results: {e}")))?;
            let mut parquet = ParquetWriter::new(RESULT_TYPE, file).map_err(Status::internal)?;
            let mut written = 0u64;
            while let Some((row, bytes)) = answers.blocking_recv() {
                parquet.push(row, bytes).map_err(Status::internal)?;
                written += 1;
            }
            Ok::<_, Status>((parquet.finish().map_err(Status::internal)?, written))
        })
    };

    let (mut line, mut done, mut failed, mut kept, mut stopped) = (0u64, 0i64, 0u64, 0usize, false);
    let mut read_error = None;
    'batches: loop {
        if stop.load(Ordering::Relaxed) {
            stopped = true;
            break;
        }
        let mut batch = Vec::with_capacity(ROWS_PER_BATCH);
        while batch.len() < ROWS_PER_BATCH {
            match rows.recv().await {
                Some(Ok(row)) => {
                    line += 1;
                    batch.push((line, row));
                }
                Some(Err(e)) => {
                    read_error = Some(e);
                    break 'batches;
                }
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        let results: Vec<_> = futures_util::stream::iter(batch)
            .map(|(line, row)| answer(state, request, line, row))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok(answer) => {
                    let bytes = answer.to_string().len();
                    // The writer is gone only if it failed: its error ends the task.
                    if answers_tx.send((answer, bytes)).await.is_err() {
                        break 'batches;
                    }
                }
                Err(e) => {
                    failed += 1;
                    if kept < MAX_LINE_ERRORS {
                        kept += 1;
                        errors.push(e);
                    }
                }
            }
        }
        // Line errors show on the task as they happen; a task ended meanwhile (cancelled)
        // cannot change, which stops the worker.
        let still_running = if errors.is_empty() {
            state.batch.tasks.get(task_id).is_ok_and(|t| !t.is_finished())
        } else {
            state
                .batch
                .tasks
                .update(task_id, |t| t.errors.get_or_insert_with(Default::default).line_errors.extend(errors))
                .is_ok()
        };
        done += 1;
        progress(done);
        if !still_running {
            stopped = true;
            break;
        }
        tokio::time::sleep(step).await;
    }
    drop(rows);
    drop(answers_tx);
    let _ = reader.await;
    let (file, written) = writer.await.map_err(|e| Status::internal(format!("writing results stopped: {e}")))??;
    if let Some(e) = read_error {
        return Err(e);
    }
    Ok(Answered { file, written, failed, stopped })
}

/// Sends every row of the source dataset's parquet file, in order (blocking; the file is read
/// a row group at a time).
fn read_rows(state: &State, source: &str, tx: &tokio::sync::mpsc::Sender<Result<Value, Status>>) {
    let bad = |e: &dyn std::fmt::Display| Status::internal(format!("reading dataset {source}: {e}"));
    let read =
        state.datasets.data(source).map_err(|e| bad(&e)).and_then(|file| {
            crate::rows::read_parquet(file, |row| tx.blocking_send(Ok(row)).is_ok()).map_err(|e| bad(&e))
        });
    if let Err(e) = read {
        let _ = tx.blocking_send(Err(e));
    }
}

/// One row's answer, or its line error.
async fn answer(
    state: &Arc<State>,
    batch: &fm::BatchCompletionRequest,
    line: u64,
    row: Value,
) -> Result<Value, pb::batch_inference_task::errors_info::LineError> {
    let error =
        |message: String| pb::batch_inference_task::errors_info::LineError { line_number: line as i64, message };
    let list = row["request"]
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| error("the row has no request messages".into()))?;
    let mut messages = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let (Some(role), Some(text)) = (m["role"].as_str(), m["text"].as_str()) else {
            return Err(error(format!("request message {i} has no role or no text")));
        };
        messages
            .push(fm::Message { role: role.to_owned(), content: Some(fm::message::Content::Text(text.to_owned())) });
    }
    let generation = Generation::start(state, row_request(batch, messages), usize::MAX, false)
        .await
        .map_err(|s| error(s.message().to_owned()))?;
    let response = generation.finish().await.map_err(|s| error(s.message().to_owned()))?;
    let text = response.alternatives.first().and_then(|a| a.message.as_ref()).map(|m| &m.content);
    match text {
        Some(Some(fm::message::Content::Text(t))) => Ok(json!({"request": row["request"], "response": t})),
        _ => Err(error(
            "the model answered with something other than text (tool calls), which a batch cannot return".into(),
        )),
    }
}

/// Batch's operations for `OperationService`: rebuilt from their task, cancelled with it.
pub(crate) struct BatchOperations;

impl super::OperationKind for BatchOperations {
    /// The operation of a task the operation store no longer has (evicted, or from before a
    /// restart), rebuilt from the task, so it can always be polled by its id.
    fn rebuild(&self, state: &State, id: &str) -> Option<Operation> {
        let task = state.batch.tasks.find(|t| t.operation_id == id)?;
        let status = BatchStatus::try_from(task.status);
        let done = matches!(status, Ok(BatchStatus::Completed | BatchStatus::Failed | BatchStatus::Canceled));
        let result = done.then(|| match status {
            Ok(BatchStatus::Completed) => OpResult::Response(pack_any(&fm::BatchCompletionResponse {
                task_id: task.task_id.clone(),
                task_status: task.status,
                result_dataset_id: task.result_dataset_id.clone(),
            })),
            Ok(BatchStatus::Canceled) => OpResult::Error(rpc::Status {
                code: tonic::Code::Cancelled as i32,
                message: "the batch was cancelled".into(),
                details: vec![],
            }),
            _ => OpResult::Error(task.errors.as_ref().and_then(|e| e.status.clone()).unwrap_or(rpc::Status {
                code: tonic::Code::Internal as i32,
                message: "the batch failed".into(),
                details: vec![],
            })),
        });
        let times = [task.created_at, task.started_at, task.finished_at];
        Some(super::task_operation(&task.operation_id, "", &task.created_by, times, metadata(&task, 0, 0), result))
    }

    fn cancel(&self, state: &State, id: &str) -> bool {
        let Some(task) = state.batch.tasks.find(|t| t.operation_id == id) else { return false };
        let _ = cancel(state, &task.task_id);
        true
    }
}

/// Cancels a running task: CANCELED at once (so a worker finishing now cannot complete it),
/// then its worker stops and its operation ends cancelled. An error if it had finished.
pub(crate) fn cancel(state: &State, id: &str) -> Result<pb::BatchInferenceTask, Status> {
    let task = state.batch.tasks.update(id, |t| end(t, BatchStatus::Canceled, None))?;
    state.batch.stop(id);
    let _ = state.operations.cancel(&task.operation_id);
    Ok(task)
}

#[tonic::async_trait]
impl BatchInferenceService for Batch {
    async fn describe(
        &self,
        request: Request<pb::DescribeBatchInferenceRequest>,
    ) -> Result<Response<pb::DescribeBatchInferenceResponse>, Status> {
        let task = self.0.batch.tasks.get(required("task_id", &request.get_ref().task_id)?)?;
        Ok(Response::new(pb::DescribeBatchInferenceResponse { task: Some(task) }))
    }

    async fn list(
        &self,
        request: Request<pb::ListBatchInferencesRequest>,
    ) -> Result<Response<pb::ListBatchInferencesResponse>, Status> {
        let r = request.get_ref();
        let (tasks, next_page_token) = self.0.batch.tasks.list(&r.folder_id, r.status, r.page_size, &r.page_token)?;
        Ok(Response::new(pb::ListBatchInferencesResponse { tasks, next_page_token }))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelBatchInferenceRequest>,
    ) -> Result<Response<pb::CancelBatchInferenceResponse>, Status> {
        let id = required("task_id", &request.get_ref().task_id)?;
        cancel(&self.0, id)?;
        Ok(Response::new(pb::CancelBatchInferenceResponse { task_id: id.to_owned() }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteBatchInferenceRequest>,
    ) -> Result<Response<pb::DeleteBatchInferenceResponse>, Status> {
        let id = required("task_id", &request.get_ref().task_id)?;
        let task = self.0.batch.tasks.remove(id)?;
        Ok(Response::new(pb::DeleteBatchInferenceResponse { task_id: task.id().to_owned() }))
    }
}
