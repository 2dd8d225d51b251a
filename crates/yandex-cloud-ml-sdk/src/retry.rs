//! Retry policy: which failures are retried, how often, and how long to wait in between.
//!
//! The defaults match the official Python SDK (5 attempts in total, UNAVAILABLE and
//! RESOURCE_EXHAUSTED; before retry n a sleep of 1 s × 1.5ⁿ plus up to 1 s of jitter, the sum
//! capped at 10 s). Unlike the Python SDK, every call also has an overall deadline that the
//! backoff sleeps respect, an optional per-attempt timeout, and a server stream is never
//! replayed once a message has been handed to the caller.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Code, Error, ErrorKind, Result};

/// How failed calls are retried. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    jitter: Duration,
    retryable_codes: Vec<Code>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            multiplier: 1.5,
            jitter: Duration::from_secs(1),
            retryable_codes: vec![Code::Unavailable, Code::ResourceExhausted],
        }
    }
}

impl RetryPolicy {
    /// No retries: every call is attempted exactly once and no retry headers are sent.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// Total attempts including the first one (at least 1; 0 is treated as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sleep before the first retry, before the multiplier is applied.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Upper bound of a single sleep (jitter included).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Growth factor of the backoff per failed attempt (values below 1 are treated as 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() { multiplier.max(1.0) } else { 1.0 };
        self
    }

    /// Upper bound of the uniformly random delay added to each sleep.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// gRPC codes that are retried (replaces the default UNAVAILABLE, RESOURCE_EXHAUSTED).
    pub fn retryable_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.retryable_codes = codes.into_iter().collect();
        self
    }

    /// The configured number of attempts.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether this policy can retry at all.
    pub fn retries_enabled(&self) -> bool {
        self.max_attempts > 1
    }

    /// Whether this policy counts `error` as transient, whatever the attempt count: a broken
    /// connection, a gRPC status with one of its codes, an object-storage answer that says to
    /// try again (5xx, 429).
    pub(crate) fn retries(&self, error: &Error) -> bool {
        match error.kind() {
            ErrorKind::Transport => true,
            ErrorKind::Rpc => error.code().is_some_and(|c| self.retryable_codes.contains(&c)),
            // The OpenAI-compatible API's statuses carry their gRPC code (429 RESOURCE_EXHAUSTED,
            // 502/503 UNAVAILABLE, 500 INTERNAL, …): the policy's codes decide, as for gRPC.
            ErrorKind::Http if error.code().is_some() => {
                error.code().is_some_and(|c| self.retryable_codes.contains(&c))
            }
            ErrorKind::Http => error.is_retryable(),
            _ => false,
        }
    }

    /// The sleep after the `failures`-th failure (1-based): initial × multiplier^failures plus
    /// jitter, capped at `max_backoff`.
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(failures.min(64) as i32);
        let jitter = self.jitter.as_secs_f64() * fastrand::f64();
        let secs = (base + jitter).min(self.max_backoff.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_backoff)
    }
}

/// What the retry loop does after a failed attempt.
pub(crate) enum Next {
    /// Sleep the policy's backoff, then try again.
    Backoff,
    /// Try again at once (e.g. with a fresh token).
    Now,
    /// Try again after this long (the server said when, e.g. HTTP `Retry-After`), if the
    /// policy retries the error and the call's deadline leaves that much time.
    After(Duration),
    /// Give up with this error.
    GiveUp,
}

/// The attempts of one logical call, for [`run`].
pub(crate) struct Attempts<'a> {
    /// What is attempted, for logs (a gRPC method, "upload PUT"), and the call's request id.
    pub what: &'a str,
    pub request_id: &'a str,
    pub policy: &'a RetryPolicy,
    /// The call's overall deadline, and the timeout it came from (for the error).
    pub deadline: Instant,
    pub timeout: Duration,
    /// Bound of each attempt.
    pub attempt_timeout: Option<Duration>,
}

