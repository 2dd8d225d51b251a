//! Batch inference tasks: the task records (persisted like tuning tasks) and the stop flags
//! of the workers that run them.

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::SystemTime,
};

use yandex_cloud_ml_proto::{google::rpc, yandex::cloud::ai::batch_inference::v1 as pb};

use super::tasks::{StoredTask, TaskStore};

pub(crate) use pb::batch_inference_task::Status as BatchStatus;

impl StoredTask for pb::BatchInferenceTask {
    fn id(&self) -> &str {
        &self.task_id
    }

    fn folder(&self) -> &str {
        &self.folder_id
    }

    fn created_at(&self) -> Option<prost_types::Timestamp> {
        self.created_at
    }

    fn status(&self) -> i32 {
        self.status
    }

    fn is_finished(&self) -> bool {
        matches!(
            BatchStatus::try_from(self.status),
            Ok(BatchStatus::Completed | BatchStatus::Failed | BatchStatus::Canceled)
        )
    }

    fn status_name(&self) -> &'static str {
        BatchStatus::try_from(self.status).map_or("UNKNOWN", |s| s.as_str_name())
    }

    fn interrupted(&mut self) {
        end(self, BatchStatus::Failed, Some("the emulator stopped while this task ran; start the batch again"));
    }

    fn damaged(id: &str, why: &str) -> Self {
        let mut task = pb::BatchInferenceTask { task_id: id.to_owned(), ..Default::default() };
        end(&mut task, BatchStatus::Failed, Some(why));
        task
    }
}

/// Ends a task with `status`; `why` is the task-level error, if it failed as a whole.
pub(crate) fn end(task: &mut pb::BatchInferenceTask, status: BatchStatus, why: Option<&str>) {
    task.status = status as i32;
    task.finished_at = Some(SystemTime::now().into());
    let errors = task.errors.get_or_insert_with(Default::default);
    // The cloud reports an empty status even on success.
    errors.status = Some(rpc::Status {
        code: if why.is_some() { 13 } else { 0 },
        message: why.unwrap_or_default().to_owned(),
        details: vec![],
    });
}

/// The batch tasks.
pub(crate) struct Batches {
    pub tasks: TaskStore<pb::BatchInferenceTask>,
    /// Set to stop a running task's worker.
    stops: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Workers answering rows at once (each holds two blocking threads); the others wait
    /// PENDING for a turn.
    pub running: tokio::sync::Semaphore,
}

/// Batch tasks answering rows at once.
const RUNNING: usize = 4;

impl Batches {
    pub(crate) fn open(data_dir: Option<&Path>, max: usize) -> std::io::Result<Batches> {
        let tasks = TaskStore::open(data_dir.map(|d| d.join("batch")), max, "Batch task")?;
        Ok(Batches { tasks, stops: Mutex::default(), running: tokio::sync::Semaphore::new(RUNNING) })
    }

    /// The stop flag of a task's worker (made on first use).
    pub(crate) fn stop_flag(&self, id: &str) -> Arc<AtomicBool> {
        self.stops.lock().unwrap_or_else(|e| e.into_inner()).entry(id.to_owned()).or_default().clone()
    }

    /// Tells a task's worker, if it has one, to stop.
    pub(crate) fn stop(&self, id: &str) {
        if let Some(flag) = self.stops.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// The worker is gone; its flag too.
    pub(crate) fn forget_worker(&self, id: &str) {
        self.stops.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Forgets every task (control-API reset); running workers stop.
    pub(crate) fn clear(&self) {
        for flag in self.stops.lock().unwrap_or_else(|e| e.into_inner()).values() {
            flag.store(true, Ordering::Relaxed);
        }
        self.tasks.clear();
    }
}
