//! The one polling loop for everything that finishes later: operations polled through
//! `OperationService/Get`, and tasks whose state comes from a `Describe` (batch, tuning).
//!
//! One [`Wait`] drives any target: it checks immediately, then sleeps with a backoff that
//! starts short and grows to the poll interval ([`PollingPolicy`]), reports progress, tolerates
//! transient poll failures ([`PollErrorPolicy`]: a failed poll is not a failed operation) and
//! gives up at the overall timeout, leaving the work running on the server.
//!
//! Defaults per kind of work (the poll interval is the longest time between polls):
//!
//! | work | poll interval | timeout |
//! |---|---|---|
//! | deferred completion, any other operation | 10 s | 1 h |
//! | dataset validation | 10 s | 6 h |
//! | tuning | 10 s | 72 h |
//! | batch run | 10 s | 72 h |

use std::{
    fmt,
    future::IntoFuture,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{
    call::{BoxFuture, CallOptions},
    error::{Code, Error, ErrorKind, Remedy, Result},
    retry::RetryPolicy,
};

/// Timeout of each status poll (its retries included), unless set.
const POLL_TIMEOUT: Duration = Duration::from_secs(60);

/// How polls are spaced: the first sleep, how it grows, and the shortest sleep allowed; the
/// longest is the wait's poll interval. The defaults (250 ms, doubling, at least 50 ms) pick up
/// short work quickly without polling long work more often than asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollingPolicy {
    first_delay: Duration,
    multiplier: f64,
    min_delay: Duration,
}

impl Default for PollingPolicy {
    fn default() -> PollingPolicy {
        PollingPolicy { first_delay: Duration::from_millis(250), multiplier: 2.0, min_delay: Duration::from_millis(50) }
    }
}

impl PollingPolicy {
    /// The sleep after the first poll (default 250 ms).
    pub fn first_delay(mut self, delay: Duration) -> Self {
        self.first_delay = delay;
        self
    }

    /// How each sleep grows from the one before (default 2; values below 1 count as 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The shortest sleep, whatever the poll interval (default 50 ms).
    pub fn min_delay(mut self, delay: Duration) -> Self {
        self.min_delay = delay;
        self
    }

    /// The sleep after `previous`, at most `interval`.
    fn next(&self, previous: Duration, interval: Duration) -> Duration {
        let factor = if self.multiplier.is_finite() { self.multiplier.max(1.0) } else { 1.0 };
        previous.mul_f64(factor).min(interval).max(self.min_delay)
    }
}

/// How many status polls may fail in a row for a transient reason (each already retried by
/// the call's retry policy) before the wait reports the failure instead of polling on; a poll
/// that fails for good ends the wait at once. Default 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollErrorPolicy {
    max_failed_in_a_row: u32,
}

impl Default for PollErrorPolicy {
    fn default() -> PollErrorPolicy {
        PollErrorPolicy { max_failed_in_a_row: 10 }
    }
}

impl PollErrorPolicy {
    /// At most this many transiently failed polls in a row (at least 1).
    pub fn max_failed_in_a_row(mut self, polls: u32) -> Self {
        self.max_failed_in_a_row = polls.max(1);
        self
    }
}

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

/// The one kind of progress callback: called with every report, possibly from several tasks
/// at once (the parts of an upload), so it is `Fn + Send + Sync`.
pub(crate) type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

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
    /// One status check, its RPCs made with `options`. `wants_progress` says whether anyone
    /// listens for progress (a target may need an extra RPC to report it).
    fn check(&self, options: CallOptions, wants_progress: bool) -> BoxFuture<'_, Check<Self::Output>>;
}

/// How long work of one kind is waited for by default: the longest time between polls, and
/// the timeout of the whole wait.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub poll_interval: Duration,
    pub timeout: Duration,
}

impl Pace {
    pub(crate) const OPERATION: Pace =
        Pace { poll_interval: Duration::from_secs(10), timeout: Duration::from_secs(3600) };
    pub(crate) const VALIDATION: Pace =
        Pace { poll_interval: Duration::from_secs(10), timeout: Duration::from_secs(6 * 3600) };
    pub(crate) const TUNING: Pace =
        Pace { poll_interval: Duration::from_secs(10), timeout: Duration::from_secs(72 * 3600) };
    pub(crate) const BATCH: Pace =
        Pace { poll_interval: Duration::from_secs(10), timeout: Duration::from_secs(72 * 3600) };
}

