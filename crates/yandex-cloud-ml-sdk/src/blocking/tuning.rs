//! Blocking tuning, one line per async method.

use super::Call;
use crate::{
    call::{Call as AsyncCall, HandleCall},
    operations::{OperationOutput, Progress, Wait},
    tuning::{Tune, TuneDeferred, TuningDatasets, TuningQuery, TuningStatus, TuningTaskInfo},
};

impl super::Sdk {
    /// Tuning tasks of the folder ([`crate::Sdk::tuning`]).
    pub fn tuning(&self) -> super::Tuning {
        self.wrap(self.inner.tuning())
    }
}

impl super::GptModel {
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
}

impl<M: OperationOutput> super::TuningTask<M> {
    /// The tuning task id (looked up from the operation when attached by operation id).
    pub fn task_id(&self) -> Call<AsyncCall<HandleCall<String>>, String> {
        self.call(self.inner.task_id())
    }

    /// The operation id (looked up from the task when attached by task id).
    pub fn operation_id(&self) -> Call<AsyncCall<HandleCall<String>>, String> {
        self.call(self.inner.operation_id())
    }

    /// Everything the tuning service says about the task.
    pub fn info(&self) -> Call<AsyncCall<HandleCall<TuningTaskInfo>>, TuningTaskInfo> {
        self.call(self.inner.info())
    }

    /// Where the task is.
    pub fn status(&self) -> Call<AsyncCall<HandleCall<TuningStatus>>, TuningStatus> {
        self.call(self.inner.status())
    }

    /// The training steps done of all.
    pub fn progress(&self) -> Call<AsyncCall<HandleCall<Option<Progress>>>, Option<Progress>> {
        self.call(self.inner.progress())
    }

    /// The tuned model if the tuning has finished.
    pub fn result(&self) -> Call<AsyncCall<HandleCall<M>>, super::Blocking<M>> {
        self.call_handle(self.inner.result())
    }

    /// Asks the server to cancel the tuning.
    pub fn cancel(&self) -> Call<AsyncCall<HandleCall<()>>, ()> {
        self.call(self.inner.cancel())
    }

    /// Where the training metrics can be downloaded, once there are some.
    pub fn metrics_url(&self) -> Call<AsyncCall<HandleCall<Option<String>>>, Option<String>> {
        self.call(self.inner.metrics_url())
    }

    /// Polls until the tuning finishes and returns the tuned model.
    pub fn wait(&self) -> Call<Wait<M>, super::Blocking<M>> {
        self.call_handle(self.inner.wait())
    }
}

impl super::Tuning {
    /// A tuning task by task id; checks that it exists.
    pub fn get(
        &self,
        task_id: impl Into<String>,
    ) -> Call<AsyncCall<HandleCall<crate::tuning::TuningTask>>, super::TuningTask> {
        self.call_handle(self.inner.get(task_id))
    }

    /// A task from fields already fetched (no RPC).
    pub fn from_info(&self, info: &TuningTaskInfo) -> super::TuningTask {
        self.wrap(self.inner.from_info(info))
    }

    /// Tuning tasks of the folder, over every page; filter with `.with(|l| l.status(…))`,
    /// then iterate.
    pub fn list(&self) -> super::List<TuningQuery> {
        self.wrap(self.inner.list())
    }
}
