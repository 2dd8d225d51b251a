//! Blocking datasets, one line per async method.

use std::path::PathBuf;

use super::Call;
use crate::{
    call::Call as AsyncCall,
    datasets::{
        DatasetQuery, DatasetRef, DatasetUpdate, DeleteDataset, Download, GetDataset, ListUploadSchemas,
        RefreshDataset, TaskType, UpdateDataset, Upload, UploadDeferred, UploadSchema,
    },
};

impl super::Sdk {
    /// Datasets of the folder ([`crate::Sdk::datasets`]).
    pub fn datasets(&self) -> super::Datasets {
        self.wrap(self.inner.datasets())
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
    pub fn list(&self) -> super::List<DatasetQuery> {
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
    pub fn download(&self, dir: impl Into<PathBuf>) -> Call<AsyncCall<Download>, Vec<PathBuf>> {
        self.call(self.inner.download(dir))
    }

    /// The rows as JSON objects, read as they are decoded (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn read(&self) -> super::Iter<super::BoxStream<serde_json::Value>> {
        super::Iter::boxed(&self.rt, || self.inner.read())
    }

    /// The rows decoded as `T` (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn read_as<T: serde::de::DeserializeOwned + Send + 'static>(&self) -> super::Iter<super::BoxStream<T>> {
        super::Iter::boxed(&self.rt, || self.inner.read_as::<T>())
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
