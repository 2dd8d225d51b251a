//! Long work a user can leave and come back to: the id is printed (on stderr) as soon as the
//! work starts, and Ctrl-C during a wait says what is still running and the commands that
//! resume or cancel it, instead of exiting with nothing printed.

use std::future::IntoFuture;

/// Work that runs on the server while the CLI waits for it.
pub struct Running<'a> {
    /// `tuning task`, `batch task`, `operation`.
    what: &'a str,
    id: &'a str,
    /// The `ycml` subcommands that wait for it again and cancel it (`tuning wait`, …).
    wait: &'a str,
    cancel: Option<&'a str>,
    /// Ctrl-C, listened to from the start: one that comes right after the announcement is
    /// not lost (nor does it kill the process before the wait listens).
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl<'a> Running<'a> {
    pub fn new(what: &'a str, id: &'a str, wait: &'a str, cancel: Option<&'a str>) -> Running<'a> {
        Running {
            what,
            id,
            wait,
            cancel,
            #[cfg(unix)]
            interrupt: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    /// How to come back to the work, and to cancel it if it can be.
    fn commands(&self) -> String {
        let wait = format!("wait for it again with `ycml {} {}`", self.wait, self.id);
        match self.cancel {
            Some(cancel) => format!("{wait}, cancel it with `ycml {cancel} {}`", self.id),
            None => wait,
        }
    }

    /// Says on stderr that the work started and how to come back to it.
    pub fn announce(&self) {
        eprintln!("{} {} started; {}", self.what, self.id, self.commands());
    }

    /// Waits for `work`; on Ctrl-C says that the work goes on and exits with 130, as shells
    /// expect of an interrupted command.
    pub async fn wait<T>(mut self, work: impl IntoFuture<Output = T>) -> T {
        let interrupted = async {
            #[cfg(unix)]
            if let Some(signal) = self.interrupt.as_mut() {
                signal.recv().await;
                return;
            }
            let _ = tokio::signal::ctrl_c().await;
        };
        tokio::select! {
            done = work => done,
            () = interrupted => {
                eprintln!("\ninterrupted: {} {} is still running on the server; {}", self.what, self.id, self.commands());
                std::process::exit(130);
            }
        }
    }
}

/// Waits for a task's `wait` with a progress bar and the Ctrl-C handling of `running`; long
/// work (tuning, batch) gives up after 72 hours, as the SDK does.
pub async fn with_bar<T: Send + 'static>(
    running: Running<'_>,
    wait: yandex_cloud_ml_sdk::operations::Wait<T>,
    poll_interval: std::time::Duration,
) -> Result<T, crate::error::CliError> {
    let bar = crate::progress::Bar::new();
    let waiting = wait.poll_interval(poll_interval).timeout(std::time::Duration::from_secs(72 * 3600));
    let done = running.wait(waiting.on_progress(bar.callback())).await;
    bar.finish(done.is_ok());
    Ok(done?)
}
