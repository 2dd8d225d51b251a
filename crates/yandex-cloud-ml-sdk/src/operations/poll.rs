//! The one polling loop for everything that finishes later: operations polled through
//! `OperationService/Get`, and tasks whose state comes from a `Describe` (batch, tuning).
//!
//! One [`Wait`] drives any target: it checks immediately, then sleeps with a backoff that
//! starts short and grows to the poll interval, reports progress, tolerates transient poll
//! failures (a failed poll is not a failed operation) and gives up at the overall timeout,
//! leaving the work running on the server.

use std::{
    fmt,
    future::IntoFuture,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{
    call::BoxFuture,
    error::{Code, Error, ErrorKind, Result},
};

/// First sleep between polls (then doubled up to the poll interval), so short operations are
/// picked up quickly without polling long ones more often than asked.
const FIRST_POLL_DELAY: Duration = Duration::from_millis(250);
/// Polls are never closer than this, whatever the interval asked for.
const MIN_POLL_DELAY: Duration = Duration::from_millis(50);
/// Status polls that may fail in a row (each already retried by the transport) before the
/// wait reports the failure instead of polling on.
const MAX_FAILED_POLLS: u32 = 10;

/// What a progress count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressUnit {
    /// Bytes (uploads, downloads).
    Bytes,
    /// Dataset rows (validation).
    Rows,
    /// Batches of rows (batch inference).
    Batches,
    /// Training steps (tuning).
    Steps,
    /// No count is known; only the stage.
    None,
}

/// How far long-running work has come: a stage name and, when the server reports one, a count
/// of work done out of a total. Shown by the CLI as a progress bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// What is happening, e.g. `uploading`, `validating`, `IN_PROGRESS`.
    pub stage: String,
    /// Work done so far, in [`unit`](Self::unit)s.
    pub done: u64,
    /// Total work, when known.
    pub total: Option<u64>,
    /// What `done` and `total` count.
    pub unit: ProgressUnit,
    /// Time since waiting started.
    pub elapsed: Duration,
}

impl Progress {
    /// A progress report of `done` out of `total` `unit`s at `stage`.
    pub fn new(stage: impl Into<String>, done: u64, total: Option<u64>, unit: ProgressUnit) -> Progress {
        Progress { stage: stage.into(), done, total, unit, elapsed: Duration::ZERO }
    }

    /// Only a stage, without counts.
    pub fn stage(stage: impl Into<String>) -> Progress {
        Progress::new(stage, 0, None, ProgressUnit::None)
    }

    /// `done / total` in `[0, 1]`, when the total is known and not zero.
    pub fn fraction(&self) -> Option<f64> {
        self.total.filter(|t| *t > 0).map(|t| (self.done as f64 / t as f64).clamp(0.0, 1.0))
    }
}

/// The outcome of one poll.
pub(crate) enum Check<T> {
    /// Still running, with progress when the server reports some.
    Running(Option<Progress>),
    /// Finished: the result, or the failure of the work itself (never retried), and the
    /// final progress when the server reports one (so a progress bar ends where the work did).
    Done(Result<T>, Option<Progress>),
}

/// Something a [`Wait`] can poll.
pub(crate) trait PollTarget: Send + Sync + 'static {
    type Output: Send + 'static;
    /// The id shown in errors and logs.
    fn id(&self) -> &str;
    /// One status check with `rpc_timeout` as its RPC deadline. `wants_progress` says whether
    /// anyone listens for progress (a target may need an extra RPC to report it).
    fn check(&self, rpc_timeout: Duration, wants_progress: bool) -> BoxFuture<'_, Check<Self::Output>>;
}

type ProgressCallback = Box<dyn FnMut(&Progress) + Send>;

/// Waiting for long-running work; configure, then `.await`. Giving up (the timeout, or
/// dropping the future) never cancels the work on the server: re-attach by id later.
#[must_use = "a Wait does nothing until awaited"]
pub struct Wait<T> {
    target: Box<dyn PollTarget<Output = T>>,
    poll_interval: Duration,
    timeout: Duration,
    rpc_timeout: Duration,
    on_progress: Option<ProgressCallback>,
}

