//! An uploaded dataset: its fields, and what can be done with it (update, delete, download,
//! read).

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1 as pb;

use super::{DatasetStatus, RPC_TIMEOUT, TaskType, ValidationError};
use crate::{
    call::{Action, Call, CallOptions},
    error::{Error, Remedy, Result},
    sdk::Sdk,
    transport::rpc,
};

/// The fields of a dataset, as the cloud describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatasetInfo {
    /// Dataset id.
    pub id: String,
    /// Folder it belongs to.
    pub folder_id: String,
    /// Name, if set.
    pub name: Option<String>,
    /// Description, if set.
    pub description: Option<String>,
    /// Free-form metadata, if set.
    pub metadata: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    #[serde(default, with = "crate::timestamp")]
    pub created_at: Option<SystemTime>,
    /// When it last changed.
    #[serde(default, with = "crate::timestamp")]
    pub updated_at: Option<SystemTime>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Whether the cloud may log its data.
    pub allow_data_logging: bool,
    /// Where it is in its life.
    pub status: DatasetStatus,
    /// What its rows are for.
    pub task_type: TaskType,
    /// Rows (after validation).
    pub rows: u64,
    /// Size in bytes (after validation).
    pub size_bytes: u64,
    /// Problems validation found.
    pub validation_errors: Vec<ValidationError>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl DatasetInfo {
    pub(crate) fn from_proto(d: pb::DatasetInfo) -> DatasetInfo {
        DatasetInfo {
            id: d.dataset_id,
            folder_id: d.folder_id,
            name: non_empty(d.name),
            description: non_empty(d.description),
            metadata: non_empty(d.metadata),
            created_by: if d.created_by.is_empty() { d.created_by_id } else { d.created_by },
            created_at: d.created_at.and_then(|t| SystemTime::try_from(t).ok()),
            updated_at: d.updated_at.and_then(|t| SystemTime::try_from(t).ok()),
            labels: d.labels.into_iter().collect(),
            allow_data_logging: d.allow_data_log,
            status: DatasetStatus::from_proto(d.status),
            task_type: d.task_type.into(),
            rows: u64::try_from(d.rows).unwrap_or(0),
            size_bytes: u64::try_from(d.size_bytes).unwrap_or(0),
            validation_errors: d.validation_error.into_iter().map(ValidationError::from_proto).collect(),
        }
    }
}

/// A dataset in the cloud. Cheap to clone; clones share the knowledge that it was deleted.
#[derive(Clone)]
pub struct Dataset {
    sdk: Sdk,
    info: DatasetInfo,
    deleted: Arc<AtomicBool>,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset").field("info", &self.info).field("deleted", &self.is_deleted()).finish()
    }
}

impl Dataset {
    pub(crate) fn from_proto(sdk: Sdk, info: pb::DatasetInfo) -> Dataset {
        Dataset { sdk, info: DatasetInfo::from_proto(info), deleted: Arc::default() }
    }

    /// Dataset id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Its fields as last described.
    pub fn info(&self) -> &DatasetInfo {
        &self.info
    }

    /// Status as last described.
    pub fn status(&self) -> DatasetStatus {
        self.info.status
    }

    /// Whether [`delete`](Self::delete) removed it.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    fn alive(&self, action: &str) -> Result<()> {
        if self.is_deleted() {
            return Err(Error::invalid_input(format!("cannot {action} dataset {}: it was deleted", self.info.id)));
        }
        Ok(())
    }

    /// Fetches its current fields (`Describe`).
    pub fn refresh(&self) -> Call<RefreshDataset> {
        Call::new(RefreshDataset(self.clone()))
    }

    /// Changes its name, description or labels; only the fields given are sent (the update
    /// mask names exactly them).
    ///
    /// ```no_run
    /// # async fn demo(d: yandex_cloud_ml_sdk::datasets::Dataset) -> yandex_cloud_ml_sdk::Result<()> {
    /// let renamed = d.update(|u| u.name("answers v2").label("team", "support")).await?;
    /// # Ok(()) }
    /// ```
    pub fn update(&self, change: impl FnOnce(DatasetUpdate) -> DatasetUpdate) -> Call<UpdateDataset> {
        Call::new(UpdateDataset { dataset: self.clone(), update: change(DatasetUpdate::default()) })
    }

    /// Deletes it. Later actions on it (and on its clones) fail at once without an RPC.
    pub fn delete(&self) -> Call<DeleteDataset> {
        Call::new(DeleteDataset(self.clone()))
    }

    /// Downloads its files into `dir` (which must exist), in parallel; the call's timeout
    /// (default 60 s) bounds the whole download.
    pub fn download(&self, dir: impl Into<PathBuf>) -> Call<Download> {
        Call::new(Download { dataset: self.clone(), dir: dir.into(), exist_ok: false, parallelism: 16 })
    }

    #[cfg(feature = "parquet")]
    pub(crate) fn sdk(&self) -> &Sdk {
        &self.sdk
    }
}

