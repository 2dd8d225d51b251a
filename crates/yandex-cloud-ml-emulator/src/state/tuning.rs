//! Tuning tasks and the models they produce. A task's id is also its operation's id, as in the
//! cloud. Tasks (with their options and errors) and tuned models are kept in memory and, with a
//! data directory, under `tuning/` so they survive a restart; a task that was running when the
//! emulator stopped is marked FAILED, never silently resumed or lost.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use prost::Message;
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::tuning::v1 as pb;

use super::paging::{self, Order, Position};
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

pub(crate) fn not_found(id: &str) -> Status {
    Status::not_found(format!("Tuning task {id} not found"))
}

pub(crate) fn is_finished(status: i32) -> bool {
    use pb::tuning_task::Status as S;
    matches!(S::try_from(status), Ok(S::Completed | S::Failed | S::Canceled | S::Archived))
}

pub(crate) fn status_name(status: i32) -> &'static str {
    pb::tuning_task::Status::try_from(status).map_or("UNKNOWN", |s| s.as_str_name())
}

/// A tuned model written aside, not yet answering; dropped, its file goes.
pub(crate) struct SavedModel {
    suffix: String,
    model: Option<TunedModel>,
    file: Option<std::path::PathBuf>,
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
    tasks: Mutex<HashMap<String, Saved>>,
    pub models: Arc<TunedModels>,
    dir: Option<PathBuf>,
    max: usize,
}

