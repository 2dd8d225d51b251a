//! `DatasetService`: drafts, presigned upload URLs (served by [`storage`](crate::storage)),
//! validation as an operation that really reads every row, listing, download URLs.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::{
    google::rpc,
    pack_any,
    yandex::cloud::{
        ai::dataset::v1::{
            self as pb,
            dataset_service_server::{DatasetService, DatasetServiceServer},
        },
        operation::{Operation, operation::Result as OpResult},
    },
};

use super::{Creator, Disarm, caller, idempotency_key, required, rpc_status, start_operation};
use crate::{
    rows,
    state::{
        State,
        datasets::{TASK_TYPES, UPLOAD_FORMAT},
    },
};

pub(crate) struct Datasets(pub Arc<State>);

impl Datasets {
    pub(crate) fn server(state: Arc<State>) -> DatasetServiceServer<Datasets> {
        DatasetServiceServer::new(Datasets(state))
    }

    /// `http://host:port` (or `https://`) that presigned URLs point at.
    fn storage_base(&self) -> String {
        let scheme = if self.0.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.0.advertised)
    }
}

#[tonic::async_trait]
impl DatasetService for Datasets {
    async fn create(
        &self,
        request: Request<pb::CreateDatasetRequest>,
    ) -> Result<Response<pb::CreateDatasetResponse>, Status> {
        let caller = caller(&request);
        let key = idempotency_key(&request);
        let request = request.into_inner();
        crate::validate::folder(&self.0, &request.folder_id)?;
        let dataset = self.0.datasets.create(request, &caller, key.as_deref())?;
        Ok(Response::new(pb::CreateDatasetResponse { dataset_id: dataset.dataset_id.clone(), dataset: Some(dataset) }))
    }

    async fn describe(
        &self,
        request: Request<pb::DescribeDatasetRequest>,
    ) -> Result<Response<pb::DescribeDatasetResponse>, Status> {
        let id = required("dataset_id", &request.get_ref().dataset_id)?;
        Ok(Response::new(pb::DescribeDatasetResponse { dataset: Some(self.0.datasets.describe(id)?) }))
    }