/// [`Dataset::refresh`].
#[derive(Debug)]
pub struct RefreshDataset(Dataset);

impl Action for RefreshDataset {
    type Output = Dataset;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Dataset> {
        self.0.alive("describe")?;
        let mut fresh = super::describe(&self.0.sdk, self.0.id(), &options).await?;
        fresh.deleted = self.0.deleted.clone();
        Ok(fresh)
    }
}

/// The fields [`Dataset::update`] changes.
#[derive(Debug, Clone, Default)]
pub struct DatasetUpdate {
    name: Option<String>,
    description: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

impl DatasetUpdate {
    /// New name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// New description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Replaces the labels with these.
    pub fn labels(mut self, labels: impl IntoIterator<Item = (String, String)>) -> Self {
        self.labels = Some(labels.into_iter().collect());
        self
    }

    /// Adds one label to the labels being set (starting from none).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.get_or_insert_with(BTreeMap::new).insert(key.into(), value.into());
        self
    }
}

/// [`Dataset::update`].
#[derive(Debug)]
pub struct UpdateDataset {
    dataset: Dataset,
    update: DatasetUpdate,
}

impl Action for UpdateDataset {
    type Output = Dataset;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Dataset> {
        self.dataset.alive("update")?;
        let u = self.update;
        let mut paths = Vec::new();
        if u.name.is_some() {
            paths.push("name".to_owned());
        }
        if u.description.is_some() {
            paths.push("description".to_owned());
        }
        if u.labels.is_some() {
            paths.push("labels".to_owned());
        }
        if paths.is_empty() {
            return Err(Error::invalid_input("nothing to update: set a name, description or labels"));
        }
        let request = pb::UpdateDatasetRequest {
            dataset_id: self.dataset.id().to_owned(),
            update_mask: Some(prost_types::FieldMask { paths }),
            name: u.name.unwrap_or_default(),
            description: u.description.unwrap_or_default(),
            labels: u.labels.unwrap_or_default().into_iter().collect(),
        };
        let response: pb::UpdateDatasetResponse =
            self.dataset.sdk.transport().unary(&rpc::DATASET_UPDATE, request, &options).await?;
        let info = response.dataset.ok_or_else(|| Error::decode("the update returned no dataset"))?;
        let mut updated = Dataset::from_proto(self.dataset.sdk.clone(), info);
        updated.deleted = self.dataset.deleted.clone();
        Ok(updated)
    }
}

/// [`Dataset::delete`].
#[derive(Debug)]
pub struct DeleteDataset(Dataset);

impl Action for DeleteDataset {
    type Output = ();
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<()> {
        self.0.alive("delete")?;
        delete(&self.0.sdk, self.0.id(), &options).await?;
        self.0.deleted.store(true, Ordering::Relaxed);
        Ok(())
    }
}

pub(crate) async fn delete(sdk: &Sdk, id: &str, options: &CallOptions) -> Result<()> {
    let request = pb::DeleteDatasetRequest { dataset_id: id.to_owned() };
    let _: pb::DeleteDatasetResponse = sdk.transport().unary(&rpc::DATASET_DELETE, request, options).await?;
    Ok(())
}

/// The files of a dataset and where to fetch them (`GetDownloadUrls`).
pub(crate) async fn download_urls(dataset: &Dataset, options: &CallOptions) -> Result<Vec<(String, String)>> {
    dataset.alive("download")?;
    let request = pb::GetDownloadUrlsRequest { dataset_id: dataset.id().to_owned() };
    let response: pb::GetDownloadUrlsResponse =
        dataset.sdk.transport().unary(&rpc::DATASET_GET_DOWNLOAD_URLS, request, options).await?;
    in_reading_order(response.download_urls.into_iter().map(|u| (u.key, u.url)).collect())
}

