//! A dataset to be: a local file and what the cloud should know about it; uploading it.

use std::{collections::BTreeMap, fmt, path::PathBuf, sync::Arc, time::Duration};

use tokio::time::Instant;

use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1 as pb;

use super::{
    Dataset, RPC_TIMEOUT, TaskType, ValidationError, ValidationFailure,
    upload::{self, Piece, PutBudget, Sent},
};
use crate::{
    call::{Action, Call, CallOptions},
    error::{Error, ErrorKind, Remedy, Result},
    operations::{
        Operation, Pace, Progress, ProgressFn, ProgressUnit, Wait, WaitOptions, sealed, unpack, wait_settings,
    },
    sdk::Sdk,
    transport::rpc,
};

const MIB: u64 = 1 << 20;
/// Files larger than this go up in parts (the official SDK's default).
const DEFAULT_CHUNK: u64 = 100 * MIB;
/// Object storage's bounds for a part.
const MIN_CHUNK: u64 = 5 * MIB;
const MAX_CHUNK: u64 = 5 * 1024 * MIB;
/// Object storage's limit of parts in one upload.
const MAX_PARTS: usize = 10_000;

/// A local file to upload as a dataset, with its name, labels and upload settings. Nothing is
/// sent until [`upload`](Self::upload) or [`upload_deferred`](Self::upload_deferred).
#[derive(Clone)]
pub struct DatasetDraft {
    sdk: Sdk,
    path: PathBuf,
    task_type: Option<TaskType>,
    upload_format: String,
    name: Option<String>,
    description: Option<String>,
    metadata: Option<String>,
    labels: BTreeMap<String, String>,
    allow_data_logging: bool,
    chunk_size: u64,
    parallelism: usize,
    upload_timeout: Duration,
}

impl fmt::Debug for DatasetDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatasetDraft")
            .field("path", &self.path)
            .field("task_type", &self.task_type)
            .field("upload_format", &self.upload_format)
            .field("name", &self.name)
            .field("chunk_size", &self.chunk_size)
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

impl DatasetDraft {
    pub(crate) fn new(sdk: Sdk, path: PathBuf, task_type: Option<TaskType>) -> DatasetDraft {
        DatasetDraft {
            sdk,
            path,
            task_type,
            upload_format: "jsonlines".into(),
            name: None,
            description: None,
            metadata: None,
            labels: BTreeMap::new(),
            allow_data_logging: false,
            chunk_size: DEFAULT_CHUNK,
            parallelism: 4,
            upload_timeout: Duration::from_secs(360),
        }
    }

    /// What the rows are for (set already by the task-type shortcuts of
    /// [`Datasets`](super::Datasets)).
    pub fn task_type(mut self, task_type: impl Into<TaskType>) -> Self {
        self.task_type = Some(task_type.into());
        self
    }

    /// File format (default `jsonlines`).
    pub fn upload_format(mut self, format: impl Into<String>) -> Self {
        self.upload_format = format.into();
        self
    }

    /// Dataset name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Free-form metadata.
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Whether the cloud may log the data (default false).
    pub fn allow_data_logging(mut self, allow: bool) -> Self {
        self.allow_data_logging = allow;
        self
    }

    /// Files larger than this go up in parts of at least this size (5 MiB – 5 GiB, default
    /// 100 MiB).
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Parts sent at once (default 4).
    pub fn parallelism(mut self, parts: usize) -> Self {
        self.parallelism = parts.max(1);
        self
    }

    /// Timeout of each PUT attempt (default 6 minutes).
    pub fn upload_timeout(mut self, timeout: Duration) -> Self {
        self.upload_timeout = timeout;
        self
    }

    /// Creates the dataset, uploads the file and starts validation; returns the validation's
    /// operation, which ends in the [`Dataset`]. If the upload fails, the new dataset is
    /// deleted and the error names the step. The call's timeout (default 6 h) bounds all of
    /// it; each RPC attempt is bounded by the attempt timeout (default 60 s) and each PUT by
    /// [`upload_timeout`](Self::upload_timeout); the PUTs share the call's retry policy.
    /// `.on_progress` on the call reports the bytes sent.
    pub fn upload_deferred(&self) -> Call<UploadDeferred> {
        Call::new(UploadDeferred { draft: self.clone(), progress: None })
    }

