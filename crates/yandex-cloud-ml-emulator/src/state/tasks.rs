//! Long-running tasks (tuning, batch inference): records kept in memory and, with a data
//! directory, as one protobuf file each, saved under the store's lock so saves happen in the
//! order of the changes. A finished task never changes again (a cancelled job that finishes
//! late learns it must stop); a task that was running when the emulator stopped is marked
//! failed on the next start, never silently resumed or lost. The store is bounded: the oldest
//! finished task makes room for a new one.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, MutexGuard},
};

use prost_types::Timestamp;
use tonic::Status;

use super::paging::{self, Order, Position};

/// What the store needs of a task record.
pub(crate) trait StoredTask: prost::Message + Default + Clone + Send + 'static {
    fn id(&self) -> &str;
    fn folder(&self) -> &str;
    fn created_at(&self) -> Option<Timestamp>;
    /// The status, as its wire number.
    fn status(&self) -> i32;
    fn is_finished(&self) -> bool;
    /// The status's wire name, for messages.
    fn status_name(&self) -> &'static str;
    /// Marks a task that was running when the emulator stopped as failed, saying so.
    fn interrupted(&mut self);
    /// What is left of task `id` whose record cannot be read back: failed, saying why.
    fn damaged(id: &str, why: &str) -> Self;
}

pub(crate) struct TaskStore<T> {
    tasks: Mutex<HashMap<String, T>>,
    /// `tuning/`, `batch/` under the data directory.
    dir: Option<PathBuf>,
    max: usize,
    /// `Tuning task`, `Batch task`: how errors name a task.
    kind: &'static str,
}

impl<T: StoredTask> TaskStore<T> {
    /// The store, with the tasks an earlier run left in `dir`.
    pub(crate) fn open(dir: Option<PathBuf>, max: usize, kind: &'static str) -> std::io::Result<TaskStore<T>> {
        let store = TaskStore { tasks: Mutex::default(), dir, max: max.max(1), kind };
        let Some(dir) = &store.dir else { return Ok(store) };
        crate::durable::create_dir(dir)?;
        let mut tasks = store.lock();
        for entry in crate::durable::read_dir(dir)?.flatten() {
            let path = entry.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("partial") => {
                    let _ = std::fs::remove_file(&path);
                }
                Some("pb") => {
                    let Some(id) = path.file_stem().and_then(|s| s.to_str()) else { continue };
                    // A record must name the task its file is named after; one that cannot be
                    // read back is kept as a failed task that says so, never dropped.
                    let read = std::fs::read(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| T::decode(b.as_slice()).map_err(|e| e.to_string()))
                        .and_then(|t| if t.id() == id { Ok(t) } else { Err(format!("it names task {:?}", t.id())) });
                    let mut task = read.unwrap_or_else(|why| {
                        tracing::error!(file = %path.display(), error = %why, "a damaged task record; the task is kept as failed");
                        let task = T::damaged(id, &format!(
                            "the emulator's record of this task is damaged ({why}); start the task again"
                        ));
                        store.persist(&task);
                        task
                    });
                    if !task.is_finished() {
                        task.interrupted();
                        store.persist(&task);
                    }
                    tasks.insert(task.id().to_owned(), task);
                }
                _ => {}
            }
        }
        drop(tasks);
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, T>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn not_found(&self, id: &str) -> Status {
        Status::not_found(format!("{} {id} not found", self.kind))
    }

    /// Saves a task through a temporary file of its own; called with the tasks locked.
    fn persist(&self, task: &T) {
        let Some(dir) = &self.dir else { return };
        if let Err(e) = crate::durable::replace(&dir.join(format!("{}.pb", task.id())), &task.encode_to_vec()) {
            tracing::error!(error = %e, task = task.id(), "could not save the task");
        }
    }

    fn unlink(&self, id: &str) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(format!("{id}.pb")));
        }
    }

    /// Makes room for one more task: at the limit the oldest finished task is forgotten; if
    /// every task is running, RESOURCE_EXHAUSTED.
    pub(crate) fn make_room(&self) -> Result<(), Status> {
        let mut tasks = self.lock();
        if tasks.len() < self.max {
            return Ok(());
        }
        let oldest = tasks
            .values()
            .filter(|t| t.is_finished())
            .min_by_key(|t| Position::new(t.created_at(), t.id()))
            .map(|t| t.id().to_owned());
        let Some(oldest) = oldest else {
            return Err(Status::resource_exhausted(format!(
                "too many {}s running (limit {}); wait for some to finish",
                self.kind.to_lowercase(),
                self.max
            )));
        };
        tasks.remove(&oldest);
        self.unlink(&oldest);
        Ok(())
    }

    /// Stores a new task (after [`make_room`](Self::make_room)).
    pub(crate) fn insert(&self, task: T) {
        let mut tasks = self.lock();
        self.persist(&task);
        tasks.insert(task.id().to_owned(), task);
    }

    /// The first task that `matches`.
    pub(crate) fn find(&self, matches: impl Fn(&T) -> bool) -> Option<T> {
        self.lock().values().find(|t| matches(t)).cloned()
    }

    pub(crate) fn get(&self, id: &str) -> Result<T, Status> {
        self.lock().get(id).cloned().ok_or_else(|| self.not_found(id))
    }

    /// Changes a running task and returns it. A finished task cannot change: the error says
    /// how it ended.
    pub(crate) fn update(&self, id: &str, change: impl FnOnce(&mut T)) -> Result<T, Status> {
        let mut tasks = self.lock();
        let task = tasks.get_mut(id).ok_or_else(|| self.not_found(id))?;
        if task.is_finished() {
            return Err(Status::failed_precondition(format!("{} {id} is {}", self.kind, task.status_name())));
        }
        change(task);
        self.persist(task);
        Ok(task.clone())
    }

    /// Forgets a finished task; a running one must be cancelled first.
    pub(crate) fn remove(&self, id: &str) -> Result<T, Status> {
        let mut tasks = self.lock();
        let task = tasks.get(id).ok_or_else(|| self.not_found(id))?;
        if !task.is_finished() {
            return Err(Status::failed_precondition(format!(
                "{} {id} is {}; cancel it first",
                self.kind,
                task.status_name()
            )));
        }
        self.unlink(id);
        Ok(tasks.remove(id).unwrap_or_default())
    }

    /// A folder's tasks with `status` (0: any), newest first, a page at a time.
    pub(crate) fn list(
        &self,
        folder: &str,
        status: i32,
        page_size: i64,
        token: &str,
    ) -> Result<(Vec<T>, String), Status> {
        if folder.trim().is_empty() {
            return Err(Status::invalid_argument("folder_id: required"));
        }
        let all: Vec<T> = self
            .lock()
            .values()
            .filter(|t| t.folder() == folder && (status == 0 || t.status() == status))
            .cloned()
            .collect();
        paging::page(all, |t| Position::new(t.created_at(), t.id()), Order::NewestFirst, page_size, token)
    }

    /// Forgets every task (control-API reset).
    pub(crate) fn clear(&self) {
        let mut tasks = self.lock();
        for id in tasks.keys() {
            self.unlink(id);
        }
        tasks.clear();
    }
}
