//! Tuning tasks and the models they produce. A task's id is also its operation's id, as in the
//! cloud. Tasks (with their options and errors) and tuned models are kept in memory and, with a
//! data directory, under `tuning/` so they survive a restart; a task that was running when the
//! emulator stopped is marked FAILED, never silently resumed or lost.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::tuning::v1 as pb;

use super::tasks::{StoredTask, TaskStore};
use crate::engine::tuned::{Learned, TunedModel, TunedModels};

/// A task as saved: its public record, the options it was started with, its errors.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Saved {
    #[prost(message, optional, tag = "1")]
    pub task: Option<pb::TuningTask>,
    #[prost(message, optional, tag = "2")]
    pub options: Option<pb::GetOptionsResponse>,
    #[prost(message, repeated, tag = "3")]
    pub errors: Vec<pb::TuningError>,
    /// The loss after each step, for the metrics file.
    #[prost(double, repeated, tag = "4")]
    pub losses: Vec<f64>,
}

pub(crate) fn is_finished(status: i32) -> bool {
    use pb::tuning_task::Status as S;
    matches!(S::try_from(status), Ok(S::Completed | S::Failed | S::Canceled | S::Archived))
}

pub(crate) fn status_name(status: i32) -> &'static str {
    pb::tuning_task::Status::try_from(status).map_or("UNKNOWN", |s| s.as_str_name())
}

impl Saved {
    fn task(&self) -> &pb::TuningTask {
        static NONE: std::sync::OnceLock<pb::TuningTask> = std::sync::OnceLock::new();
        self.task.as_ref().unwrap_or_else(|| NONE.get_or_init(Default::default))
    }

    /// Ends the task with `status` and a public error.
    fn end(&mut self, status: pb::tuning_task::Status, message: &str) {
        let id = self.task().task_id.clone();
        if let Some(task) = self.task.as_mut() {
            task.status = status as i32;
            task.finished_at = Some(SystemTime::now().into());
        }
        self.errors.push(pb::TuningError {
            tuning_task_id: id,
            message: message.to_owned(),
            r#type: pb::tuning_error::Type::Public as i32,
        });
    }
}

impl StoredTask for Saved {
    fn id(&self) -> &str {
        &self.task().task_id
    }

    fn folder(&self) -> &str {
        &self.task().folder_id
    }

    fn created_at(&self) -> Option<prost_types::Timestamp> {
        self.task().created_at
    }

    fn status(&self) -> i32 {
        self.task().status
    }

    fn is_finished(&self) -> bool {
        is_finished(self.status())
    }

    fn status_name(&self) -> &'static str {
        status_name(self.status())
    }

    fn interrupted(&mut self) {
        self.end(pb::tuning_task::Status::Failed, "the emulator stopped while this task ran; start the tuning again");
    }

    fn damaged(id: &str, why: &str) -> Self {
        let task = pb::TuningTask { task_id: id.to_owned(), ..Default::default() };
        let mut saved = Saved { task: Some(task), ..Default::default() };
        saved.end(pb::tuning_task::Status::Failed, why);
        saved
    }
}

/// A tuned model written aside, not yet answering; dropped, its file goes.
pub(crate) struct SavedModel {
    suffix: String,
    model: Option<TunedModel>,
    file: Option<PathBuf>,
}

impl Drop for SavedModel {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// The task store and the tuned models.
pub(crate) struct Tuning {
    pub tasks: TaskStore<Saved>,
    pub models: Arc<TunedModels>,
    /// `tuning/models/` under the data directory.
    models_dir: Option<PathBuf>,
    /// Bytes of training rows all tuned models may keep together.
    budget: u64,
}

impl Tuning {
    /// The store, with the tasks and models an earlier run left in `data_dir`.
    pub(crate) fn open(data_dir: Option<&Path>, max: usize, budget: u64) -> std::io::Result<Tuning> {
        let dir = data_dir.map(|d| d.join("tuning"));
        let models_dir = dir.as_ref().map(|d| d.join("models"));
        let tuning =
            Tuning { tasks: TaskStore::open(dir, max, "Tuning task")?, models: Arc::default(), models_dir, budget };
        tuning.load_models()?;
        Ok(tuning)
    }

    fn load_models(&self) -> std::io::Result<()> {
        let Some(dir) = &self.models_dir else { return Ok(()) };
        crate::durable::create_dir(dir)?;
        for entry in crate::durable::read_dir(dir)?.flatten() {
            let path = entry.path();
            // Leftovers of tunings that never completed.
            if path.extension().is_some_and(|e| e == "partial") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            // Read on first use, not now: a restart does not read every model back.
            let bytes = entry.metadata().map_or(0, |m| m.len());
            if let Some(suffix) = path.file_stem().and_then(|s| s.to_str()) {
                self.models.insert_on_disk(suffix.to_owned(), path.clone(), bytes);
            }
        }
        Ok(())
    }