    /// Uploads and waits for validation; returns the ready dataset. Like
    /// [`upload_deferred`](Self::upload_deferred), then like the validation's
    /// [`wait`](Operation::wait) (its settings are on the call); `.on_progress` reports the
    /// bytes sent, then the rows validated.
    pub fn upload(&self) -> Call<Upload> {
        Call::new(Upload { draft: self.clone(), wait: WaitOptions::new(Pace::VALIDATION), accept_invalid: false })
    }

    /// Checks what can be checked before anything is sent; returns the file size.
    async fn check(&self) -> Result<(u64, TaskType)> {
        let task_type = self.task_type.clone().ok_or_else(|| {
            Error::invalid_input(
                "the draft has no task type: use a shortcut such as sdk.datasets().completions() or DatasetDraft::task_type",
            )
        })?;
        if self.upload_format.trim().is_empty() {
            return Err(Error::invalid_input("the upload format is empty: use e.g. \"jsonlines\""));
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&self.chunk_size) {
            return Err(Error::invalid_input(format!(
                "chunk size {} bytes is outside 5 MiB – 5 GiB, the bounds of an object-storage part",
                self.chunk_size
            )));
        }
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| Error::invalid_input(format!("cannot read dataset file {}: {e}", self.path.display())))?;
        if !meta.is_file() {
            return Err(Error::invalid_input(format!("{} is not a regular file", self.path.display())));
        }
        if meta.len() == 0 {
            return Err(Error::invalid_input(format!("{} is empty: a dataset needs rows", self.path.display())));
        }
        if meta.len() > self.chunk_size {
            let parts = upload::parts(meta.len(), self.chunk_size);
            let largest = parts.iter().map(|(_, len)| *len).max().unwrap_or(0);
            if parts.len() > MAX_PARTS || largest > MAX_CHUNK {
                let (min, max) = (meta.len().div_ceil(MAX_PARTS as u64).max(MIN_CHUNK), MAX_CHUNK / 2);
                return Err(Error::invalid_input(format!(
                    "with a chunk size of {} bytes, {} would go up in {} parts of up to {largest} bytes; object storage \
                     takes at most {MAX_PARTS} parts of at most 5 GiB",
                    self.chunk_size,
                    self.path.display(),
                    parts.len(),
                ))
                .with_remedy(Remedy::ChooseChunkSize { min, max }));
            }
        }
        Ok((meta.len(), task_type))
    }

    /// Creates, uploads and starts validation, all by `deadline`.
    async fn start(
        self,
        options: &CallOptions,
        deadline: Instant,
        progress: Option<ProgressFn>,
    ) -> Result<Operation<Dataset>> {
        let (size, task_type) = self.check().await?;
        let transport = self.sdk.transport();
        let create = pb::CreateDatasetRequest {
            name: self.name.clone().unwrap_or_default(),
            folder_id: self.sdk.folder_id().to_owned(),
            description: self.description.clone().unwrap_or_default(),
            metadata: self.metadata.clone().unwrap_or_default(),
            task_type: task_type.as_str().to_owned(),
            labels: self.labels.clone().into_iter().collect(),
            upload_format: self.upload_format.clone(),
            allow_data_log: self.allow_data_logging,
        };
        let created: pb::CreateDatasetResponse =
            transport.unary(&rpc::DATASET_CREATE, create, &options.until(deadline)).await?;
        let id = created.dataset_id;
        match self.send(&id, size, options, deadline, progress).await {
            Ok(()) => {}
            Err((step, e)) => return Err(self.abandon(&id, step, e).await),
        }
        let validate = pb::ValidateDatasetRequest { dataset_id: id.clone() };
        let started: Result<yandex_cloud_ml_proto::yandex::cloud::operation::Operation> =
            transport.unary(&rpc::DATASET_VALIDATE, validate, &options.until(deadline)).await;
        match started {
            Ok(op) => Ok(Operation::new(self.sdk.clone(), op.id).with_subject(&id)),
            Err(e) => Err(self.abandon(&id, "Validate", e).await),
        }
    }

    /// Deletes a dataset whose upload failed at `step`, so nothing is left behind, and says so
    /// in the error.
    async fn abandon(&self, id: &str, step: &str, e: Error) -> Error {
        let cleanup = super::dataset::delete(&self.sdk, id, &CallOptions::with_timeout(RPC_TIMEOUT)).await;
        let what = match cleanup {
            Ok(()) => "the draft dataset was deleted".to_owned(),
            Err(c) => format!("deleting the draft dataset failed too: {c}"),
        };
        e.context(&format!("uploading {} to dataset {id} failed at {step} ({what})", self.path.display()))
    }

    /// Sends the file: one PUT, or a multipart upload. On failure, names the step.
    async fn send(
        &self,
        id: &str,
        size: u64,
        options: &CallOptions,
        deadline: Instant,
        progress: Option<ProgressFn>,
    ) -> std::result::Result<(), (&'static str, Error)> {
        let transport = self.sdk.transport();
        let sent = Sent::new(size, progress);
        let budget = PutBudget { options: options.clone(), deadline, put_timeout: self.upload_timeout };
        if size <= self.chunk_size {
            let request = pb::GetUploadDraftUrlRequest { dataset_id: id.to_owned(), size_bytes: size as i64 };
            let response: pb::GetUploadDraftUrlResponse = transport
                .unary(&rpc::DATASET_GET_UPLOAD_DRAFT_URL, request, &options.until(deadline))
                .await
                .map_err(|e| ("GetUploadDraftUrl", e))?;
            let piece = Piece { url: response.upload_url, offset: 0, len: size };
            upload::put_all(&self.sdk, self.path.clone(), vec![piece], 1, &budget, sent)
                .await
                .map_err(|e| ("the upload PUT", e))?;
            return Ok(());
        }
        let bounds = upload::parts(size, self.chunk_size);
        let request = pb::StartMultipartUploadDraftRequest {
            dataset_id: id.to_owned(),
            size_bytes: size as i64,
            parts: bounds.len() as i64,
        };
        let response: pb::StartMultipartUploadDraftResponse = transport
            .unary(&rpc::DATASET_START_MULTIPART_UPLOAD_DRAFT, request, &options.until(deadline))
            .await
            .map_err(|e| ("StartMultipartUploadDraft", e))?;
        if response.multipart_upload_urls.len() != bounds.len() {
            let e = Error::decode(format!(
                "asked for {} part URLs, got {}",
                bounds.len(),
                response.multipart_upload_urls.len()
            ));
            return Err(("StartMultipartUploadDraft", e));
        }
        let pieces = response
            .multipart_upload_urls
            .into_iter()
            .zip(bounds)
            .map(|(url, (offset, len))| Piece { url, offset, len })
            .collect();
        let etags = upload::put_all(&self.sdk, self.path.clone(), pieces, self.parallelism, &budget, sent)
            .await
            .map_err(|e| ("a part PUT", e))?;
        let uploaded_parts = etags
            .into_iter()
            .enumerate()
            .map(|(i, etag)| {
                let etag = etag.ok_or_else(|| {
                    Error::new(ErrorKind::Http, format!("the storage answer to part {} has no ETag header", i + 1))
                })?;
                Ok(pb::UploadedPartInfo { part_num: i as i64 + 1, etag })
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| ("a part PUT", e))?;
        let request = pb::FinishMultipartUploadDraftRequest { dataset_id: id.to_owned(), uploaded_parts };
        let _: pb::FinishMultipartUploadDraftResponse = transport
            .unary(&rpc::DATASET_FINISH_MULTIPART_UPLOAD_DRAFT, request, &options.until(deadline))
            .await
            .map_err(|e| ("FinishMultipartUploadDraft", e))?;
        Ok(())
    }
}

