//! Blocking batch runs, one line per async method.

use super::Call;
use crate::{
    batch::{BatchQuery, BatchStatus, BatchTaskInfo, RunBatch},
    call::{Call as AsyncCall, HandleCall},
    datasets::{Dataset, DatasetRef},
    operations::{Progress, Wait},
};

impl super::Sdk {
    /// Batch tasks of the folder ([`crate::Sdk::batch`]).
    pub fn batch(&self) -> super::Batches {
        self.wrap(self.inner.batch())
    }
}

impl super::GptModel {
    /// Batch runs of this model over whole datasets.
    pub fn batch(&self) -> super::ModelBatch {
        self.wrap(self.inner.batch())
    }
}

impl super::ModelBatch {
    /// Starts a batch run of the model over a dataset of prompts; returns the task.
    pub fn run_deferred(&self, dataset: impl DatasetRef) -> Call<AsyncCall<RunBatch>, super::BatchTask> {
        self.call_handle(self.inner.run_deferred(dataset))
    }
}

impl super::BatchTask {
    /// Everything the batch service says about the task.
    pub fn info(&self) -> Call<AsyncCall<HandleCall<BatchTaskInfo>>, BatchTaskInfo> {
        self.call(self.inner.info())
    }

    /// Where the task is.
    pub fn status(&self) -> Call<AsyncCall<HandleCall<BatchStatus>>, BatchStatus> {
        self.call(self.inner.status())
    }

    /// The batches done of all.
    pub fn progress(&self) -> Call<AsyncCall<HandleCall<Option<Progress>>>, Option<Progress>> {
        self.call(self.inner.progress())
    }

    /// The result dataset of a completed task.
    pub fn result(&self) -> Call<AsyncCall<HandleCall<Dataset>>, super::Dataset> {
        self.call_handle(self.inner.result())
    }

    /// Stops the task.
    pub fn cancel(&self) -> Call<AsyncCall<HandleCall<()>>, ()> {
        self.call(self.inner.cancel())
    }

    /// Deletes the finished task.
    pub fn delete(&self) -> Call<AsyncCall<HandleCall<()>>, ()> {
        self.call(self.inner.delete())
    }

    /// Polls until the task finishes; returns the result dataset.
    pub fn wait(&self) -> Call<Wait<Dataset>, super::Dataset> {
        self.call_handle(self.inner.wait())
    }

    /// The answers, each with the conversation it answers (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn results(&self) -> super::Iter<super::BoxStream<crate::datasets::CompletionRecord>> {
        super::Iter::boxed(&self.rt, || self.inner.results())
    }
}

impl super::Batches {
    /// A batch task by task id; checks that it exists.
    pub fn get(
        &self,
        task_id: impl Into<String>,
    ) -> Call<AsyncCall<HandleCall<crate::batch::BatchTask>>, super::BatchTask> {
        self.call_handle(self.inner.get(task_id))
    }

    /// A task from fields already fetched (no RPC).
    pub fn from_info(&self, info: &BatchTaskInfo) -> super::BatchTask {
        self.wrap(self.inner.from_info(info))
    }

    /// Batch tasks of the folder, over every page; filter with `.with(|l| l.status(…))`,
    /// then iterate.
    pub fn list(&self) -> super::List<BatchQuery> {
        self.wrap(self.inner.list())
    }
}