impl<T: Send + 'static> fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("id", &self.target.id())
            .field("poll_interval", &self.poll_interval)
            .field("timeout", &self.timeout)
            .field("rpc_timeout", &self.rpc_timeout)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Wait<T> {
    pub(crate) fn new(
        target: impl PollTarget<Output = T>,
        poll_interval: Duration,
        timeout: Duration,
        rpc_timeout: Duration,
    ) -> Wait<T> {
        Wait { target: Box::new(target), poll_interval, timeout, rpc_timeout, on_progress: None }
    }

    /// Longest time between polls. Polls start 250 ms apart and double up to this.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long to wait in total before giving up (the work keeps running on the server).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of each status RPC.
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// Called with every progress report while the work runs (e.g. to draw a progress bar).
    pub fn on_progress(mut self, callback: impl FnMut(&Progress) + Send + 'static) -> Self {
        self.on_progress = Some(Box::new(callback));
        self
    }

    async fn run(mut self) -> Result<T> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + crate::clock::capped(self.timeout);
        let poll_interval = self.poll_interval.max(MIN_POLL_DELAY);
        let mut delay = FIRST_POLL_DELAY.min(poll_interval);
        let mut failed_polls = 0u32;
        let mut last_failure = None;
        loop {
            let check =
                tokio::time::timeout_at(deadline, self.target.check(self.rpc_timeout, self.on_progress.is_some()))
                    .await;
            match check {
                Err(_) => return Err(self.gave_up(last_failure)),
                Ok(Ok(Check::Done(result, progress))) => {
                    if let (Some(mut p), Some(callback), true) = (progress, self.on_progress.as_mut(), result.is_ok()) {
                        p.elapsed = started.elapsed();
                        callback(&p);
                    }
                    return result;
                }
                Ok(Ok(Check::Running(progress))) => {
                    failed_polls = 0;
                    last_failure = None;
                    if let (Some(mut p), Some(callback)) = (progress, self.on_progress.as_mut()) {
                        p.elapsed = started.elapsed();
                        callback(&p);
                    }
                }
                // A poll that failed for a transient reason says nothing about the work itself.
                Ok(Err(e)) if e.is_retryable() || e.is_timeout() => {
                    failed_polls += 1;
                    if failed_polls >= MAX_FAILED_POLLS {
                        let id = self.target.id();
                        return Err(e
                            .context(&format!(
                                "{failed_polls} status polls of {id} failed in a row; the work may still be running, \
                             re-attach with its id once the service is reachable"
                            ))
                            .with_operation_id(id));
                    }
                    tracing::warn!(id = self.target.id(), failed_polls, error = %e, "status poll failed; polling on");
                    last_failure = Some(e);
                }
                Ok(Err(e)) => return Err(e),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(self.gave_up(last_failure));
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(poll_interval);
        }
    }

    /// The timeout error; a poll failure just before it is its source, so the real cause of a
    /// wait that never saw the work is not hidden.
    fn gave_up(&self, last_failure: Option<Error>) -> Error {
        let mut message =
            format!("did not finish within {:?}; it keeps running on the server, re-attach with its id", self.timeout);
        if let Some(e) = &last_failure {
            message.push_str(&format!(" (the last status poll failed: {e})"));
        }
        let error = Error::new(ErrorKind::Timeout, message)
            .with_code(Code::DeadlineExceeded)
            .with_operation_id(self.target.id());
        match last_failure {
            Some(e) => error.with_source(e),
            None => error,
        }
    }
}