    /// The saved state of a task.
    pub(crate) fn get(&self, id: &str) -> Result<Saved, Status> {
        self.tasks.get(id)
    }

    /// Changes a running task and returns its record; a finished task cannot change.
    pub(crate) fn update(&self, id: &str, change: impl FnOnce(&mut Saved)) -> Result<pb::TuningTask, Status> {
        self.tasks.update(id, change).map(|saved| saved.task().clone())
    }

    /// Ends a running task as FAILED (or CANCELED) with a public error; an error if it had
    /// already finished.
    pub(crate) fn fail(
        &self,
        id: &str,
        status: pb::tuning_task::Status,
        message: &str,
    ) -> Result<pb::TuningTask, Status> {
        self.update(id, |saved| saved.end(status, message))
    }

    /// Writes what a tuning learned aside and indexes it (blocking); the model answers, and
    /// its file is put in place, once [`register`](Self::register)ed. Dropped instead, it
    /// leaves nothing behind.
    pub(crate) fn save_model(&self, suffix: &str, learned: Learned) -> Result<SavedModel, Status> {
        let file = match &self.models_dir {
            None => None,
            Some(dir) => {
                let tmp = crate::durable::temporary(&dir.join(format!("{suffix}.json")));
                serde_json::to_vec(&learned)
                    .map_err(std::io::Error::other)
                    .and_then(|b| {
                        let mut file = std::fs::File::create(&tmp)?;
                        std::io::Write::write_all(&mut file, &b)?;
                        file.sync_all()
                    })
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        Status::internal(format!("saving the tuned model: {e}"))
                    })?;
                Some(tmp)
            }
        };
        Ok(SavedModel { suffix: suffix.to_owned(), model: Some(TunedModel::new(learned)), file })
    }

    /// Refuses early a model that would not fit beside the tuned models kept now (checked
    /// again when it is registered, for tunings that finish together).
    pub(crate) fn check_budget(&self, model: &SavedModel) -> Result<(), Status> {
        let (held, adding) = (self.models.bytes(), model.model.as_ref().map_or(0, TunedModel::bytes));
        if held + adding > self.budget {
            return Err(crate::engine::tuned::over_budget(held, adding, self.budget));
        }
        Ok(())
    }

    /// Makes a saved model answer, its file kept for restarts; RESOURCE_EXHAUSTED (and the
    /// model dropped) when the tuned models would keep more than the budget.
    pub(crate) fn register(&self, mut saved: SavedModel) -> Result<(), Status> {
        let Some(model) = saved.model.take() else { return Ok(()) };
        self.models.insert_within(saved.suffix.clone(), model, self.budget)?;
        if let (Some(dir), Some(tmp)) = (&self.models_dir, saved.file.take()) {
            let path = dir.join(format!("{}.json", saved.suffix));
            if let Err(e) = crate::durable::commit(&tmp, &path) {
                tracing::error!(error = %e, model = %saved.suffix, "could not keep the tuned model for restarts");
            }
        }
        Ok(())
    }

    /// Forgets a tuned model and its file (a tuning cancelled at the last moment, or the
    /// control API's delete); false if there was none by that suffix.
    pub(crate) fn unregister(&self, suffix: &str) -> bool {
        let known = self.models.remove(suffix);
        if let Some(dir) = &self.models_dir {
            let _ = std::fs::remove_file(dir.join(format!("{suffix}.json")));
        }
        known
    }

    /// `List`: a folder's tasks, newest first, in pages.
    pub(crate) fn list(&self, r: &pb::ListTuningsRequest) -> Result<(Vec<pb::TuningTask>, String), Status> {
        let (page, next) = self.tasks.list(&r.folder_id, r.status, r.page_size, &r.page_token)?;
        Ok((page.into_iter().filter_map(|s| s.task).collect(), next))
    }

    /// The metrics file of a completed task: one line per training step.
    pub(crate) fn metrics_csv(&self, id: &str) -> Option<String> {
        let saved = self.get(id).ok()?;
        let completed = saved.task.as_ref()?.status == pb::tuning_task::Status::Completed as i32;
        completed.then(|| {
            let mut csv = String::from("step,train_loss\n");
            for (step, loss) in saved.losses.iter().enumerate() {
                csv.push_str(&format!("{},{loss:.4}\n", step + 1));
            }
            csv
        })
    }

    /// Forgets every task and tuned model (control-API reset).
    pub(crate) fn clear(&self) {
        self.tasks.clear();
        self.models.clear();
        if let Some(entries) = self.models_dir.as_ref().and_then(|d| std::fs::read_dir(d).ok()) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
