//! The blocking counterpart of every async method that talks to the cloud, one line each.

use std::path::PathBuf;

use super::{Blocking, BlockingOutput, BoxStream, Call, CompletionStream, Iter};
use crate::{
    batch::{BatchStatus, BatchTaskInfo, ListBatches, RunBatch},
    call::Call as AsyncCall,
    completions::{CompletionResult, GptModelConfig, IntoMessages, Run, RunDeferred, RunStream, Token, Tokenize},
    datasets::{
        DatasetRef, DatasetUpdate, DeleteDataset, Download, GetDataset, ListDatasets, ListUploadSchemas,
        RefreshDataset, TaskType, UpdateDataset, Upload, UploadDeferred, UploadSchema,
    },
    error::Result,
    operations::{OperationStatus, Wait},
    tuning::{ListTunings, Tune, TuneDeferred, TuningDatasets, TuningTaskInfo},
};

impl super::Sdk {
    /// Models by name ([`crate::Sdk::models`]).
    pub fn models(&self) -> super::Models {
        self.wrap(self.inner.models())
    }

    /// Datasets of the folder ([`crate::Sdk::datasets`]).
    pub fn datasets(&self) -> super::Datasets {
        self.wrap(self.inner.datasets())
    }

    /// Tuning tasks of the folder ([`crate::Sdk::tuning`]).
    pub fn tuning(&self) -> super::Tuning {
        self.wrap(self.inner.tuning())
    }

    /// Batch tasks of the folder ([`crate::Sdk::batch`]).
    pub fn batch(&self) -> super::Batches {
        self.wrap(self.inner.batch())
    }

    /// Operations by id ([`crate::Sdk::operations`]).
    pub fn operations(&self) -> super::Operations {
        self.wrap(self.inner.operations())
    }
}

impl super::Models {
    /// A completion model by name or URI ([`crate::Models::completions`]).
    pub fn completions(&self, model_name: &str) -> super::GptModel {
        self.wrap(self.inner.completions(model_name))
    }

    /// A completion model by name and version.
    pub fn completions_with_version(&self, model_name: &str, model_version: &str) -> super::GptModel {
        self.wrap(self.inner.completions_with_version(model_name, model_version))
    }
}

impl super::GptModel {
    /// A copy with a changed configuration ([`crate::completions::GptModel::configure`]).
    pub fn configure(&self, change: impl FnOnce(GptModelConfig) -> GptModelConfig) -> Result<super::GptModel> {
        Ok(self.wrap(self.inner.configure(change)?))
    }

    /// One answer, when it is complete (`Completion`).
    pub fn run(&self, messages: impl IntoMessages) -> Call<AsyncCall<Run>, CompletionResult> {
        self.call(self.inner.run(messages))
    }

    /// The answer as it is generated: an iterator of chunks.
    pub fn run_stream(&self, messages: impl IntoMessages) -> Call<AsyncCall<RunStream>, CompletionStream> {
        Call {
            inner: self.inner.run_stream(messages),
            rt: self.rt.clone(),
            convert: |stream, rt| stream.map(|s| Iter::new(s, rt)),
        }
    }

    /// Starts a deferred generation and returns its operation.
    pub fn run_deferred(
        &self,
        messages: impl IntoMessages,
    ) -> Call<AsyncCall<RunDeferred>, super::Operation<CompletionResult>> {
        self.call_handle(self.inner.run_deferred(messages))
    }

    /// Re-attaches to a deferred generation by operation id. No RPC is made.
    pub fn attach_deferred(&self, operation_id: impl Into<String>) -> super::Operation<CompletionResult> {
        self.wrap(self.inner.attach_deferred(operation_id))
    }

    /// The tokens of the messages as the model sees them.
    pub fn tokenize(&self, messages: impl IntoMessages) -> Call<AsyncCall<Tokenize>, Vec<Token>> {
        self.call(self.inner.tokenize(messages))
    }

    /// An answer constrained to the JSON schema of `T`, deserialized.
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub fn run_structured<T>(
        &self,
        messages: impl IntoMessages,
    ) -> Call<AsyncCall<crate::completions::RunStructured<T>>, T>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
    {
        self.call(self.inner.run_structured(messages))
    }