/// Default budget of an upload, its validation included; each RPC attempt gets a minute.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// [`DatasetDraft::upload_deferred`].
pub struct UploadDeferred {
    draft: DatasetDraft,
    progress: Option<ProgressFn>,
}

impl fmt::Debug for UploadDeferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadDeferred").field("draft", &self.draft).finish_non_exhaustive()
    }
}

impl Operation<Dataset> {
    /// The id of the dataset this upload created and validates, known to the handle
    /// [`DatasetDraft::upload_deferred`] returns (a handle re-attached by operation id does not
    /// know it: `None`).
    pub fn dataset_id(&self) -> Option<&str> {
        self.subject()
    }
}

impl Call<UploadDeferred> {
    /// Called with the bytes sent as the file goes up.
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.action_mut().progress = Some(Arc::new(callback));
        self
    }
}

impl Action for UploadDeferred {
    type Output = Operation<Dataset>;
    const DEFAULT_TIMEOUT: Duration = UPLOAD_TIMEOUT;
    const DEFAULT_ATTEMPT_TIMEOUT: Option<Duration> = Some(RPC_TIMEOUT);

    async fn execute(self, options: CallOptions) -> Result<Operation<Dataset>> {
        let deadline = options.deadline();
        self.draft.start(&options, deadline, self.progress).await
    }
}

