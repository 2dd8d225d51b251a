//! Datasets (`sdk.datasets()`): files of examples uploaded for tuning and batch inference.
//!
//! A [`DatasetDraft`] describes a local file; uploading it creates the dataset, streams the
//! file to the presigned URL the cloud gives (in parallel parts when it is large, each part
//! retried on its own), validates every row and returns the [`Dataset`]:
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! let dataset = sdk
//!     .datasets()
//!     .completions()
//!     .draft_from_path("train.jsonl")
//!     .name("support answers")
//!     .upload()
//!     .on_progress(|p| eprintln!("{} {}/{:?}", p.stage, p.done, p.total))
//!     .await?;
//! println!("{} is {:?} with {} rows", dataset.id(), dataset.status(), dataset.info().rows);
//! # Ok(()) }
//! ```

mod dataset;
mod draft;
#[cfg(feature = "parquet")]
mod read;
mod upload;

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1 as pb;

pub use self::{
    dataset::{Dataset, DatasetInfo, DatasetUpdate, DeleteDataset, Download, RefreshDataset, UpdateDataset},
    draft::{DatasetDraft, Upload, UploadDeferred},
};
use crate::{
    call::{Action, BoxFuture, Call, CallOptions},
    error::{Error, Result},
    list::{List, ListRpc, Listing, Page, PageRequest},
    sdk::Sdk,
    transport::rpc,
    wire_enum::wire_enum,
};
#[cfg(feature = "parquet")]
#[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
pub use read::{CompletionRecord, RecordMessage};

/// Something that names a dataset: its id (`&str`, `String`) or a [`Dataset`] (async or
/// blocking), wherever a dataset is an argument (tuning, batch runs).
pub trait DatasetRef {
    /// The dataset's id.
    fn dataset_id(self) -> String;
}

impl DatasetRef for &str {
    fn dataset_id(self) -> String {
        self.to_owned()
    }
}

impl DatasetRef for String {
    fn dataset_id(self) -> String {
        self
    }
}

impl DatasetRef for &String {
    fn dataset_id(self) -> String {
        self.clone()
    }
}

impl DatasetRef for &Dataset {
    fn dataset_id(self) -> String {
        self.id().to_owned()
    }
}

impl DatasetRef for Dataset {
    fn dataset_id(self) -> String {
        self.id().to_owned()
    }
}

/// Default timeout of each dataset RPC.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// What a dataset's rows are for. The known types are variants; any other string the cloud
/// uses is kept in [`TaskType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
#[non_exhaustive]
pub enum TaskType {
    /// Prompts with answers, for tuning completion models (`{"request": [...], "response": "..."}`).
    TextToTextGeneration,
    /// Prompts alone, the input of batch inference (`{"request": [...]}`).
    TextToTextGenerationRequest,
    /// Texts with any number of labels.
    TextClassificationMultilabel,
    /// Texts with one label of many.
    TextClassificationMulticlass,
    /// Speech with transcripts.
    SpeechToTextGeneration,
    /// Texts with speech.
    TextToSpeechGeneration,
    /// Texts with images.
    TextToImageGeneration,
    /// Anchor and positive texts, for tuning embeddings.
    TextEmbeddingsPair,
    /// Anchor, positive and negative texts, for tuning embeddings.
    TextEmbeddingsTriplet,
    /// Images with prompts, for batch inference of vision models.
    ImageTextToTextGenerationRequest,
    /// A task type this SDK version does not name.
    Other(String),
}