    async fn update(
        &self,
        request: Request<pb::UpdateDatasetRequest>,
    ) -> Result<Response<pb::UpdateDatasetResponse>, Status> {
        let caller = caller(&request);
        let request = request.into_inner();
        required("dataset_id", &request.dataset_id)?;
        Ok(Response::new(pb::UpdateDatasetResponse { dataset: Some(self.0.datasets.update(request, &caller)?) }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteDatasetRequest>,
    ) -> Result<Response<pb::DeleteDatasetResponse>, Status> {
        let id = required("dataset_id", &request.get_ref().dataset_id)?.to_owned();
        // Removing files is blocking work.
        let state = self.0.clone();
        tokio::task::spawn_blocking(move || state.datasets.delete(&id))
            .await
            .map_err(|e| Status::internal(format!("deleting stopped: {e}")))??;
        Ok(Response::new(pb::DeleteDatasetResponse {}))
    }

    async fn list(
        &self,
        request: Request<pb::ListDatasetsRequest>,
    ) -> Result<Response<pb::ListDatasetsResponse>, Status> {
        let (datasets, next_page_token) = self.0.datasets.list(request.get_ref())?;
        Ok(Response::new(pb::ListDatasetsResponse { datasets, next_page_token }))
    }

    async fn get_upload_draft_url(
        &self,
        request: Request<pb::GetUploadDraftUrlRequest>,
    ) -> Result<Response<pb::GetUploadDraftUrlResponse>, Status> {
        let r = request.into_inner();
        let id = required("dataset_id", &r.dataset_id)?;
        let upload_url = self.0.datasets.upload_url(id, r.size_bytes, &self.storage_base())?;
        Ok(Response::new(pb::GetUploadDraftUrlResponse { dataset_id: r.dataset_id, upload_url }))
    }

    async fn start_multipart_upload_draft(
        &self,
        request: Request<pb::StartMultipartUploadDraftRequest>,
    ) -> Result<Response<pb::StartMultipartUploadDraftResponse>, Status> {
        let r = request.into_inner();
        let id = required("dataset_id", &r.dataset_id)?;
        let multipart_upload_urls = self.0.datasets.start_multipart(id, r.size_bytes, r.parts, &self.storage_base())?;
        Ok(Response::new(pb::StartMultipartUploadDraftResponse { dataset_id: r.dataset_id, multipart_upload_urls }))
    }

    async fn finish_multipart_upload_draft(
        &self,
        request: Request<pb::FinishMultipartUploadDraftRequest>,
    ) -> Result<Response<pb::FinishMultipartUploadDraftResponse>, Status> {
        let r = request.into_inner();
        let id = required("dataset_id", &r.dataset_id)?;
        let pieces = self.0.datasets.begin_finish(id, &r.uploaded_parts)?;
        // Joined in a task of its own: if this call is dropped meanwhile, the join still ends
        // and records its outcome, so the dataset is never left half-finished.
        let (state, id) = (self.0.clone(), id.to_owned());
        tokio::spawn(async move {
            let joined = state.datasets.blobs.concat(&format!("upload/{id}/whole"), &pieces).await;
            state.datasets.end_finish(&id, joined.is_ok());
            joined.map_err(|e| Status::internal(format!("joining the parts failed: {e}")))
        })
        .await
        .map_err(|e| Status::internal(format!("joining the parts stopped: {e}")))??;
        Ok(Response::new(pb::FinishMultipartUploadDraftResponse { dataset_id: r.dataset_id }))
    }

    async fn validate(&self, request: Request<pb::ValidateDatasetRequest>) -> Result<Response<Operation>, Status> {
        let dataset_id = required("dataset_id", &request.get_ref().dataset_id)?.to_owned();
        let creator = match Creator::of(&self.0, &request) {
            Ok(creator) => creator,
            Err(existing) => return Ok(Response::new(*existing)),
        };
        let (task_type, upload, validation) = self.0.datasets.start_validation(&dataset_id)?;
        let new = creator.operation("fds", "");
        let state = self.0.clone();
        let id = dataset_id.clone();
        let started = start_operation(&self.0, new, |op_id| {
            state.datasets.remember_validation(&id, &op_id);
            async move {
                let stop = Arc::new(AtomicBool::new(false));
                // Dropped mid-way (the operation was cancelled): the reading stops and the dataset
                // goes back to DRAFT.
                let abandon = {
                    let (state, id, stop) = (state.clone(), id.clone(), stop.clone());
                    Disarm::new(move || {
                        stop.store(true, Ordering::Relaxed);
                        if let Some(file) = state.datasets.abandon_validation(&id, validation, false) {
                            // A large file: removed off the reactor.
                            tokio::task::spawn_blocking(move || state.datasets.blobs.delete(&file));
                        }
                    })
                };
                // One turn among the validations that run at once; waiting is cancellable.
                let _turn = state.validations.acquire().await;
                let job = {
                    let (state, id, stop) = (state.clone(), id.clone(), stop.clone());
                    tokio::task::spawn_blocking(move || {
                        validate(&state, &op_id, &id, validation, &task_type, &upload, &stop)
                    })
                };
                let outcome = match job.await {
                    Ok(Ok(response)) => Ok(pack_any(&response)),
                    Ok(Err(status)) => Err(rpc_status(&status)),
                    Err(e) => Err(rpc_status(&Status::internal(format!("validation stopped: {e}")))),
                };
                if outcome.is_ok() {
                    abandon.disarm();
                }
                outcome
            }
        });
        match started {
            Ok(op) => Ok(Response::new(op)),
            Err(status) => {
                // No operation, so no validation: the uploaded file stays for a retry.
                let _kept = self.0.datasets.abandon_validation(&dataset_id, validation, true);
                Err(status)
            }
        }
    }

    async fn get_download_urls(
        &self,
        request: Request<pb::GetDownloadUrlsRequest>,
    ) -> Result<Response<pb::GetDownloadUrlsResponse>, Status> {
        let r = request.into_inner();
        let download_urls =
            self.0.datasets.download_urls(required("dataset_id", &r.dataset_id)?, &self.storage_base())?;
        Ok(Response::new(pb::GetDownloadUrlsResponse { dataset_id: r.dataset_id, download_urls }))
    }

    async fn list_upload_formats(
        &self,
        request: Request<pb::ListUploadFormatsRequest>,
    ) -> Result<Response<pb::ListUploadFormatsResponse>, Status> {
        known_task_type(&request.get_ref().task_type)?;
        Ok(Response::new(pb::ListUploadFormatsResponse { formats: vec![UPLOAD_FORMAT.into()] }))
    }

    async fn list_upload_schemas(
        &self,
        request: Request<pb::ListUploadSchemasRequest>,
    ) -> Result<Response<pb::ListUploadSchemasResponse>, Status> {
        let task_type = known_task_type(&request.get_ref().task_type)?;
        let schema = rows::upload_schema(task_type).to_string();
        Ok(Response::new(pb::ListUploadSchemasResponse {
            schemas: vec![pb::DatasetUploadSchema {
                task_type: task_type.to_owned(),
                upload_format: UPLOAD_FORMAT.into(),
                schema,
            }],
        }))
    }

    async fn list_types(&self, _: Request<pb::ListTypesRequest>) -> Result<Response<pb::ListTypesResponse>, Status> {
        Ok(Response::new(pb::ListTypesResponse { types: TASK_TYPES.iter().map(|t| (*t).to_owned()).collect() }))
    }
}

fn known_task_type(task_type: &str) -> Result<&str, Status> {
    if TASK_TYPES.contains(&task_type) {
        Ok(task_type)
    } else {
        Err(Status::invalid_argument(format!(
            "task_type: unknown task type `{}`; use one of {}",
            crate::text::shown(task_type),
            TASK_TYPES.join(", ")
        )))
    }
}

/// Reads every row of the uploaded file against the task type, writes the valid rows as
/// parquet, and reports progress in the operation's metadata as it goes (blocking).
fn validate(
    state: &State,
    op_id: &str,
    id: &str,
    validation: u64,
    task_type: &str,
    upload: &str,
    stop: &AtomicBool,
) -> Result<pb::ValidateDatasetResponse, Status> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::Interrupted => Status::cancelled("validation was cancelled"),
        _ => Status::internal(format!("reading the uploaded file: {e}")),
    };
    let total = rows::count_rows(state.datasets.blobs.reader(upload).map_err(io)?, stop).map_err(io)?;
    let report = |processed: u64, valid: u64| {
        let metadata = pb::ValidateDatasetMetadata {
            dataset_id: id.to_owned(),
            valid_rows: valid as i64,
            processed_rows: processed as i64,
            total_rows: total as i64,
        };
        state.operations.set_metadata(op_id, pack_any(&metadata));
    };
    report(0, 0);
    let mut parquet = rows::ParquetWriter::new(task_type, state.datasets.data_writer(id).map_err(io)?)
        .map_err(|e| Status::internal(format!("writing the dataset: {e}")))?;
    let mut failed_write = None;
    let checked = rows::check_lines(
        task_type,
        state.datasets.blobs.reader(upload).map_err(io)?,
        |row, bytes| {
            parquet.push(row, bytes).map_err(|e| {
                failed_write = Some(e.clone());
                std::io::Error::other(e)
            })
        },
        report,
        stop,
    )
    .map_err(|e| match failed_write.take() {
        Some(w) => Status::internal(format!("writing the dataset: {w}")),
        None => io(e),
    })?;
    let is_valid = checked.findings.is_empty();
    let errors = checked.findings.into_proto();
    let written = if is_valid {
        Some(parquet.finish().map_err(|e| Status::internal(format!("writing the dataset: {e}")))?)
    } else {
        None
    };
    state.datasets.finish_validation(id, validation, checked.valid, errors.clone(), written)?;
    Ok(pb::ValidateDatasetResponse { dataset_id: id.to_owned(), is_valid, errors })
}