    /// Starts fine-tuning on `train`; returns the tuning task.
    pub fn tune_deferred(&self, train: impl TuningDatasets) -> Call<AsyncCall<TuneDeferred>, super::TuningTask> {
        self.call_handle(self.inner.tune_deferred(train))
    }

    /// Fine-tunes and waits for the tuned model.
    pub fn tune(&self, train: impl TuningDatasets) -> Call<AsyncCall<Tune>, super::GptModel> {
        self.call_handle(self.inner.tune(train))
    }

    /// Re-attaches to a tuning by its operation id. No RPC is made.
    pub fn attach_tune_deferred(&self, id: impl Into<String>) -> super::TuningTask {
        self.wrap(self.inner.attach_tune_deferred(id))
    }

    /// Batch runs of this model over whole datasets.
    pub fn batch(&self) -> super::ModelBatch {
        self.wrap(self.inner.batch())
    }
}

impl<T: BlockingOutput> super::Operation<T> {
    /// Timeout of each status RPC.
    pub fn with_rpc_timeout(self, timeout: std::time::Duration) -> Self {
        self.with(|o| o.with_rpc_timeout(timeout))
    }

    /// Fetches the current status.
    pub fn status(&self) -> Result<OperationStatus> {
        self.block(self.inner.status())
    }

    /// The result if the operation has finished (a dataset or a model comes back blocking).
    pub fn result(&self) -> Result<T::Blocking> {
        Ok(self.block(self.inner.result())?.bind(&self.rt))
    }

    /// Asks the server to cancel the operation.
    pub fn cancel(&self) -> Result<OperationStatus> {
        self.block(self.inner.cancel())
    }

    /// Polls until the operation finishes; set the poll interval, timeout or a progress
    /// callback, then `send`.
    pub fn wait(&self) -> Call<Wait<T>, T::Blocking> {
        Call { inner: self.inner.wait(), rt: self.rt.clone(), convert: |output, rt| output.map(|o| o.bind(rt)) }
    }
}

impl super::Operations {
    /// An operation by id whose result is `T`. No RPC is made.
    pub fn get<T: BlockingOutput>(&self, id: impl Into<String>) -> super::Operation<T> {
        self.wrap(self.inner.get(id))
    }

    /// An operation by id whose result stays packed (`google.protobuf.Any`). No RPC is made.
    pub fn get_untyped(&self, id: impl Into<String>) -> super::Operation<prost_types::Any> {
        self.wrap(self.inner.get_untyped(id))
    }
}

impl super::TuningTask {
    /// Timeout of each status RPC.
    pub fn with_rpc_timeout(self, timeout: std::time::Duration) -> Self {
        self.with(|t| t.with_rpc_timeout(timeout))
    }

    /// The tuning task id (looked up from the operation when attached by operation id).
    pub fn task_id(&self) -> Result<String> {
        self.block(self.inner.task_id())
    }

    /// The operation id (looked up from the task when attached by task id).
    pub fn operation_id(&self) -> Result<String> {
        self.block(self.inner.operation_id())
    }

    /// The operation's status.
    pub fn status(&self) -> Result<OperationStatus> {
        self.block(self.inner.status())
    }

    /// The tuned model if the tuning has finished.
    pub fn result(&self) -> Result<super::GptModel> {
        Ok(self.wrap(self.block(self.inner.result())?))
    }

    /// Asks the server to cancel the tuning.
    pub fn cancel(&self) -> Result<OperationStatus> {
        self.block(self.inner.cancel())
    }

    /// Everything the tuning service says about the task.
    pub fn task_info(&self) -> Result<TuningTaskInfo> {
        self.block(self.inner.task_info())
    }

    /// Where the training metrics can be downloaded, once there are some.
    pub fn metrics_url(&self) -> Result<Option<String>> {
        self.block(self.inner.metrics_url())
    }

    /// Polls until the tuning finishes and returns the tuned model.
    pub fn wait(&self) -> Call<Wait<crate::completions::GptModel>, super::GptModel> {
        self.call_handle(self.inner.wait())
    }
}