impl TaskType {
    const KNOWN: [(TaskType, &'static str); 10] = [
        (TaskType::TextToTextGeneration, "TextToTextGeneration"),
        (TaskType::TextToTextGenerationRequest, "TextToTextGenerationRequest"),
        (TaskType::TextClassificationMultilabel, "TextClassificationMultilabel"),
        (TaskType::TextClassificationMulticlass, "TextClassificationMulticlass"),
        (TaskType::SpeechToTextGeneration, "SpeechToTextGeneration"),
        (TaskType::TextToSpeechGeneration, "TextToSpeechGeneration"),
        (TaskType::TextToImageGeneration, "TextToImageGeneration"),
        (TaskType::TextEmbeddingsPair, "TextEmbeddingsPair"),
        (TaskType::TextEmbeddingsTriplet, "TextEmbeddingsTriplet"),
        (TaskType::ImageTextToTextGenerationRequest, "ImageTextToTextGenerationRequest"),
    ];

    /// The wire name, e.g. `TextToTextGeneration`.
    pub fn as_str(&self) -> &str {
        match self {
            TaskType::Other(s) => s,
            known => Self::KNOWN.iter().find(|(t, _)| t == known).map_or("", |(_, name)| name),
        }
    }
}

impl From<String> for TaskType {
    fn from(s: String) -> TaskType {
        Self::KNOWN.iter().find(|(_, name)| *name == s).map_or(TaskType::Other(s), |(t, _)| t.clone())
    }
}

impl From<&str> for TaskType {
    fn from(s: &str) -> TaskType {
        TaskType::from(s.to_owned())
    }
}

impl From<TaskType> for String {
    fn from(t: TaskType) -> String {
        t.as_str().to_owned()
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

wire_enum! {
    /// Where a dataset is in its life.
    pub enum DatasetStatus(pb::dataset_info::Status, "dataset status") {
        /// Created; its file is being uploaded.
        Draft,
        /// Its rows are being checked.
        Validating,
        /// Valid and usable.
        Ready,
        /// Validation found errors (see [`DatasetInfo::validation_errors`]).
        Invalid,
        /// Being deleted.
        Deleting,
    }
}

/// A problem validation found, and the rows it was found in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ValidationError {
    /// What is wrong.
    pub error: String,
    /// More detail.
    pub description: String,
    /// The rows (1-based line numbers) where it was found.
    pub rows: Vec<u64>,
}

impl ValidationError {
    pub(crate) fn from_proto(e: pb::ValidationError) -> ValidationError {
        ValidationError {
            error: e.error,
            description: e.error_description,
            rows: e.row_numbers.into_iter().filter_map(|r| u64::try_from(r).ok()).collect(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if !self.description.is_empty() {
            write!(f, " ({})", self.description)?;
        }
        if !self.rows.is_empty() {
            let shown: Vec<String> = self.rows.iter().take(10).map(u64::to_string).collect();
            write!(f, " in row{} {}", if self.rows.len() == 1 { "" } else { "s" }, shown.join(", "))?;
            if self.rows.len() > 10 {
                write!(f, " and {} more", self.rows.len() - 10)?;
            }
        }
        Ok(())
    }
}

/// How a task type's files may be written (`ListUploadSchemas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UploadSchema {
    /// The task type.
    pub task_type: TaskType,
    /// The file format, e.g. `jsonlines`.
    pub upload_format: String,
    /// The JSON schema of one row, as the cloud sends it.
    pub schema: String,
}

/// Every row error of a dataset that failed validation: the
/// [details](crate::Error::details) of an [`ErrorKind::InvalidDataset`](crate::ErrorKind)
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ValidationFailure {
    /// The dataset (still there, with status `Invalid`).
    pub dataset_id: String,
    /// What validation found, with row numbers.
    pub errors: Vec<ValidationError>,
}

/// Datasets of a folder (`sdk.datasets()`).
#[derive(Debug, Clone)]
pub struct Datasets {
    sdk: Sdk,
    task_type: Option<TaskType>,
}

impl Sdk {
    /// Datasets for tuning and batch inference (`sdk.datasets().completions()…`).
    pub fn datasets(&self) -> Datasets {
        Datasets { sdk: self.clone(), task_type: None }
    }
}

impl Datasets {
    fn of(&self, task_type: TaskType) -> Datasets {
        Datasets { sdk: self.sdk.clone(), task_type: Some(task_type) }
    }

    /// Datasets for tuning completion models ([`TaskType::TextToTextGeneration`]).
    pub fn completions(&self) -> Datasets {
        self.of(TaskType::TextToTextGeneration)
    }

    /// Inputs of batch inference ([`TaskType::TextToTextGenerationRequest`]).
    pub fn batch_requests(&self) -> Datasets {
        self.of(TaskType::TextToTextGenerationRequest)
    }

    /// Datasets for multilabel classifiers (binary ones too, as the official SDK has it).
    pub fn text_classifiers_multilabel(&self) -> Datasets {
        self.of(TaskType::TextClassificationMultilabel)
    }

    /// Datasets for multiclass classifiers.
    pub fn text_classifiers_multiclass(&self) -> Datasets {
        self.of(TaskType::TextClassificationMulticlass)
    }

    /// Datasets for binary classifiers (the cloud stores them as multilabel).
    pub fn text_classifiers_binary(&self) -> Datasets {
        self.of(TaskType::TextClassificationMultilabel)
    }

    /// Pairs for tuning embeddings.
    pub fn text_embeddings_pair(&self) -> Datasets {
        self.of(TaskType::TextEmbeddingsPair)
    }

    /// Triplets for tuning embeddings.
    pub fn text_embeddings_triplet(&self) -> Datasets {
        self.of(TaskType::TextEmbeddingsTriplet)
    }

    /// A draft of a dataset from a local file (`jsonlines` by default). Nothing is sent until
    /// it is uploaded. Without a task-type shortcut, set one with
    /// [`DatasetDraft::task_type`].
    pub fn draft_from_path(&self, path: impl Into<std::path::PathBuf>) -> DatasetDraft {
        DatasetDraft::new(self.sdk.clone(), path.into(), self.task_type.clone())
    }

    /// A dataset by id (`DatasetService/Describe`).
    pub fn get(&self, dataset_id: impl Into<String>) -> Call<GetDataset> {
        Call::new(GetDataset { sdk: self.sdk.clone(), id: dataset_id.into() })
    }

    /// Datasets of the folder (of the shortcut's task type, if one was chosen), over every
    /// page; filter, then `.await` them all or `.stream()` them.
    pub fn list(&self) -> List<DatasetQuery> {
        Listing::call(DatasetQuery {
            sdk: self.sdk.clone(),
            statuses: Vec::new(),
            name_pattern: String::new(),
            task_types: self.task_type.iter().cloned().collect(),
        })
    }

