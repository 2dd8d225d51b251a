//! Retries shown as one status line on stderr (rewritten in place on a terminal) instead of
//! log lines: `retrying TextGenerationService/Completion (attempt 2 of 5, next in 1.6s): …`.

use std::{
    fmt::Debug,
    io::{IsTerminal, Write},
};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{Layer, layer::Context};

/// The layer that renders the SDK's retry events.
pub struct RetryStatus {
    terminal: bool,
}

impl RetryStatus {
    pub fn new() -> RetryStatus {
        RetryStatus { terminal: std::io::stderr().is_terminal() }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    method: String,
    attempt: u64,
    max_attempts: u64,
    delay: String,
    error: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "attempt" => self.attempt = value,
            "max_attempts" => self.max_attempts = value,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "method" {
            self.method = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "delay" => self.delay = format!("{value:.1?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for RetryStatus {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("yandex_cloud_ml_sdk") {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message != "retrying" {
            return;
        }
        let line = format!(
            "retrying {} (attempt {} of {}, next in {}): {}",
            f.method,
            f.attempt + 1,
            f.max_attempts,
            f.delay,
            f.error
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

/// Ends the status line (so the next output starts on a fresh line).
pub fn finish() {
    if std::io::stderr().is_terminal() {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}