impl<T: Send + 'static> IntoFuture for Wait<T> {
    type Output = Result<T>;
    type IntoFuture = BoxFuture<'static, T>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    /// Finishes on the `done_at`-th check; checks listed in `failing` fail transiently.
    struct Script {
        checks: Arc<AtomicU32>,
        done_at: u32,
        failing: Vec<u32>,
        fatal_at: Option<u32>,
    }

    impl PollTarget for Script {
        type Output = u32;
        fn id(&self) -> &str {
            "op1"
        }
        fn check(&self, _: Duration, _: bool) -> BoxFuture<'_, Check<u32>> {
            let n = self.checks.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                if self.fatal_at == Some(n) {
                    return Err(Error::from_status(tonic::Status::permission_denied("no")));
                }
                if self.failing.contains(&n) {
                    return Err(Error::from_status(tonic::Status::unavailable("blip")));
                }
                if n >= self.done_at {
                    return Ok(Check::Done(Ok(n), None));
                }
                Ok(Check::Running(Some(Progress::new("running", u64::from(n), Some(10), ProgressUnit::Rows))))
            })
        }
    }

    fn wait(done_at: u32, failing: Vec<u32>, fatal_at: Option<u32>) -> (Wait<u32>, Arc<AtomicU32>) {
        let checks = Arc::new(AtomicU32::new(0));
        let target = Script { checks: checks.clone(), done_at, failing, fatal_at };
        (Wait::new(target, Duration::from_millis(4), Duration::from_secs(5), Duration::from_secs(1)), checks)
    }

    #[tokio::test(start_paused = true)]
    async fn transient_poll_failures_are_tolerated_and_progress_is_reported() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (w, checks) = wait(5, vec![2, 3], None);
        let sink = seen.clone();
        let done = w.on_progress(move |p| sink.lock().unwrap().push(p.done)).await.unwrap();
        assert_eq!(done, 5);
        assert_eq!(checks.load(Ordering::SeqCst), 5);
        assert_eq!(*seen.lock().unwrap(), vec![1, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_poll_failures_end_the_wait() {
        let (w, _) = wait(9, vec![], Some(2));
        assert_eq!(w.await.unwrap_err().code(), Some(Code::PermissionDenied));
    }

    #[tokio::test(start_paused = true)]
    async fn the_overall_timeout_names_the_id() {
        let (w, _) = wait(u32::MAX, vec![], None);
        let e = w.timeout(Duration::from_millis(30)).await.unwrap_err();
        assert!(e.is_timeout());
        assert_eq!(e.operation_id(), Some("op1"));
    }

    #[tokio::test(start_paused = true)]
    async fn polls_back_off_up_to_the_interval() {
        let checks = Arc::new(AtomicU32::new(0));
        let target = Script { checks: checks.clone(), done_at: u32::MAX, failing: vec![], fatal_at: None };
        let w = Wait::new(target, Duration::from_secs(2), Duration::from_secs(10), Duration::from_secs(1));
        let _ = w.await;
        // At 0, .25, .75, 1.75, 3.75, 5.75, 7.75, 9.75 and (the last, at the deadline) 10 s.
        assert_eq!(checks.load(Ordering::SeqCst), 9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_still_leaves_time_between_polls() {
        let checks = Arc::new(AtomicU32::new(0));
        let target = Script { checks: checks.clone(), done_at: u32::MAX, failing: vec![], fatal_at: None };
        let w = Wait::new(target, Duration::ZERO, Duration::from_secs(1), Duration::from_secs(1));
        let _ = w.await;
        // Every 50 ms over one second, plus the poll at the start.
        assert_eq!(checks.load(Ordering::SeqCst), 21);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_failing_in_a_row_end_the_wait_with_their_cause() {
        let (w, checks) = wait(u32::MAX, (1..=100).collect(), None);
        let e = w.timeout(Duration::MAX).await.unwrap_err();
        assert_eq!(checks.load(Ordering::SeqCst), MAX_FAILED_POLLS);
        assert_eq!(e.code(), Some(Code::Unavailable));
        assert_eq!(e.operation_id(), Some("op1"));
        assert!(e.message().contains("failed in a row") && e.message().contains("blip"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_after_failed_polls_says_why() {
        let (w, _) = wait(u32::MAX, (2..=100).collect(), None);
        let e = w.timeout(Duration::from_millis(400)).await.unwrap_err();
        assert!(e.is_timeout());
        assert!(e.message().contains("the last status poll failed") && e.message().contains("blip"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
