//! The one call type: every SDK method that talks to the cloud returns a [`Call`], whose
//! per-call options are set fluently and which runs when awaited.
//!
//! ```no_run
//! # async fn demo(model: yandex_cloud_ml_sdk::completions::GptModel) -> yandex_cloud_ml_sdk::Result<()> {
//! use std::time::Duration;
//! use yandex_cloud_ml_sdk::RetryPolicy;
//! let answer = model
//!     .run("hello")
//!     .timeout(Duration::from_secs(30))
//!     .attempt_timeout(Duration::from_secs(10))
//!     .retry_policy(RetryPolicy::default().max_attempts(3))
//!     .await?;
//! # Ok(()) }
//! ```

use std::{
    fmt,
    future::{Future, IntoFuture},
    pin::Pin,
    time::Duration,
};

use tokio::time::Instant;

use crate::{error::Result, retry::RetryPolicy};

/// A boxed, sendable future of an SDK result.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Timeouts and retry overrides of one logical call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Budget for the whole call: every attempt, the backoff sleeps and, for streams, reading
    /// the stream to its end.
    pub(crate) timeout: Duration,
    /// Bound of a single attempt (for streams: until the first message arrives).
    pub(crate) attempt_timeout: Option<Duration>,
    /// Replaces the SDK's retry policy for this call.
    pub(crate) retry: Option<RetryPolicy>,
}

impl CallOptions {
    pub(crate) fn with_timeout(timeout: Duration) -> CallOptions {
        CallOptions { timeout, attempt_timeout: None, retry: None }
    }

    /// The overall deadline of the call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// When a call with these options, started now, must end.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + crate::clock::capped(self.timeout)
    }

    /// The same options for a step of a call that must end by `deadline`: a call of several
    /// RPCs gives each the time that is left, so its timeout bounds all of them.
    pub(crate) fn until(&self, deadline: Instant) -> CallOptions {
        CallOptions { timeout: deadline.saturating_duration_since(Instant::now()), ..self.clone() }
    }
}

/// What a [`Call`] does when awaited: one SDK request with its payload, its default timeout
/// and its output type. Implemented by the SDK's request types (e.g.
/// [`completions::Run`](crate::completions::Run)); not meant to be implemented outside the SDK.
pub trait Action: Send + Sized + 'static {
    /// What awaiting the call produces.
    type Output: Send + 'static;
    /// Overall timeout used unless [`Call::timeout`] sets another.
    const DEFAULT_TIMEOUT: Duration;
    /// Attempt timeout used unless [`Call::attempt_timeout`] sets another (calls that last
    /// hours bound each of their RPC attempts).
    const DEFAULT_ATTEMPT_TIMEOUT: Option<Duration> = None;

    /// Runs the request with the call's options.
    #[doc(hidden)]
    fn execute(self, options: CallOptions) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// A configured request: set per-call options, then `.await` it. Nothing is sent before that.
#[must_use = "a call does nothing until awaited"]
pub struct Call<A> {
    action: A,
    options: CallOptions,
}

impl<A: Action> Call<A> {
    pub(crate) fn new(action: A) -> Call<A> {
        let options = CallOptions {
            attempt_timeout: A::DEFAULT_ATTEMPT_TIMEOUT,
            ..CallOptions::with_timeout(A::DEFAULT_TIMEOUT)
        };
        Call { action, options }
    }

    /// Overall deadline: all attempts, backoff and (for streams) reading to the end.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Bound of a single attempt (for streams: until the first chunk); a timed-out attempt is
    /// retried while the retry policy and the overall deadline allow.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.options.attempt_timeout = Some(timeout);
        self
    }

    /// Retry policy for this call only.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }

    /// The request this call will send.
    pub fn action(&self) -> &A {
        &self.action
    }

    pub(crate) fn action_mut(&mut self) -> &mut A {
        &mut self.action
    }

    pub(crate) fn into_parts(self) -> (A, CallOptions) {
        (self.action, self.options)
    }

    /// The options set so far.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }
}

impl<A: Action + fmt::Debug> fmt::Debug for Call<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("action", &self.action)
            .field("timeout", &self.options.timeout)
            .field("attempt_timeout", &self.options.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl<A: Action> IntoFuture for Call<A> {
    type Output = Result<A::Output>;
    type IntoFuture = BoxFuture<'static, A::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.action.execute(self.options))
    }
}

/// Default timeout of a handle's call (a status, a cancel, an id looked up).
const HANDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A call of a handle's method: an operation's or a task's status, result, cancel, and so on.
/// Its timeout (default 60 s) bounds every RPC the method makes.
pub struct HandleCall<O> {
    name: &'static str,
    run: Box<dyn FnOnce(CallOptions) -> BoxFuture<'static, O> + Send>,
}

impl<O: Send + 'static> HandleCall<O> {
    pub(crate) fn call<F>(
        name: &'static str,
        run: impl FnOnce(CallOptions) -> F + Send + 'static,
    ) -> Call<HandleCall<O>>
    where
        F: Future<Output = Result<O>> + Send + 'static,
    {
        Call::new(HandleCall { name, run: Box::new(move |options| Box::pin(run(options))) })
    }
}

impl<O> fmt::Debug for HandleCall<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl<O: Send + 'static> Action for HandleCall<O> {
    type Output = O;
    const DEFAULT_TIMEOUT: Duration = HANDLE_TIMEOUT;

    fn execute(self, options: CallOptions) -> impl Future<Output = Result<O>> + Send {
        (self.run)(options)
    }
}