/// Files with a numeric stem first (`1.parquet`, `2.parquet`, `10.parquet`), in numeric order,
/// then the others alphabetically, as the official SDK reads them, so rows come back in their
/// order. Every name must be a plain, unique file name: it becomes a path in the caller's
/// directory.
fn in_reading_order(mut files: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
    let stem = |key: &str| key.split('.').next().and_then(|s| s.parse::<u64>().ok());
    files.sort_by(|(a, _), (b, _)| match (stem(a), stem(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    });
    let mut names = std::collections::HashSet::new();
    for (key, _) in &files {
        let mut parts = Path::new(key).components();
        let plain = matches!((parts.next(), parts.next()), (Some(std::path::Component::Normal(_)), None))
            && !key.contains(['/', '\\', ':']);
        if !plain || !names.insert(key.as_str()) {
            return Err(Error::decode(format!(
                "the server named a dataset file `{key}`, which is not a plain, unique file name"
            )));
        }
    }
    Ok(files)
}

/// Streams one URL into `path`, chunk by chunk (never the whole file in memory), through the
/// SDK's retry loop: a failed or broken-off GET is retried with the call's policy until
/// `deadline`, resuming from the bytes already written (a `Range` request) when the server
/// allows it and starting over when it answers the whole object. `stall` bounds the wait for
/// each piece of the body.
pub(crate) async fn fetch_to(
    sdk: &Sdk,
    url: &str,
    path: &Path,
    options: &CallOptions,
    deadline: tokio::time::Instant,
    stall: Duration,
) -> Result<()> {
    let cannot_write = |e: std::io::Error| Error::invalid_input(format!("cannot write {}: {e}", path.display()));
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| Error::invalid_input(format!("cannot create {}: {e}", path.display())))?;
    // The file and the bytes in it, handed from one attempt to the next (one at a time).
    let target = tokio::sync::Mutex::new((file, 0u64));
    let attempts = crate::retry::Attempts {
        what: "dataset download",
        request_id: "",
        policy: options.retry.as_ref().unwrap_or(sdk.transport().retry_policy()),
        deadline,
        timeout: options.timeout,
        attempt_timeout: None,
    };
    let attempt = |_, _| async {
        let mut target = target.lock().await;
        let (file, written) = &mut *target;
        let response = sdk.transport().http().get_from(url, *written, stall).await?;
        let response = response.error_for_status("dataset download").await?;
        if response.status != http::StatusCode::PARTIAL_CONTENT && *written > 0 {
            // The whole object again: start the file over.
            file.set_len(0).await.map_err(cannot_write)?;
            file.seek(std::io::SeekFrom::Start(0)).await.map_err(cannot_write)?;
            *written = 0;
        }
        let mut body = response.body;
        while let Some(frame) = tokio::time::timeout(stall, body.frame())
            .await
            .map_err(|_| Error::timeout(stall).context("the dataset download stalled"))?
        {
            let frame = frame.map_err(|e| Error::transport("dataset download broke off", e))?;
            if let Ok(data) = frame.into_data() {
                file.write_all(&data).await.map_err(cannot_write)?;
                *written += data.len() as u64;
            }
        }
        file.flush().await.map_err(cannot_write)
    };
    crate::retry::run(attempts, attempt, |_, _| crate::retry::Next::Backoff).await
}

/// [`Dataset::download`]: set its options, then `.await` the paths written.
#[derive(Debug)]
pub struct Download {
    dataset: Dataset,
    dir: PathBuf,
    exist_ok: bool,
    parallelism: usize,
}

impl Call<Download> {
    /// Overwrite files that already exist (default: refuse).
    pub fn exist_ok(mut self, exist_ok: bool) -> Self {
        self.action_mut().exist_ok = exist_ok;
        self
    }

    /// Files fetched at once (default 16).
    pub fn parallelism(mut self, n: usize) -> Self {
        self.action_mut().parallelism = n.max(1);
        self
    }
}

impl Action for Download {
    type Output = Vec<PathBuf>;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Vec<PathBuf>> {
        let meta = tokio::fs::metadata(&self.dir).await;
        if !meta.as_ref().is_ok_and(|m| m.is_dir()) {
            return Err(Error::invalid_input(format!(
                "download directory {} does not exist or is not a directory: create it first",
                self.dir.display()
            )));
        }
        let deadline = options.deadline();
        let work = async {
            let files = download_urls(&self.dataset, &options).await?;
            let targets: Vec<(PathBuf, String)> =
                files.into_iter().map(|(key, url)| (self.dir.join(key), url)).collect();
            if !self.exist_ok
                && let Some((existing, _)) = targets.iter().find(|(p, _)| p.exists())
            {
                return Err(Error::invalid_input(format!("{} already exists", existing.display()))
                    .with_remedy(Remedy::AllowOverwrite { path: existing.clone() }));
            }
            let (sdk, options) = (&self.dataset.sdk, &options);
            futures_util::stream::iter(targets)
                .map(|(path, url)| async move {
                    fetch_to(sdk, &url, &path, options, deadline, options.timeout).await?;
                    Ok::<_, Error>(path)
                })
                .buffered(self.parallelism)
                .try_collect()
                .await
        };
        tokio::time::timeout_at(deadline, work)
            .await
            .map_err(|_| Error::timeout(options.timeout).context("dataset download"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(keys: &[&str]) -> Result<Vec<String>> {
        in_reading_order(keys.iter().map(|k| ((*k).to_owned(), String::new())).collect())
            .map(|files| files.into_iter().map(|(k, _)| k).collect())
    }

    #[test]
    fn files_are_read_in_numeric_order_and_names_stay_inside_the_directory() {
        assert_eq!(
            names(&["10.parquet", "main", "2.parquet", "1.parquet"]).unwrap(),
            ["1.parquet", "2.parquet", "10.parquet", "main"]
        );
        for bad in ["../x", "a/b", "C:evil", "..", ".", "", "/etc/passwd", "a\\b"] {
            assert!(names(&[bad]).is_err(), "{bad}");
        }
        assert!(names(&["main", "main"]).is_err(), "duplicates");
    }
}