/// Validation's operations for `OperationService`: rebuilt from their dataset when the store no
/// longer has them (evicted, or from before a restart). Cancelling one is the store's own
/// business (the work is dropped), so nothing else is done here.
pub(crate) struct ValidationOperations;

impl super::OperationKind for ValidationOperations {
    fn rebuild(&self, state: &State, id: &str) -> Option<Operation> {
        let info = state.datasets.validated_by(id)?;
        use pb::dataset_info::Status as D;
        let result = match D::try_from(info.status) {
            Ok(D::Ready | D::Invalid) => OpResult::Response(pack_any(&pb::ValidateDatasetResponse {
                dataset_id: info.dataset_id.clone(),
                is_valid: info.status == D::Ready as i32,
                errors: info.validation_error.clone(),
            })),
            // Back to DRAFT: the validation was cut off by a restart or cancelled.
            _ => OpResult::Error(rpc::Status {
                code: tonic::Code::Aborted as i32,
                message: format!(
                    "the validation of dataset {} did not finish (the emulator stopped or it was cancelled); \
                     upload the file and validate again",
                    info.dataset_id
                ),
                details: vec![],
            }),
        };
        Some(Operation {
            id: id.to_owned(),
            description: String::new(),
            created_at: info.updated_at,
            created_by: info.created_by.clone(),
            modified_at: info.updated_at,
            done: true,
            metadata: None,
            result: Some(result),
        })
    }

    fn cancel(&self, _state: &State, _id: &str) -> bool {
        false
    }
}
