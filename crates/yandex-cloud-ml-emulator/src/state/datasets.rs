//! Datasets: their records, the state of their uploads, and their files. A dataset moves
//! DRAFT → (file uploaded) → VALIDATING → READY or INVALID, as in the cloud. Records are kept
//! in memory and, with a data directory, as `datasets/<id>.pb` next to the blobs.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
    time::SystemTime,
};

use axum::http::StatusCode;
use prost::Message;
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1 as pb;

use super::paging::{self, Order, Position};
use crate::storage::{
    Grant, S3Error, Signer,
    blobs::{Blobs, Staged, SyncBlobWriter},
    s3_error,
};

fn denied(why: &str) -> S3Error {
    s3_error(StatusCode::FORBIDDEN, "AccessDenied", why)
}

/// Task types the cloud lists (`ListTypes`).
pub(crate) const TASK_TYPES: &[&str] = &[
    "TextToTextGeneration",
    "TextToTextGenerationRequest",
    "TextClassificationMultilabel",
    "TextClassificationMulticlass",
    "TextEmbeddingsPair",
    "TextEmbeddingsTriplet",
];

/// The one upload format the emulator reads.
pub(crate) const UPLOAD_FORMAT: &str = "jsonlines";

/// Largest single PUT and largest part, S3's limits.
const MAX_PUT_BYTES: u64 = 5 << 30;
/// Most parts of a multipart upload (S3's limit).
const MAX_PARTS: i64 = 10_000;

/// The file of a validated dataset, under the key the cloud serves it as.
pub(crate) const DATA_FILE: &str = "main";

/// Where a dataset's upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Upload {
    /// No URL asked for yet.
    None,
    /// One URL for the whole file.
    Whole { size: u64 },
    /// Part URLs; the parts received so far with their ETags and sizes.
    Parts { size: u64, parts: u32, received: BTreeMap<u32, (String, u64)> },
    /// The file is complete and waits for validation. A file sent in one PUT (`whole`, its
    /// size) may be sent again until then, as S3 allows a presigned PUT to be repeated.
    Uploaded { whole: Option<u64> },
    /// Validation took the file; no more uploads.
    Closed,
}

struct Record {
    info: pb::DatasetInfo,
    upload: Upload,
    /// Counts validations, so a cancelled one that finishes late cannot touch a later one.
    validation: u64,
    /// Counts uploads, signed into their URLs, so a URL of an earlier upload is refused.
    generation: u64,
    /// The operation of the latest validation (kept as `<id>.validation` with a data
    /// directory), so it can be polled after the operation store forgot it.
    validation_op: Option<String>,
}

/// The dataset store.
pub(crate) struct Datasets {
    records: Mutex<HashMap<String, Record>>,
    /// Datasets by the idempotency key of the `Create` that made them, so a retried call
    /// gets the same dataset (bounded: cleared when it grows past the dataset limit).
    created: Mutex<HashMap<String, String>>,
    pub blobs: Blobs,
    pub signer: Signer,
    /// `datasets/` under the data directory.
    dir: Option<PathBuf>,
    max: usize,
}

pub(crate) fn not_found(id: &str) -> Status {
    Status::not_found(format!("Dataset {id} not found"))
}

/// The first upload number of a dataset loaded from the data directory: later than any number
/// an earlier run gave out (its microseconds since the epoch), so an upload URL voided before a
/// restart stays void after it.
fn first_generation() -> u64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// What is left of a dataset the emulator cannot read back: INVALID, saying why and what to do.
fn damaged(id: &str, why: &str) -> pb::DatasetInfo {
    pb::DatasetInfo {
        dataset_id: id.to_owned(),
        status: pb::dataset_info::Status::Invalid as i32,
        validation_error: vec![pb::ValidationError {
            error: "damaged".into(),
            error_description: format!("{why}; delete the dataset and upload it again"),
            row_numbers: Vec::new(),
        }],
        ..Default::default()
    }
}

fn upload_dir(id: &str) -> String {
    format!("upload/{id}")
}

fn upload_key(id: &str) -> String {
    format!("upload/{id}/whole")
}

fn part_key(id: &str, part: u32) -> String {
    format!("upload/{id}/part-{part}")
}

fn data_key(id: &str) -> String {
    format!("data/{id}/{DATA_FILE}")
}

pub(crate) fn status_name(status: i32) -> &'static str {
    pb::dataset_info::Status::try_from(status).map_or("UNKNOWN", |s| s.as_str_name())
}