impl super::Tuning {
    /// A tuning task by task id; checks that it exists.
    pub fn get(&self, task_id: impl Into<String>) -> Result<super::TuningTask> {
        Ok(self.wrap(self.block(self.inner.get(task_id))?))
    }

    /// Tuning tasks of the folder, over every page; filter with `.with(|l| l.status(…))`,
    /// then iterate.
    pub fn list(&self) -> Blocking<ListTunings> {
        self.wrap(self.inner.list())
    }
}

impl IntoIterator for Blocking<ListTunings> {
    type Item = Result<TuningTaskInfo>;
    type IntoIter = Iter<BoxStream<TuningTaskInfo>>;

    fn into_iter(self) -> Self::IntoIter {
        Iter::boxed(&self.rt, || self.inner.stream())
    }
}

impl super::Datasets {
    /// Datasets for tuning completion models.
    pub fn completions(&self) -> super::Datasets {
        self.wrap(self.inner.completions())
    }

    /// Datasets of prompts for batch runs.
    pub fn batch_requests(&self) -> super::Datasets {
        self.wrap(self.inner.batch_requests())
    }

    /// Datasets for multilabel text classifiers.
    pub fn text_classifiers_multilabel(&self) -> super::Datasets {
        self.wrap(self.inner.text_classifiers_multilabel())
    }

    /// Datasets for multiclass text classifiers.
    pub fn text_classifiers_multiclass(&self) -> super::Datasets {
        self.wrap(self.inner.text_classifiers_multiclass())
    }

    /// Datasets for binary text classifiers.
    pub fn text_classifiers_binary(&self) -> super::Datasets {
        self.wrap(self.inner.text_classifiers_binary())
    }

    /// Datasets of text pairs for embeddings.
    pub fn text_embeddings_pair(&self) -> super::Datasets {
        self.wrap(self.inner.text_embeddings_pair())
    }

    /// Datasets of text triplets for embeddings.
    pub fn text_embeddings_triplet(&self) -> super::Datasets {
        self.wrap(self.inner.text_embeddings_triplet())
    }

    /// A dataset to upload from a local file; set its options with `.with(|d| …)`.
    pub fn draft_from_path(&self, path: impl Into<PathBuf>) -> super::DatasetDraft {
        self.wrap(self.inner.draft_from_path(path))
    }

    /// A dataset by id.
    pub fn get(&self, dataset_id: impl Into<String>) -> Call<AsyncCall<GetDataset>, super::Dataset> {
        self.call_handle(self.inner.get(dataset_id))
    }

    /// Datasets of the folder, over every page; filter with `.with(|l| …)`, then iterate.
    pub fn list(&self) -> Blocking<ListDatasets> {
        self.wrap(self.inner.list())
    }

    /// The file formats and row schemas accepted for a task type.
    pub fn list_upload_schemas(
        &self,
        task_type: impl Into<TaskType>,
    ) -> Call<AsyncCall<ListUploadSchemas>, Vec<UploadSchema>> {
        self.call(self.inner.list_upload_schemas(task_type))
    }
}

impl IntoIterator for Blocking<ListDatasets> {
    type Item = Result<super::Dataset>;
    type IntoIter = Iter<BoxStream<super::Dataset>>;

    fn into_iter(self) -> Self::IntoIter {
        use futures_util::StreamExt;
        let rt = self.rt.clone();
        Iter::boxed(&self.rt, move || {
            self.inner.stream().map(move |d| d.map(|inner| Blocking { inner, rt: rt.clone() }))
        })
    }
}

impl super::DatasetDraft {
    /// Creates the dataset, uploads the file and starts validation; returns the validation's
    /// operation.
    pub fn upload_deferred(&self) -> Call<AsyncCall<UploadDeferred>, super::Operation<crate::datasets::Dataset>> {
        self.call_handle(self.inner.upload_deferred())
    }

    /// Uploads and waits for validation; returns the ready dataset.
    pub fn upload(&self) -> Call<AsyncCall<Upload>, super::Dataset> {
        self.call_handle(self.inner.upload())
    }
}

