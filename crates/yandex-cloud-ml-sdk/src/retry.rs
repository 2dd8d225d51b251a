//! Retry policy: which failures are retried, how often, and how long to wait in between.
//!
//! The defaults match the official Python SDK (5 attempts in total, UNAVAILABLE and
//! RESOURCE_EXHAUSTED; before retry n a sleep of 1 s × 1.5ⁿ plus up to 1 s of jitter, the sum
//! capped at 10 s). Unlike the Python SDK, every call also has an overall deadline that the
//! backoff sleeps respect, an optional per-attempt timeout, and a server stream is never
//! replayed once a message has been handed to the caller.

use std::time::Duration;

use crate::error::{Code, Error, ErrorKind};

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

    /// Whether `error` after `attempt` attempts (1-based) should be retried.
    pub(crate) fn should_retry(&self, error: &Error, attempt: u32) -> bool {
        attempt < self.max_attempts && self.retries(error)
    }

    /// Whether this policy counts `error` as transient, whatever the attempt count.
    pub(crate) fn retries(&self, error: &Error) -> bool {
        error.kind() == ErrorKind::Transport
            || error.kind() == ErrorKind::Rpc && error.code().is_some_and(|c| self.retryable_codes.contains(&c))
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

    #[test]
    fn retries_only_configured_codes_and_respects_attempts() {
        let p = RetryPolicy::default();
        let unavailable = Error::from_status(tonic::Status::unavailable("x"));
        let invalid = Error::from_status(tonic::Status::invalid_argument("x"));
        assert!(p.should_retry(&unavailable, 1));
        assert!(p.should_retry(&unavailable, 4));
        assert!(!p.should_retry(&unavailable, 5));
        assert!(!p.should_retry(&invalid, 1));
        assert!(!RetryPolicy::none().should_retry(&unavailable, 1));
        assert!(!RetryPolicy::none().retries_enabled());
    }
}