/// The settings of a wait, shared by [`Wait`] and the calls that wait for their work
/// (`draft.upload()`, `model.tune(..)`).
#[derive(Clone)]
pub(crate) struct WaitOptions {
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub poll_timeout: Duration,
    pub retry: Option<RetryPolicy>,
    pub polling: PollingPolicy,
    pub errors: PollErrorPolicy,
    pub on_progress: Option<ProgressFn>,
}

impl WaitOptions {
    pub(crate) fn new(pace: Pace) -> WaitOptions {
        WaitOptions {
            poll_interval: pace.poll_interval,
            timeout: pace.timeout,
            poll_timeout: POLL_TIMEOUT,
            retry: None,
            polling: PollingPolicy::default(),
            errors: PollErrorPolicy::default(),
            on_progress: None,
        }
    }

    fn report(&self, mut progress: Progress, started: Instant) {
        if let Some(callback) = &self.on_progress {
            progress.elapsed = started.elapsed();
            callback(&progress);
        }
    }
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("poll_interval", &self.poll_interval)
            .field("timeout", &self.timeout)
            .field("poll_timeout", &self.poll_timeout)
            .field("polling", &self.polling)
            .field("errors", &self.errors)
            .field("on_progress", &self.on_progress.is_some())
            .finish_non_exhaustive()
    }
}

/// The wait settings every waiting call shares, as methods of `$t` (its `WaitOptions` reached
/// through `$options`).
macro_rules! wait_settings {
    ($(@$generic:ident)? $t:ty, |$this:ident| $options:expr) => {
        impl $(<$generic>)? $t {
            /// Longest time between status polls (the default depends on the kind of work; see
            /// [`Wait`](crate::operations::Wait)). Polls start 250 ms apart and grow to this.
            pub fn poll_interval(mut self, interval: std::time::Duration) -> Self {
                let $this = &mut self;
                $options.poll_interval = interval;
                self
            }

            /// How polls are spaced.
            pub fn polling_policy(mut self, policy: $crate::operations::PollingPolicy) -> Self {
                let $this = &mut self;
                $options.polling = policy;
                self
            }

            /// How many polls may fail in a row before the wait reports the failure.
            pub fn poll_error_policy(mut self, policy: $crate::operations::PollErrorPolicy) -> Self {
                let $this = &mut self;
                $options.errors = policy;
                self
            }

            /// Called with every progress report while the work runs (e.g. to draw a progress
            /// bar).
            pub fn on_progress(
                mut self,
                callback: impl Fn(&$crate::operations::Progress) + Send + Sync + 'static,
            ) -> Self {
                let $this = &mut self;
                $options.on_progress = Some(std::sync::Arc::new(callback));
                self
            }
        }
    };
}
pub(crate) use wait_settings;

/// Waiting for long-running work; configure, then `.await`. Giving up (the timeout, or
/// dropping the future) never cancels the work on the server: re-attach by id later.
#[must_use = "a Wait does nothing until awaited"]
pub struct Wait<T> {
    target: Box<dyn PollTarget<Output = T>>,
    options: WaitOptions,
}

impl<T: Send + 'static> fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait").field("id", &self.target.id()).field("options", &self.options).finish()
    }
}

wait_settings!(@T Wait<T>, |this| this.options);

impl<T: Send + 'static> Wait<T> {
    pub(crate) fn new(target: impl PollTarget<Output = T>, pace: Pace) -> Wait<T> {
        Wait::with_options(target, WaitOptions::new(pace))
    }

    pub(crate) fn with_options(target: impl PollTarget<Output = T>, options: WaitOptions) -> Wait<T> {
        Wait { target: Box::new(target), options }
    }

    /// How long to wait in total before giving up (the work keeps running on the server).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Timeout of each status poll, its retries included (default 60 s).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.options.poll_timeout = timeout;
        self
    }

    /// Retry policy of each status poll (default: the SDK's).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }

    async fn run(self) -> Result<T> {
        let Wait { target, options } = self;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + crate::clock::capped(options.timeout);
        let poll_interval = options.poll_interval.max(options.polling.min_delay);
        let mut delay = options.polling.first_delay.min(poll_interval).max(options.polling.min_delay);
        let poll = CallOptions { retry: options.retry.clone(), ..CallOptions::with_timeout(options.poll_timeout) };
        let mut failed_polls = 0u32;
        let mut last_failure = None;
        let gave_up = |last_failure: Option<Error>| gave_up(target.id(), options.timeout, last_failure);
        loop {
            let check = tokio::time::timeout_at(
                deadline,
                target.check(
                    poll.until(deadline.min(tokio::time::Instant::now() + options.poll_timeout)),
                    options.on_progress.is_some(),
                ),
            )
            .await;
            match check {
                Err(_) => return Err(gave_up(last_failure)),
                Ok(Ok(Check::Done(result, progress))) => {
                    if let (Some(p), true) = (progress, result.is_ok()) {
                        options.report(p, started);
                    }
                    return result;
                }
                Ok(Ok(Check::Running(progress))) => {
                    failed_polls = 0;
                    last_failure = None;
                    if let Some(p) = progress {
                        options.report(p, started);
                    }
                }
                // A poll that failed for a transient reason says nothing about the work itself.
                Ok(Err(e)) if e.is_retryable() || e.is_timeout() => {
                    failed_polls += 1;
                    if failed_polls >= options.errors.max_failed_in_a_row {
                        let id = target.id();
                        return Err(e
                            .context(&format!(
                                "{failed_polls} status polls of {id} failed in a row; the work may still be running, \
                                 re-attach with its id once the service is reachable"
                            ))
                            .with_operation_id(id));
                    }
                    tracing::warn!(id = target.id(), failed_polls, error = %e, "status poll failed; polling on");
                    last_failure = Some(e);
                }
                Ok(Err(e)) => return Err(e),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(gave_up(last_failure));
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = options.polling.next(delay, poll_interval);
        }
    }
}