/// [`DatasetDraft::upload`].
pub struct Upload {
    draft: DatasetDraft,
    wait: WaitOptions,
    accept_invalid: bool,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("draft", &self.draft)
            .field("wait", &self.wait)
            .field("accept_invalid", &self.accept_invalid)
            .finish()
    }
}

wait_settings!(Call<Upload>, |this| this.action_mut().wait);

impl Call<Upload> {
    /// Return a dataset that failed validation (status `Invalid`, errors in
    /// [`DatasetInfo::validation_errors`](super::DatasetInfo)) instead of failing with
    /// [`ErrorKind::InvalidDataset`].
    pub fn accept_invalid(mut self, accept: bool) -> Self {
        self.action_mut().accept_invalid = accept;
        self
    }
}

impl Action for Upload {
    type Output = Dataset;
    const DEFAULT_TIMEOUT: Duration = UPLOAD_TIMEOUT;
    const DEFAULT_ATTEMPT_TIMEOUT: Option<Duration> = Some(RPC_TIMEOUT);

    async fn execute(self, options: CallOptions) -> Result<Dataset> {
        let Upload { draft, mut wait, accept_invalid } = self;
        let sdk = draft.sdk.clone();
        let deadline = options.deadline();
        let operation = draft.start(&options, deadline, wait.on_progress.clone()).await?;
        wait.timeout = deadline.saturating_duration_since(Instant::now());
        wait.retry = options.retry.clone();
        match Wait::with_options(operation, wait).await {
            Err(e) if accept_invalid && e.kind() == ErrorKind::InvalidDataset => {
                let Some(failure) = e.details::<ValidationFailure>() else { return Err(e) };
                super::describe(&sdk, &failure.dataset_id, &options.until(deadline)).await
            }
            other => other,
        }
    }
}

impl sealed::Output for Dataset {
    const SERVICE: rpc::OperationRoute = rpc::OperationRoute::FoundationModels;
    const PACE: Pace = Pace::VALIDATION;

    async fn from_response(sdk: &Sdk, response: prost_types::Any, options: &CallOptions) -> Result<Self> {
        let result: pb::ValidateDatasetResponse = unpack(&response)?;
        if !result.is_valid {
            let errors: Vec<ValidationError> = result.errors.into_iter().map(ValidationError::from_proto).collect();
            let shown: Vec<String> = errors.iter().take(3).map(ToString::to_string).collect();
            let more = errors.len().saturating_sub(3);
            let message = format!(
                "dataset {} failed validation: {}{}",
                result.dataset_id,
                shown.join("; "),
                if more > 0 { format!("; and {more} more") } else { String::new() }
            );
            return Err(Error::new(ErrorKind::InvalidDataset, message)
                .with_details(ValidationFailure { dataset_id: result.dataset_id, errors }));
        }
        super::describe(sdk, &result.dataset_id, options).await
    }

    fn progress(metadata: Option<&prost_types::Any>) -> Option<Progress> {
        let m: pb::ValidateDatasetMetadata = unpack(metadata?).ok()?;
        let total = u64::try_from(m.total_rows).ok().filter(|t| *t > 0);
        Some(Progress::new("validating", u64::try_from(m.processed_rows).unwrap_or(0), total, ProgressUnit::Rows))
    }
}