    /// The file formats and row schemas accepted for a task type (`ListUploadSchemas`).
    pub fn list_upload_schemas(&self, task_type: impl Into<TaskType>) -> Call<ListUploadSchemas> {
        Call::new(ListUploadSchemas { sdk: self.sdk.clone(), task_type: task_type.into() })
    }
}

/// [`Datasets::get`].
#[derive(Debug)]
pub struct GetDataset {
    sdk: Sdk,
    id: String,
}

impl Action for GetDataset {
    type Output = Dataset;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Dataset> {
        describe(&self.sdk, &self.id, &options).await
    }
}

/// `DatasetService/Describe` as a [`Dataset`].
pub(crate) async fn describe(sdk: &Sdk, id: &str, options: &CallOptions) -> Result<Dataset> {
    if id.trim().is_empty() {
        return Err(Error::invalid_input("dataset id is empty: pass the id of an uploaded dataset"));
    }
    let request = pb::DescribeDatasetRequest { dataset_id: id.to_owned() };
    let response: pb::DescribeDatasetResponse = sdk.transport().unary(&rpc::DATASET_DESCRIBE, request, options).await?;
    let info =
        response.dataset.ok_or_else(|| Error::decode(format!("dataset {id} was described without its fields")))?;
    Ok(Dataset::from_proto(sdk.clone(), info))
}

/// [`Datasets::list_upload_schemas`].
#[derive(Debug)]
pub struct ListUploadSchemas {
    sdk: Sdk,
    task_type: TaskType,
}

impl Action for ListUploadSchemas {
    type Output = Vec<UploadSchema>;
    const DEFAULT_TIMEOUT: Duration = RPC_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Vec<UploadSchema>> {
        let request = pb::ListUploadSchemasRequest {
            task_type: self.task_type.as_str().to_owned(),
            folder_id: self.sdk.folder_id().to_owned(),
        };
        let response: pb::ListUploadSchemasResponse =
            self.sdk.transport().unary(&rpc::DATASET_LIST_UPLOAD_SCHEMAS, request, &options).await?;
        Ok(response
            .schemas
            .into_iter()
            .map(|s| UploadSchema { task_type: s.task_type.into(), upload_format: s.upload_format, schema: s.schema })
            .collect())
    }
}

/// The filters of a dataset listing ([`Datasets::list`]).
#[derive(Debug, Clone)]
pub struct DatasetQuery {
    sdk: Sdk,
    statuses: Vec<DatasetStatus>,
    name_pattern: String,
    task_types: Vec<TaskType>,
}

impl ListRpc for DatasetQuery {
    type Item = Dataset;

    fn page(&self, page: PageRequest) -> BoxFuture<'static, Page<Dataset>> {
        let request = pb::ListDatasetsRequest {
            folder_id: self.sdk.folder_id().to_owned(),
            status: self.statuses.iter().map(|s| s.to_proto()).collect(),
            dataset_name_pattern: self.name_pattern.clone(),
            task_type_filter: self.task_types.iter().map(|t| t.as_str().to_owned()).collect(),
            page_size: page.size,
            page_token: page.token.clone(),
            dataset_ids: Vec::new(),
        };
        let sdk = self.sdk.clone();
        page.fetch(&self.sdk, &rpc::DATASET_LIST, request, move |r: pb::ListDatasetsResponse| {
            (r.datasets.into_iter().map(|d| Dataset::from_proto(sdk.clone(), d)).collect(), r.next_page_token)
        })
    }
}

impl List<DatasetQuery> {
    /// Only datasets in this status (may be called several times).
    pub fn status(mut self, status: DatasetStatus) -> Self {
        self.query_mut().statuses.push(status);
        self
    }

    /// Only datasets whose name matches this pattern.
    pub fn name_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.query_mut().name_pattern = pattern.into();
        self
    }

    /// Only datasets of this task type (may be called several times).
    pub fn task_type(mut self, task_type: impl Into<TaskType>) -> Self {
        self.query_mut().task_types.push(task_type.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_types_round_trip_and_keep_unknown_names() {
        assert_eq!(TaskType::from("TextToTextGeneration"), TaskType::TextToTextGeneration);
        assert_eq!(TaskType::TextEmbeddingsPair.as_str(), "TextEmbeddingsPair");
        assert_eq!(TaskType::from("Future"), TaskType::Other("Future".into()));
        assert_eq!(
            serde_json::to_string(&TaskType::TextToTextGenerationRequest).unwrap(),
            "\"TextToTextGenerationRequest\""
        );
        assert_eq!("READY".parse::<DatasetStatus>().unwrap(), DatasetStatus::Ready);
        assert!("done".parse::<DatasetStatus>().unwrap_err().to_string().contains("draft, validating"));
        assert_eq!(DatasetStatus::Ready.to_string(), "READY");
    }

    #[test]
    fn validation_errors_show_rows() {
        let e =
            ValidationError { error: "bad json".into(), description: "expected `{`".into(), rows: (1..=12).collect() };
        assert_eq!(e.to_string(), "bad json (expected `{`) in rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more");
    }
}