/// The timeout error of a wait; a poll failure just before it is its source, so the real
/// cause of a wait that never saw the work is not hidden.
fn gave_up(id: &str, timeout: Duration, last_failure: Option<Error>) -> Error {
    let mut message = format!("did not finish within {timeout:?}; it keeps running on the server");
    if let Some(e) = &last_failure {
        message.push_str(&format!(" (the last status poll failed: {e})"));
    }
    let error = Error::new(ErrorKind::Timeout, message)
        .with_code(Code::DeadlineExceeded)
        .with_operation_id(id)
        .with_remedy(Remedy::Reattach { id: id.to_owned() });
    match last_failure {
        Some(e) => error.with_source(e),
        None => error,
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
        fn check(&self, _: CallOptions, _: bool) -> BoxFuture<'_, Check<u32>> {
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
        let pace = Pace { poll_interval: Duration::from_millis(4), timeout: Duration::from_secs(5) };
        (Wait::new(target, pace), checks)
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
        let w = Wait::new(target, Pace { poll_interval: Duration::from_secs(2), timeout: Duration::from_secs(10) });
        let _ = w.await;
        // At 0, .25, .75, 1.75, 3.75, 5.75, 7.75, 9.75 and (the last, at the deadline) 10 s.
        assert_eq!(checks.load(Ordering::SeqCst), 9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_still_leaves_time_between_polls() {
        let checks = Arc::new(AtomicU32::new(0));
        let target = Script { checks: checks.clone(), done_at: u32::MAX, failing: vec![], fatal_at: None };
        let w = Wait::new(target, Pace { poll_interval: Duration::ZERO, timeout: Duration::from_secs(1) });
        let _ = w.await;
        // Every 50 ms over one second, plus the poll at the start.
        assert_eq!(checks.load(Ordering::SeqCst), 21);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_failing_in_a_row_end_the_wait_with_their_cause() {
        let (w, checks) = wait(u32::MAX, (1..=100).collect(), None);
        let e = w.timeout(Duration::MAX).await.unwrap_err();
        assert_eq!(checks.load(Ordering::SeqCst), 10, "the default error policy");
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

    #[tokio::test(start_paused = true)]
    async fn polling_and_error_policies_are_values_a_wait_takes() {
        // Polls a second apart from the start, never growing: at 0, 1, 2 and 3 s (the deadline).
        let checks = Arc::new(AtomicU32::new(0));
        let target = Script { checks: checks.clone(), done_at: u32::MAX, failing: vec![], fatal_at: None };
        let w = Wait::new(target, Pace { poll_interval: Duration::from_secs(10), timeout: Duration::from_secs(3) })
            .polling_policy(PollingPolicy::default().first_delay(Duration::from_secs(1)).multiplier(1.0));
        let _ = w.await;
        assert_eq!(checks.load(Ordering::SeqCst), 4);
        // Three failed polls in a row are enough when the policy says so.
        let (w, checks) = wait(u32::MAX, (1..=100).collect(), None);
        let e = w.poll_error_policy(PollErrorPolicy::default().max_failed_in_a_row(3)).await.unwrap_err();
        assert_eq!(checks.load(Ordering::SeqCst), 3);
        assert!(e.message().starts_with("3 status polls of op1 failed in a row"), "{e}");
    }
}