/// The one retry loop, for gRPC calls and object-storage requests alike: runs `attempt` (given
/// its number and deadline) until it succeeds, `after_failure` gives up, the policy's attempts
/// are used up, or the overall deadline passes. An attempt cut off by its own timeout is
/// retried like a transient failure; the overall deadline ends the call with a timeout that
/// names the last failure. Errors carry the number of attempts made.
pub(crate) async fn run<T, Fut>(
    attempts: Attempts<'_>,
    mut attempt: impl FnMut(u32, Instant) -> Fut,
    mut after_failure: impl FnMut(&mut Error, u32) -> Next,
) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let Attempts { what, request_id, policy, deadline, timeout, attempt_timeout } = attempts;
    let timed_out = |made: u32, last: Option<&Error>| {
        let e = Error::timeout(timeout);
        let e = match last {
            Some(last) => e.after_failure(last),
            None => e,
        };
        e.with_attempts(made)
    };
    let mut last_failure: Option<Error> = None;
    let mut number = 0;
    loop {
        number += 1;
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(number - 1, last_failure.as_ref()));
        }
        let attempt_deadline = attempt_timeout.map_or(deadline, |t| (now + crate::clock::capped(t)).min(deadline));
        let expired = match tokio::time::timeout_at(attempt_deadline, attempt(number, attempt_deadline)).await {
            Ok(Ok(value)) => return Ok(value),
            // A server that gives up at the deadline we sent it can answer just before our
            // timer fires (tonic servers answer CANCELLED): that is this deadline passing too.
            Ok(Err(e)) if gave_up_at_deadline(&e) && Instant::now() >= attempt_deadline => None,
            Ok(Err(e)) => Some(e),
            Err(_) => None,
        };
        let mut error = match expired {
            Some(e) => e,
            // The attempt's own timeout is a retryable failure; the overall deadline is not.
            None if attempt_deadline < deadline => Error::new(
                ErrorKind::Timeout,
                format!("attempt timed out after {:?}", attempt_timeout.unwrap_or_default()),
            )
            .with_code(Code::DeadlineExceeded),
            None => return Err(timed_out(number, last_failure.as_ref())),
        };
        let attempt_timed_out = error.kind() == ErrorKind::Timeout && attempt_deadline < deadline;
        let next = after_failure(&mut error, number);
        let retry = match next {
            Next::GiveUp => false,
            Next::Now => true,
            Next::Backoff | Next::After(_) => {
                number < policy.attempts() && (attempt_timed_out || policy.retries(&error))
            }
        };
        if let (true, Next::After(wait)) = (retry, &next)
            && Instant::now() + *wait > deadline
        {
            // Waiting as told would outlast the call: give up now, saying so.
            error = error.noted(&format!("the server asked to retry after {wait:?}, past the call's deadline"));
            error.set_retryable(true);
            return Err(error.with_attempts(number));
        }
        if !retry {
            // `is_retryable` reports this call's policy, so callers (and adapters such as rig's)
            // see the verdict the retry itself used.
            if !matches!(next, Next::GiveUp) {
                error.set_retryable(attempt_timed_out || policy.retries(&error));
            }
            tracing::debug!(method = what, request_id, attempt = number, error = %error, "call failed");
            return Err(error.with_attempts(number));
        }
        let delay = match next {
            Next::Backoff => Some(policy.backoff(number)),
            Next::After(wait) => Some(wait),
            Next::Now | Next::GiveUp => None,
        };
        if let Some(delay) = delay {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let delay = delay.min(remaining);
            tracing::warn!(
                method = what,
                request_id,
                attempt = number,
                max_attempts = policy.attempts(),
                error = %error,
                delay = ?delay,
                "retrying"
            );
            last_failure = Some(error);
            tokio::time::sleep(delay).await;
        }
    }
}

/// Whether the server ended the call because its deadline passed.
pub(crate) fn gave_up_at_deadline(error: &Error) -> bool {
    matches!(error.code(), Some(Code::DeadlineExceeded | Code::Cancelled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backoff_matches_python_sdk_schedule() {
        let p = RetryPolicy::default().jitter(Duration::ZERO);
        let sleeps: Vec<f64> = (1..=4).map(|n| p.backoff(n).as_secs_f64()).collect();
        assert_eq!(sleeps, vec![1.5, 2.25, 3.375, 5.0625]);
        assert_eq!(p.backoff(20), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let d = p.backoff(1).as_secs_f64();
            assert!((1.5..=2.5).contains(&d), "{d}");
        }
    }

    /// How many attempts the loop makes when every attempt fails with `status`.
    async fn attempts_made(policy: &RetryPolicy, status: fn() -> tonic::Status) -> u32 {
        let attempts = Attempts {
            what: "test",
            request_id: "",
            policy,
            deadline: Instant::now() + Duration::from_secs(3600),
            timeout: Duration::from_secs(3600),
            attempt_timeout: None,
        };
        let e = run(attempts, |_, _| async move { Err::<(), _>(Error::from_status(status())) }, |_, _| Next::Backoff)
            .await
            .unwrap_err();
        e.attempts()
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_configured_codes_and_respects_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(attempts_made(&p, || tonic::Status::unavailable("x")).await, 5);
        assert_eq!(attempts_made(&p, || tonic::Status::invalid_argument("x")).await, 1);
        assert_eq!(attempts_made(&RetryPolicy::none(), || tonic::Status::unavailable("x")).await, 1);
        let only_internal = RetryPolicy::default().retryable_codes([Code::Internal]).max_attempts(3);
        assert_eq!(attempts_made(&only_internal, || tonic::Status::internal("x")).await, 3);
        assert_eq!(attempts_made(&only_internal, || tonic::Status::unavailable("x")).await, 1);
        assert!(!RetryPolicy::none().retries_enabled());
    }
}