impl Tuning {
    /// The store, with the tasks and models an earlier run left in `data_dir`.
    pub(crate) fn open(data_dir: Option<&Path>, max: usize) -> std::io::Result<Tuning> {
        let dir = data_dir.map(|d| d.join("tuning"));
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir.join("models"))?;
        }
        let tuning = Tuning { tasks: Mutex::default(), models: Arc::default(), dir, max: max.max(1) };
        tuning.load()?;
        Ok(tuning)
    }

    fn load(&self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        for entry in std::fs::read_dir(dir.join("models"))?.flatten() {
            let path = entry.path();
            // Leftovers of tunings that never completed.
            if path.extension().is_some_and(|e| e == "partial") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let learned = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Learned>(&b).ok());
            match (learned, path.file_stem().and_then(|s| s.to_str())) {
                (Some(learned), Some(suffix)) => self.models.insert(suffix.to_owned(), TunedModel::new(learned)),
                _ => tracing::warn!(file = %path.display(), "skipping an unreadable tuned model"),
            }
        }
        let mut interrupted = Vec::new();
        {
            let mut tasks = self.lock();
            for entry in std::fs::read_dir(dir)?.flatten() {
                if entry.path().extension().is_some_and(|e| e == "partial") {
                    let _ = std::fs::remove_file(entry.path());
                }
                if entry.path().extension().is_none_or(|e| e != "pb") {
                    continue;
                }
                let Ok(mut saved) =
                    std::fs::read(entry.path()).map_err(drop).and_then(|b| Saved::decode(b.as_slice()).map_err(drop))
                else {
                    tracing::warn!(file = %entry.path().display(), "skipping an unreadable tuning task");
                    continue;
                };
                let Some(task) = saved.task.as_mut() else { continue };
                if !is_finished(task.status) {
                    task.status = pb::tuning_task::Status::Failed as i32;
                    task.finished_at = Some(SystemTime::now().into());
                    saved.errors.push(pb::TuningError {
                        tuning_task_id: task.task_id.clone(),
                        message: "the emulator stopped while this task ran; start the tuning again".into(),
                        r#type: pb::tuning_error::Type::Public as i32,
                    });
                    interrupted.push(task.task_id.clone());
                }
                tasks.insert(task.task_id.clone(), saved);
            }
        }
        let tasks = self.lock();
        for id in interrupted {
            if let Some(saved) = tasks.get(&id) {
                self.persist(saved);
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Saved>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves a task; called with the tasks locked, so saves happen in the order of the
    /// changes, each through a temporary file of its own.
    fn persist(&self, saved: &Saved) {
        let (Some(dir), Some(task)) = (&self.dir, &saved.task) else { return };
        let path = dir.join(format!("{}.pb", task.task_id));
        let tmp = dir.join(format!("{}.{:016x}.partial", task.task_id, fastrand::u64(..)));
        if let Err(e) = std::fs::write(&tmp, saved.encode_to_vec()).and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            tracing::error!(error = %e, task = %task.task_id, "could not save the tuning task");
        }
    }

    /// Makes room for one more task: at the limit the oldest finished task is forgotten (its
    /// tuned model keeps answering); if every task is running, RESOURCE_EXHAUSTED.
    pub(crate) fn make_room(&self) -> Result<(), Status> {
        let mut tasks = self.lock();
        if tasks.len() < self.max {
            return Ok(());
        }
        let oldest = tasks
            .values()
            .filter_map(|s| s.task.as_ref())
            .filter(|t| is_finished(t.status))
            .min_by_key(|t| t.created_at.map(|c| (c.seconds, c.nanos)))
            .map(|t| t.task_id.clone());
        let Some(oldest) = oldest else {
            return Err(Status::resource_exhausted(format!(
                "too many tuning tasks running (limit {}); wait for some to finish",
                self.max
            )));
        };
        tasks.remove(&oldest);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(format!("{oldest}.pb")));
        }
        Ok(())
    }

    /// Stores a new task (after [`make_room`](Self::make_room)).
    pub(crate) fn insert(&self, task: pb::TuningTask, options: pb::GetOptionsResponse) {
        let saved = Saved { task: Some(task), options: Some(options), ..Default::default() };
        let mut tasks = self.lock();
        self.persist(&saved);
        tasks.insert(saved.task.as_ref().map(|t| t.task_id.clone()).unwrap_or_default(), saved);
    }

    /// The saved state of a task.
    pub(crate) fn get(&self, id: &str) -> Result<Saved, Status> {
        self.lock().get(id).cloned().ok_or_else(|| not_found(id))
    }

    /// Changes a running task and returns it. A finished task cannot change: the error says
    /// how it ended (so a cancelled job learns it must stop).
    pub(crate) fn update(&self, id: &str, change: impl FnOnce(&mut Saved)) -> Result<pb::TuningTask, Status> {
        let mut tasks = self.lock();
        let saved = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
        let status = saved.task.as_ref().map_or(0, |t| t.status);
        if is_finished(status) {
            return Err(Status::failed_precondition(format!("tuning task {id} is {}", status_name(status))));
        }
        change(saved);
        self.persist(saved);
        Ok(saved.task.clone().unwrap_or_default())
    }

    /// Ends a running task as FAILED (or CANCELED) with a public error; an error if it had
    /// already finished.
    pub(crate) fn fail(
        &self,
        id: &str,
        status: pb::tuning_task::Status,
        message: &str,
    ) -> Result<pb::TuningTask, Status> {
        self.update(id, |saved| {
            if let Some(task) = saved.task.as_mut() {
                task.status = status as i32;
                task.finished_at = Some(SystemTime::now().into());
            }
            saved.errors.push(pb::TuningError {
                tuning_task_id: id.to_owned(),
                message: message.to_owned(),
                r#type: pb::tuning_error::Type::Public as i32,
            });
        })
    }

    /// Writes what a tuning learned aside and indexes it (blocking); the model answers, and
    /// its file is put in place, once [`register`](Self::register)ed. Dropped instead, it
    /// leaves nothing behind.
    pub(crate) fn save_model(&self, suffix: &str, learned: Learned) -> Result<SavedModel, Status> {
        let file = match &self.dir {
            None => None,
            Some(dir) => {
                let tmp = dir.join("models").join(format!("{suffix}.{:016x}.partial", fastrand::u64(..)));
                serde_json::to_vec(&learned)
                    .map_err(std::io::Error::other)
                    .and_then(|b| std::fs::write(&tmp, b))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        Status::internal(format!("saving the tuned model: {e}"))
                    })?;
                Some(tmp)
            }
        };
        Ok(SavedModel { suffix: suffix.to_owned(), model: Some(TunedModel::new(learned)), file })
    }

    /// Makes a saved model answer, its file kept for restarts.
    pub(crate) fn register(&self, mut saved: SavedModel) {
        if let (Some(dir), Some(tmp)) = (&self.dir, saved.file.take()) {
            let path = dir.join("models").join(format!("{}.json", saved.suffix));
            if let Err(e) = std::fs::rename(&tmp, path) {
                tracing::error!(error = %e, model = %saved.suffix, "could not keep the tuned model for restarts");
            }
        }
        if let Some(model) = saved.model.take() {
            self.models.insert(saved.suffix.clone(), model);
        }
    }

    /// Forgets a model whose tuning did not complete after all (cancelled at the last moment).
    pub(crate) fn unregister(&self, suffix: &str) {
        self.models.remove(suffix);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join("models").join(format!("{suffix}.json")));
        }
    }

    /// `List`: a folder's tasks, newest first, in pages; the token is the id a page ended at.
    pub(crate) fn list(&self, r: &pb::ListTuningsRequest) -> Result<(Vec<pb::TuningTask>, String), Status> {
        if r.folder_id.trim().is_empty() {
            return Err(Status::invalid_argument("folder_id: required"));
        }
        let all: Vec<pb::TuningTask> = self
            .lock()
            .values()
            .filter_map(|s| s.task.clone())
            .filter(|t| t.folder_id == r.folder_id && (r.status == 0 || t.status == r.status))
            .collect();
        let position = |t: &pb::TuningTask| Position::new(t.created_at, &t.task_id);
        paging::page(all, position, Order::NewestFirst, r.page_size, &r.page_token)
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
        let ids: Vec<String> = self.lock().drain().map(|(id, _)| id).collect();
        self.models.clear();
        if let Some(dir) = &self.dir {
            for id in ids {
                let _ = std::fs::remove_file(dir.join(format!("{id}.pb")));
            }
            if let Ok(entries) = std::fs::read_dir(dir.join("models")) {
                for entry in entries.flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}