impl super::Dataset {
    /// Fetches the dataset again.
    pub fn refresh(&self) -> Call<AsyncCall<RefreshDataset>, super::Dataset> {
        self.call_handle(self.inner.refresh())
    }

    /// Changes the name, description or labels.
    pub fn update(
        &self,
        change: impl FnOnce(DatasetUpdate) -> DatasetUpdate,
    ) -> Call<AsyncCall<UpdateDataset>, super::Dataset> {
        self.call_handle(self.inner.update(change))
    }

    /// Deletes the dataset.
    pub fn delete(&self) -> Call<AsyncCall<DeleteDataset>, ()> {
        self.call(self.inner.delete())
    }

    /// Downloads the dataset's files into `dir`; returns their paths.
    pub fn download(&self, dir: impl Into<PathBuf>) -> Call<Download, Vec<PathBuf>> {
        self.call(self.inner.download(dir))
    }

    /// The rows as JSON objects, read as they are decoded (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn read(&self) -> Iter<BoxStream<serde_json::Value>> {
        Iter::boxed(&self.rt, || self.inner.read())
    }

    /// The rows decoded as `T` (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn read_as<T: serde::de::DeserializeOwned + Send + 'static>(&self) -> Iter<BoxStream<T>> {
        Iter::boxed(&self.rt, || self.inner.read_as::<T>())
    }
}

impl DatasetRef for &super::Dataset {
    fn dataset_id(self) -> String {
        self.id().to_owned()
    }
}

impl DatasetRef for super::Dataset {
    fn dataset_id(self) -> String {
        self.id().to_owned()
    }
}

impl super::ModelBatch {
    /// Starts a batch run of the model over a dataset of prompts; returns the task.
    pub fn run_deferred(&self, dataset: impl DatasetRef) -> Call<AsyncCall<RunBatch>, super::BatchTask> {
        self.call_handle(self.inner.run_deferred(dataset))
    }
}

impl super::BatchTask {
    /// Timeout of each status RPC.
    pub fn with_rpc_timeout(self, timeout: std::time::Duration) -> Self {
        self.with(|t| t.with_rpc_timeout(timeout))
    }

    /// Everything the batch service says about the task.
    pub fn info(&self) -> Result<BatchTaskInfo> {
        self.block(self.inner.info())
    }

    /// The task's status.
    pub fn status(&self) -> Result<BatchStatus> {
        self.block(self.inner.status())
    }

    /// The result dataset of a completed task.
    pub fn result(&self) -> Result<super::Dataset> {
        Ok(self.wrap(self.block(self.inner.result())?))
    }

    /// Stops the task.
    pub fn cancel(&self) -> Result<()> {
        self.block(self.inner.cancel())
    }

    /// Deletes the finished task.
    pub fn delete(&self) -> Result<()> {
        self.block(self.inner.delete())
    }

    /// Polls until the task finishes; returns the result dataset.
    pub fn wait(&self) -> Call<Wait<crate::datasets::Dataset>, super::Dataset> {
        self.call_handle(self.inner.wait())
    }

    /// The answers, each with the conversation it answers (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn results(&self) -> Iter<BoxStream<crate::datasets::CompletionRecord>> {
        Iter::boxed(&self.rt, || self.inner.results())
    }
}

impl super::Batches {
    /// A batch task by task id; checks that it exists.
    pub fn get(&self, task_id: impl Into<String>) -> Result<super::BatchTask> {
        Ok(self.wrap(self.block(self.inner.get(task_id))?))
    }

    /// A task from fields already fetched (no RPC).
    pub fn from_info(&self, info: &BatchTaskInfo) -> super::BatchTask {
        self.wrap(self.inner.from_info(info))
    }

    /// Batch tasks of the folder, over every page; filter with `.with(|l| l.status(…))`,
    /// then iterate.
    pub fn list(&self) -> Blocking<ListBatches> {
        self.wrap(self.inner.list())
    }
}

impl IntoIterator for Blocking<ListBatches> {
    type Item = Result<BatchTaskInfo>;
    type IntoIter = Iter<BoxStream<BatchTaskInfo>>;

    fn into_iter(self) -> Self::IntoIter {
        Iter::boxed(&self.rt, || self.inner.stream())
    }
}