/// Ids come from clients: only the emulator's own shape may reach a file name.
fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 50 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Datasets {
    /// The store, with whatever an earlier run left in `data_dir`.
    pub(crate) fn open(data_dir: Option<&Path>, max: usize, max_stored_bytes: u64) -> std::io::Result<Datasets> {
        let dir = data_dir.map(|d| d.join("datasets"));
        if let Some(dir) = &dir {
            crate::durable::create_dir(dir)?;
        }
        let datasets = Datasets {
            records: Mutex::default(),
            created: Mutex::default(),
            blobs: Blobs::new(data_dir, max_stored_bytes)?,
            signer: Signer::new(data_dir)?,
            dir,
            max: max.max(1),
        };
        datasets.load()?;
        Ok(datasets)
    }

    /// Reads the records of an earlier run. A dataset caught mid-validation goes back to
    /// DRAFT with its file, so `Validate` can run again. A damaged record, or a READY dataset
    /// whose stored file is missing or not the size recorded, is kept as INVALID with an error
    /// that says so (and logged), never dropped or served as good.
    fn load(&self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let mut records = self.lock();
        for entry in crate::durable::read_dir(dir)?.flatten() {
            let path = entry.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("partial") => {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                Some("pb") => {}
                _ => continue,
            }
            let Some(id) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
            let read = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| pb::DatasetInfo::decode(b.as_slice()).map_err(|e| e.to_string()))
                .and_then(|info| {
                    if info.dataset_id == id {
                        Ok(info)
                    } else {
                        Err(format!("it names dataset {:?}", info.dataset_id))
                    }
                });
            let mut info = match read {
                Ok(info) => info,
                Err(why) => {
                    tracing::error!(file = %path.display(), error = %why, "a damaged dataset record; the dataset is kept as INVALID");
                    damaged(&id, &format!("the emulator's record of this dataset is damaged ({why})"))
                }
            };
            let ready = info.status == pb::dataset_info::Status::Ready as i32;
            let stored = self.blobs.len(&data_key(&id));
            if ready && stored != Some(info.size_bytes as u64) {
                let why = match stored {
                    None => "its stored file is missing".to_owned(),
                    Some(n) => format!("its stored file has {n} bytes, not the {} recorded", info.size_bytes),
                };
                tracing::error!(dataset = %id, error = %why, "a damaged dataset; it is kept as INVALID");
                info.status = pb::dataset_info::Status::Invalid as i32;
                info.validation_error = damaged(&id, &why).validation_error;
                info.rows = 0;
                self.persist(&info);
            }
            let has_file = self.blobs.len(&upload_key(&info.dataset_id)).is_some();
            let upload = match pb::dataset_info::Status::try_from(info.status) {
                // The results of a batch that was running when the emulator stopped.
                Ok(pb::dataset_info::Status::Validating)
                    if info.labels.contains_key("foundation_models_batch_task_id") =>
                {
                    info.status = pb::dataset_info::Status::Invalid as i32;
                    Upload::Closed
                }
                Ok(pb::dataset_info::Status::Validating) => {
                    info.status = pb::dataset_info::Status::Draft as i32;
                    if has_file { Upload::Uploaded { whole: None } } else { Upload::None }
                }
                Ok(pb::dataset_info::Status::Draft) if has_file => Upload::Uploaded { whole: None },
                Ok(pb::dataset_info::Status::Draft) => Upload::None,
                _ => Upload::Closed,
            };
            let validation_op = std::fs::read_to_string(dir.join(format!("{id}.validation"))).ok();
            // Parts of a multipart upload do not outlive a restart (the upload is not kept).
            for key in self.blobs.keys_with_prefix(&format!("{}/part-", upload_dir(&id))) {
                self.blobs.delete(&key);
            }
            records.insert(
                info.dataset_id.clone(),
                Record { info, upload, validation: 0, generation: first_generation(), validation_op },
            );
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves a record; called with the records locked, so saves happen in the order of the
    /// changes.
    fn persist(&self, info: &pb::DatasetInfo) {
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{}.pb", info.dataset_id));
            if let Err(e) = crate::durable::replace(&path, &info.encode_to_vec()) {
                tracing::error!(error = %e, dataset = %info.dataset_id, "could not save the dataset record");
            }
        }
    }

    /// Applies `change` to a dataset's record (stamping `updated_at`) and saves it.
    fn change<T>(&self, id: &str, change: impl FnOnce(&mut Record) -> Result<T, Status>) -> Result<T, Status> {
        let mut records = self.lock();
        let record = records.get_mut(id).ok_or_else(|| not_found(id))?;
        let out = change(record)?;
        record.info.updated_at = Some(SystemTime::now().into());
        self.persist(&record.info);
        Ok(out)
    }

    /// `Create`; a retry with the same idempotency key gets the dataset the first call made.
    pub(crate) fn create(
        &self,
        r: pb::CreateDatasetRequest,
        caller: &str,
        idempotency_key: Option<&str>,
    ) -> Result<pb::DatasetInfo, Status> {
        let earlier =
            idempotency_key.and_then(|k| self.created.lock().unwrap_or_else(|e| e.into_inner()).get(k).cloned());
        if let Some(info) = earlier.and_then(|id| self.describe(&id).ok()) {
            return Ok(info);
        }
        if r.folder_id.trim().is_empty() {
            return Err(Status::invalid_argument("folder_id: required"));
        }
        if !TASK_TYPES.contains(&r.task_type.as_str()) {
            return Err(Status::invalid_argument(format!(
                "task_type: unknown task type `{}`; use one of {}",
                crate::text::shown(&r.task_type),
                TASK_TYPES.join(", ")
            )));
        }
        if r.upload_format != UPLOAD_FORMAT {
            return Err(Status::invalid_argument(format!(
                "upload_format: `{}` is not supported; use {UPLOAD_FORMAT}",
                crate::text::shown(&r.upload_format)
            )));
        }
        for (field, value, limit) in
            [("name", &r.name, 1024), ("description", &r.description, 4096), ("metadata", &r.metadata, 65_536)]
        {
            if value.len() > limit {
                return Err(Status::invalid_argument(format!("{field}: longer than {limit} bytes")));
            }
        }
        let now = SystemTime::now();
        let info = pb::DatasetInfo {
            dataset_id: super::new_id("fds"),
            folder_id: r.folder_id,
            name: r.name,
            description: r.description,
            metadata: r.metadata,
            status: pb::dataset_info::Status::Draft as i32,
            task_type: r.task_type,
            created_at: Some(now.into()),
            updated_at: Some(now.into()),
            created_by_id: caller.to_owned(),
            created_by: caller.to_owned(),
            labels: r.labels,
            allow_data_log: r.allow_data_log,
            ..Default::default()
        };
        let mut records = self.lock();
        if records.len() >= self.max {
            return Err(Status::resource_exhausted(format!(
                "too many datasets (limit {}); delete some first",
                self.max
            )));
        }
        self.persist(&info);
        records.insert(
            info.dataset_id.clone(),
            Record { info: info.clone(), upload: Upload::None, validation: 0, generation: 0, validation_op: None },
        );
        drop(records);
        if let Some(key) = idempotency_key {
            let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
            if created.len() >= self.max {
                created.clear();
            }
            created.insert(key.to_owned(), info.dataset_id.clone());
        }
        Ok(info)
    }

    /// `Describe`.
    pub(crate) fn describe(&self, id: &str) -> Result<pb::DatasetInfo, Status> {
        self.lock().get(id).map(|r| r.info.clone()).ok_or_else(|| not_found(id))
    }

    /// The dataset named in `field` if it exists, is READY and holds `task_type` rows (what
    /// `user`, e.g. "a batch", needs); otherwise the status that says which of these fails.
    pub(crate) fn ready_for(
        &self,
        field: &str,
        id: &str,
        task_type: &str,
        user: &str,
    ) -> Result<pb::DatasetInfo, Status> {
        let info = self
            .describe(id)
            .map_err(|_| Status::not_found(format!("{field}: dataset {} not found", crate::text::shown(id))))?;
        if info.status != pb::dataset_info::Status::Ready as i32 {
            return Err(Status::failed_precondition(format!(
                "{field}: dataset {id} is {}; {user} needs a READY dataset (upload it and wait for its validation)",
                status_name(info.status)
            )));
        }
        if info.task_type != task_type {
            return Err(Status::failed_precondition(format!(
                "{field}: dataset {id} holds {} rows; {user} reads {task_type} datasets",
                info.task_type
            )));
        }
        Ok(info)
    }

    /// `Update` with exactly the fields its mask names.
    pub(crate) fn update(&self, r: pb::UpdateDatasetRequest, caller: &str) -> Result<pb::DatasetInfo, Status> {
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Status::invalid_argument("update_mask: name at least one of name, description, labels"));
        }
        for p in &paths {
            if !matches!(p.as_str(), "name" | "description" | "labels") {
                return Err(Status::invalid_argument(format!(
                    "update_mask: `{}` cannot be updated; use name, description or labels",
                    crate::text::shown(p)
                )));
            }
        }
        self.change(&r.dataset_id, |record| {
            for p in &paths {
                match p.as_str() {
                    "name" => record.info.name = r.name.clone(),
                    "description" => record.info.description = r.description.clone(),
                    _ => record.info.labels = r.labels.clone(),
                }
            }
            record.info.updated_by = caller.to_owned();
            Ok(record.info.clone())
        })
    }

    /// `Delete`: the record (its saved file first, so a crash cannot bring the dataset back),
    /// then every file (blocking with a data directory).
    pub(crate) fn delete(&self, id: &str) -> Result<(), Status> {
        {
            let mut records = self.lock();
            records.get(id).ok_or_else(|| not_found(id))?;
            if let Some(dir) = &self.dir {
                let _ = std::fs::remove_file(dir.join(format!("{id}.pb")));
                let _ = std::fs::remove_file(dir.join(format!("{id}.validation")));
            }
            records.remove(id);
        }
        self.blobs.delete_dir(&upload_dir(id));
        self.blobs.delete_dir(&format!("data/{id}"));
        Ok(())
    }

    /// `List`: filtered, oldest first, in pages. The page token is the id the page ended at.
    pub(crate) fn list(&self, r: &pb::ListDatasetsRequest) -> Result<(Vec<pb::DatasetInfo>, String), Status> {
        if r.folder_id.trim().is_empty() {
            return Err(Status::invalid_argument("folder_id: required"));
        }
        let pattern = r.dataset_name_pattern.to_lowercase();
        let all: Vec<pb::DatasetInfo> = self
            .lock()
            .values()
            .map(|rec| &rec.info)
            .filter(|i| i.folder_id == r.folder_id)
            .filter(|i| r.status.is_empty() || r.status.contains(&i.status))
            .filter(|i| r.task_type_filter.is_empty() || r.task_type_filter.contains(&i.task_type))
            .filter(|i| r.dataset_ids.is_empty() || r.dataset_ids.contains(&i.dataset_id))
            .filter(|i| pattern.is_empty() || i.name.to_lowercase().contains(&pattern))
            .cloned()
            .collect();
        let position = |i: &pb::DatasetInfo| Position::new(i.created_at, &i.dataset_id);
        paging::page(all, position, Order::OldestFirst, r.page_size, &r.page_token)
    }

    fn draft<'a>(records: &'a mut HashMap<String, Record>, id: &str) -> Result<&'a mut Record, Status> {
        let record = records.get_mut(id).ok_or_else(|| not_found(id))?;
        if record.info.status != pb::dataset_info::Status::Draft as i32 || record.upload == Upload::Closed {
            return Err(Status::failed_precondition(format!(
                "dataset {id} is {}; files can only be uploaded to a DRAFT dataset",
                status_name(record.info.status)
            )));
        }
        Ok(record)
    }

    fn check_size(size: i64, max: u64) -> Result<u64, Status> {
        match u64::try_from(size) {
            Ok(s) if s > 0 && s <= max => Ok(s),
            _ => Err(Status::invalid_argument(format!("size_bytes: must be between 1 and {max}, got {size}"))),
        }
    }

    /// `GetUploadDraftUrl`: one URL for the whole file, signed for its size.
    pub(crate) fn upload_url(&self, id: &str, size: i64, base: &str) -> Result<String, Status> {
        let size = Self::check_size(size, MAX_PUT_BYTES)?;
        let mut records = self.lock();
        let record = Self::draft(&mut records, id)?;
        record.upload = Upload::Whole { size };
        record.generation += 1;
        // What an earlier upload left (parts, a file never validated) is replaced: it goes.
        self.blobs.delete_dir(&upload_dir(id));
        let generation = record.generation;
        Ok(self.signer.url(base, &Grant::Upload { dataset: id.to_owned(), part: 0, size, generation }))
    }

    /// `StartMultipartUploadDraft`: one URL per part. Part sizes are the client's choice (at
    /// most 5 GiB each, S3's limit); the parts may not add up to more than the declared size.
    pub(crate) fn start_multipart(&self, id: &str, size: i64, parts: i64, base: &str) -> Result<Vec<String>, Status> {
        let size = Self::check_size(size, MAX_PUT_BYTES.saturating_mul(MAX_PARTS as u64))?;
        if !(1..=MAX_PARTS).contains(&parts) || parts as u64 > size {
            return Err(Status::invalid_argument(format!(
                "parts: must be between 1 and {MAX_PARTS} and at most size_bytes, got {parts}"
            )));
        }
        let parts = parts as u32;
        let mut records = self.lock();
        let record = Self::draft(&mut records, id)?;
        record.upload = Upload::Parts { size, parts, received: BTreeMap::new() };
        record.generation += 1;
        self.blobs.delete_dir(&upload_dir(id));
        let (part_max, generation) = (size.min(MAX_PUT_BYTES), record.generation);
        Ok((1..=parts)
            .map(|part| {
                let grant = Grant::Upload { dataset: id.to_owned(), part, size: part_max, generation };
                self.signer.url(base, &grant)
            })
            .collect())
    }

    /// Storage asks whether a PUT of `length` bytes to a URL of upload number `generation`,
    /// signed for `signed` bytes, may proceed; the answer is the blob key to write. A URL of a
    /// finished or earlier upload is refused like S3 refuses a request it no longer allows.
    pub(crate) fn accepts_upload(
        &self,
        id: &str,
        part: u32,
        signed: u64,
        generation: u64,
        length: u64,
    ) -> Result<String, S3Error> {
        let records = self.lock();
        let record = Self::upload_of(&records, id, generation)?;
        match (&record.upload, part) {
            (Upload::Whole { size } | Upload::Uploaded { whole: Some(size) }, 0) if *size == signed => {
                Ok(upload_key(id))
            }
            (Upload::Parts { size, parts, received }, p)
                if p >= 1 && p <= *parts && signed == (*size).min(MAX_PUT_BYTES) =>
            {
                let others: u64 = received.iter().filter(|(n, _)| **n != p).map(|(_, (_, len))| len).sum();
                if others + length > *size {
                    return Err(s3_error(
                        StatusCode::BAD_REQUEST,
                        "EntityTooLarge",
                        "The parts would add up to more than the upload was started for",
                    ));
                }
                Ok(part_key(id, p))
            }
            (Upload::None, _) => Err(denied("No upload was started for this dataset")),
            (Upload::Uploaded { .. } | Upload::Closed, _) => Err(denied("The upload this URL belongs to is complete")),
            _ => Err(denied("This URL belongs to an earlier upload of this dataset")),
        }
    }

    /// The record of a dataset whose current upload is number `generation`.
    fn upload_of<'a>(records: &'a HashMap<String, Record>, id: &str, generation: u64) -> Result<&'a Record, S3Error> {
        let Some(record) = records.get(id) else {
            return Err(s3_error(StatusCode::NOT_FOUND, "NoSuchUpload", "The specified upload does not exist."));
        };
        if record.generation != generation {
            return Err(denied("This URL belongs to an earlier upload of this dataset"));
        }
        Ok(record)
    }

    /// Storage received a file or a part: if the upload still takes it, it goes in place under
    /// its key (a rename) and is recorded, all under the records lock, so a Delete, a new
    /// upload or a validation in between cannot leave a stray file. Otherwise it is dropped.
    pub(crate) fn uploaded(
        &self,
        id: &str,
        part: u32,
        generation: u64,
        staged: Staged,
        etag: &str,
    ) -> Result<(), S3Error> {
        let mut records = self.lock();
        Self::upload_of(&records, id, generation)?;
        let Some(record) = records.get_mut(id) else { return Err(denied("The upload is gone")) };
        let size = staged.len();
        let key = match &record.upload {
            Upload::Whole { size: expected } | Upload::Uploaded { whole: Some(expected) }
                if part == 0 && *expected == size =>
            {
                upload_key(id)
            }
            Upload::Parts { size: declared, received, .. } if part >= 1 => {
                // Checked again here, under the lock: parts sent at once each fit on their own.
                let others: u64 = received.iter().filter(|(n, _)| **n != part).map(|(_, (_, len))| len).sum();
                if others + size > *declared {
                    return Err(s3_error(
                        StatusCode::BAD_REQUEST,
                        "EntityTooLarge",
                        "The parts would add up to more than the upload was started for",
                    ));
                }
                part_key(id, part)
            }
            _ => return Err(denied("The upload this URL belongs to is complete")),
        };
        let internal = |e: std::io::Error| s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e.to_string());
        self.blobs.install(staged, &key).map_err(internal)?;
        match &mut record.upload {
            Upload::Parts { received, .. } => {
                received.insert(part, (etag.to_owned(), size));
            }
            upload => *upload = Upload::Uploaded { whole: Some(size) },
        }
        Ok(())
    }

    /// `FinishMultipartUploadDraft` begins: every part once, in order, with the ETag it got,
    /// adding up to the declared size. The upload is closed (no PUT can change the parts) and
    /// the parts to join are returned; [`end_finish`](Self::end_finish) records the outcome.
    pub(crate) fn begin_finish(&self, id: &str, parts: &[pb::UploadedPartInfo]) -> Result<Vec<String>, Status> {
        let mut records = self.lock();
        let record = Self::draft(&mut records, id)?;
        let Upload::Parts { size, parts: expected, received } = &record.upload else {
            return Err(Status::failed_precondition(format!(
                "dataset {id} has no multipart upload in progress; call StartMultipartUploadDraft first"
            )));
        };
        if parts.len() != *expected as usize {
            return Err(Status::invalid_argument(format!(
                "uploaded_parts: the upload has {expected} parts, {} were listed",
                parts.len()
            )));
        }
        let mut total = 0;
        for (i, p) in parts.iter().enumerate() {
            let number = i as i64 + 1;
            if p.part_num != number {
                return Err(Status::invalid_argument(format!(
                    "uploaded_parts[{i}].part_num: expected {number}, got {} (parts are listed in order from 1)",
                    p.part_num
                )));
            }
            match received.get(&(number as u32)) {
                None => return Err(Status::failed_precondition(format!("part {number} was never uploaded"))),
                Some((etag, _)) if *etag != p.etag => {
                    return Err(Status::invalid_argument(format!(
                        "uploaded_parts[{i}].etag: does not match the ETag part {number} got"
                    )));
                }
                Some((_, len)) => total += len,
            }
        }
        if total != *size {
            return Err(Status::failed_precondition(format!(
                "the parts add up to {total} bytes, the upload was started for {size}"
            )));
        }
        let pieces = (1..=*expected).map(|p| part_key(id, p)).collect();
        record.upload = Upload::Closed;
        Ok(pieces)
    }

    /// The parts were joined (or not): the file waits for validation, or the upload starts over.
    pub(crate) fn end_finish(&self, id: &str, joined: bool) {
        if let Some(record) = self.lock().get_mut(id) {
            record.upload = if joined { Upload::Uploaded { whole: None } } else { Upload::None };
        }
    }

    /// `Validate` starts: the dataset goes to VALIDATING; returns its task type, the key of
    /// the uploaded file and the validation's number.
    pub(crate) fn start_validation(&self, id: &str) -> Result<(String, String, u64), Status> {
        self.change(id, |record| {
            let uploaded = matches!(record.upload, Upload::Uploaded { .. });
            if !uploaded || record.info.status != pb::dataset_info::Status::Draft as i32 {
                return Err(Status::failed_precondition(format!(
                    "dataset {id} has no uploaded file to validate (status {}); upload the file first",
                    status_name(record.info.status)
                )));
            }
            record.upload = Upload::Closed;
            record.validation += 1;
            record.info.status = pb::dataset_info::Status::Validating as i32;
            Ok((record.info.task_type.clone(), upload_key(id), record.validation))
        })
    }

    /// Remembers `operation` as the one validating dataset `id` (durably with a data directory).
    pub(crate) fn remember_validation(&self, id: &str, operation: &str) {
        let mut records = self.lock();
        let Some(record) = records.get_mut(id) else { return };
        record.validation_op = Some(operation.to_owned());
        if let Some(dir) = &self.dir
            && let Err(e) = crate::durable::replace(&dir.join(format!("{id}.validation")), operation.as_bytes())
        {
            tracing::error!(error = %e, dataset = id, "could not keep the validation's operation id");
        }
    }

    /// The dataset whose latest validation is `operation`, as it is now.
    pub(crate) fn validated_by(&self, operation: &str) -> Option<pb::DatasetInfo> {
        self.lock().values().find(|r| r.validation_op.as_deref() == Some(operation)).map(|r| r.info.clone())
    }

    /// Where validation writes the parquet file of a dataset.
    pub(crate) fn data_writer(&self, id: &str) -> std::io::Result<SyncBlobWriter> {
        self.blobs.sync_writer(&data_key(id))
    }

    /// Validation number `validation` finished: READY with the rows and the stored parquet
    /// file, or INVALID with the errors. Refused (nothing stored) if that validation was
    /// abandoned meanwhile, so a late finish cannot overwrite what came after it. Blocking:
    /// the file is made durable outside the records lock, then put in place under it.
    pub(crate) fn finish_validation(
        &self,
        id: &str,
        validation: u64,
        valid_rows: u64,
        errors: Vec<pb::ValidationError>,
        parquet: Option<SyncBlobWriter>,
    ) -> Result<(), Status> {
        let ready = errors.is_empty();
        let staged = match parquet {
            Some(writer) if ready => {
                Some(self.blobs.stage_sync(writer).map_err(|e| Status::internal(format!("storing the dataset: {e}")))?)
            }
            _ => None,
        };
        let mut records = self.lock();
        let record = records
            .get_mut(id)
            .filter(|r| r.validation == validation && r.info.status == pb::dataset_info::Status::Validating as i32)
            .ok_or_else(|| Status::cancelled(format!("validation of dataset {id} was abandoned")))?;
        let stored = match staged {
            Some(staged) => self
                .blobs
                .install(staged, &data_key(id))
                .map_err(|e| Status::internal(format!("storing the dataset: {e}")))?,
            None => 0,
        };
        record.info.status =
            if ready { pb::dataset_info::Status::Ready } else { pb::dataset_info::Status::Invalid } as i32;
        record.info.rows = if ready { valid_rows as i64 } else { 0 };
        record.info.size_bytes = stored as i64;
        record.info.validation_error = errors;
        record.info.updated_at = Some(SystemTime::now().into());
        self.persist(&record.info);
        drop(records);
        // The uploaded file was read; it goes (outside the lock: it may be large).
        self.blobs.delete(&upload_key(id));
        Ok(())
    }

    /// Validation number `validation` did not run to its end: back to DRAFT, keeping the
    /// uploaded file when the validation never started (so it can be asked for again), or
    /// without it when it was cancelled or failed midway. Returns the key of a file to delete
    /// (large: the caller deletes it off the reactor).
    #[must_use = "the returned file is to be deleted"]
    pub(crate) fn abandon_validation(&self, id: &str, validation: u64, keep_file: bool) -> Option<String> {
        let mut records = self.lock();
        let record = records.get_mut(id)?;
        if record.validation != validation || record.info.status != pb::dataset_info::Status::Validating as i32 {
            return None;
        }
        record.info.status = pb::dataset_info::Status::Draft as i32;
        record.upload = if keep_file { Upload::Uploaded { whole: None } } else { Upload::None };
        record.info.updated_at = Some(SystemTime::now().into());
        self.persist(&record.info);
        (!keep_file).then(|| upload_key(id))
    }

    /// A dataset a batch task writes its answers to: VALIDATING (not readable) until
    /// [`finish_result`](Self::finish_result).
    pub(crate) fn create_result(
        &self,
        folder: &str,
        name: &str,
        task_type: &str,
        labels: HashMap<String, String>,
        created_by: &str,
    ) -> Result<String, Status> {
        let now = SystemTime::now();
        let info = pb::DatasetInfo {
            dataset_id: super::new_id("fds"),
            folder_id: folder.to_owned(),
            name: name.to_owned(),
            status: pb::dataset_info::Status::Validating as i32,
            task_type: task_type.to_owned(),
            created_at: Some(now.into()),
            updated_at: Some(now.into()),
            created_by_id: created_by.to_owned(),
            created_by: created_by.to_owned(),
            labels,
            ..Default::default()
        };
        let mut records = self.lock();
        if records.len() >= self.max {
            return Err(Status::resource_exhausted(format!(
                "too many datasets (limit {}) for the batch's results; delete some first",
                self.max
            )));
        }
        self.persist(&info);
        let id = info.dataset_id.clone();
        records.insert(
            id.clone(),
            Record { info, upload: Upload::Closed, validation: 0, generation: 0, validation_op: None },
        );
        Ok(id)
    }

    /// A batch's answers are written: the dataset is READY with its rows (blocking). Refused
    /// if the dataset was deleted meanwhile.
    pub(crate) fn finish_result(&self, id: &str, file: SyncBlobWriter, rows: u64) -> Result<(), Status> {
        let staged = self.blobs.stage_sync(file).map_err(|e| Status::internal(format!("storing the results: {e}")))?;
        let mut records = self.lock();
        let record = records.get_mut(id).ok_or_else(|| not_found(id))?;
        let stored = self
            .blobs
            .install(staged, &data_key(id))
            .map_err(|e| Status::internal(format!("storing the results: {e}")))?;
        record.info.status = pb::dataset_info::Status::Ready as i32;
        record.info.rows = rows as i64;
        record.info.size_bytes = stored as i64;
        record.info.updated_at = Some(SystemTime::now().into());
        self.persist(&record.info);
        Ok(())
    }

    /// `GetDownloadUrls`: the parquet file of a READY dataset.
    pub(crate) fn download_urls(&self, id: &str, base: &str) -> Result<Vec<pb::DatasetFileDownloadUrl>, Status> {
        let info = self.describe(id)?;
        if info.status != pb::dataset_info::Status::Ready as i32 {
            return Err(Status::failed_precondition(format!(
                "dataset {id} is {}; only READY datasets can be downloaded",
                status_name(info.status)
            )));
        }
        let grant = Grant::Download { dataset: id.to_owned(), key: DATA_FILE.to_owned() };
        Ok(vec![pb::DatasetFileDownloadUrl { key: DATA_FILE.to_owned(), url: self.signer.url(base, &grant) }])
    }

    /// The blob behind a download URL, if the dataset still has that file.
    pub(crate) fn file_key(&self, id: &str, key: &str) -> Option<String> {
        let ready = self.lock().get(id).is_some_and(|r| r.info.status == pb::dataset_info::Status::Ready as i32);
        (ready && key == DATA_FILE && plausible_id(id)).then(|| data_key(id))
    }

    /// The stored parquet file of a READY dataset (for tuning; call on a blocking thread).
    pub(crate) fn data(&self, id: &str) -> std::io::Result<crate::storage::blobs::RandomAccess> {
        self.blobs.random_access(&data_key(id))
    }

    /// Forgets every dataset and file (control-API reset).
    pub(crate) fn clear(&self) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            let _ = self.delete(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Datasets {
        Datasets::open(None, 10, 1 << 20).unwrap()
    }

    async fn uploaded(d: &Datasets) -> String {
        let r = pb::CreateDatasetRequest {
            folder_id: "f".into(),
            task_type: "TextToTextGeneration".into(),
            upload_format: UPLOAD_FORMAT.into(),
            ..Default::default()
        };
        let id = d.create(r, "me", None).unwrap().dataset_id;
        d.upload_url(&id, 3, "http://h").unwrap();
        let mut w = d.blobs.writer(&upload_key(&id), 3).await.unwrap().unwrap();
        w.write(bytes::Bytes::from_static(b"{}\n")).await.unwrap();
        d.uploaded(&id, 0, 1, w.finish().await.unwrap(), "\"e\"").unwrap();
        id
    }

    #[tokio::test]
    async fn a_late_finish_of_an_abandoned_validation_changes_nothing() {
        let d = store();
        let id = uploaded(&d).await;
        let (_, _, first) = d.start_validation(&id).unwrap();
        assert_eq!(d.abandon_validation(&id, first, true), None, "the file is kept");
        let (_, _, second) = d.start_validation(&id).unwrap();
        assert!(second > first);
        let late = d.finish_validation(&id, first, 9, vec![], None).unwrap_err();
        assert_eq!(late.code(), tonic::Code::Cancelled);
        assert_eq!(d.describe(&id).unwrap().status, pb::dataset_info::Status::Validating as i32);
        d.finish_validation(&id, second, 1, vec![], Some(d.data_writer(&id).unwrap())).unwrap();
        let info = d.describe(&id).unwrap();
        assert_eq!((info.status, info.rows), (pb::dataset_info::Status::Ready as i32, 1));
        // An abandon that arrives after the finish changes nothing either.
        assert_eq!(d.abandon_validation(&id, second, false), None, "too late: nothing to delete");
        assert_eq!(d.describe(&id).unwrap().status, pb::dataset_info::Status::Ready as i32);
    }

    #[tokio::test]
    async fn page_tokens_survive_deletions_between_pages() {
        let d = store();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(uploaded(&d).await);
        }
        let list = |token: &str| {
            let r = pb::ListDatasetsRequest {
                folder_id: "f".into(),
                page_size: 2,
                page_token: token.into(),
                ..Default::default()
            };
            d.list(&r).unwrap()
        };
        let (first, token) = list("");
        for item in &first {
            d.delete(&item.dataset_id).unwrap();
        }
        let (second, token) = list(&token);
        let (third, last) = list(&token);
        let mut seen: Vec<String> = first.iter().chain(&second).chain(&third).map(|i| i.dataset_id.clone()).collect();
        let mut all = ids.clone();
        seen.sort();
        all.sort();
        assert_eq!(seen, all, "every dataset listed once");
        assert!(last.is_empty());
    }
}
