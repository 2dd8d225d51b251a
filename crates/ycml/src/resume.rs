//! Long work a user can leave and come back to: the id is printed (on stderr) as soon as the
//! work starts, and Ctrl-C during a wait says what is still running and the commands that
//! resume or cancel it, instead of exiting with nothing printed.

use std::future::IntoFuture;

/// Work that runs on the server while the CLI waits for it.
pub struct Running<'a> {
    /// `tuning task`, `batch task`, `operation`.
    pub what: &'a str,
    pub id: &'a str,
    /// The `ycml` subcommands that wait for it again and cancel it (`tuning wait`, …).
    pub wait: &'a str,
    pub cancel: &'a str,
}

impl Running<'_> {
    /// Says on stderr that the work started and how to come back to it.
    pub fn announce(&self) {
        eprintln!(
            "{} {} started; wait for it again with `ycml {} {}`, cancel it with `ycml {} {}`",
            self.what, self.id, self.wait, self.id, self.cancel, self.id
        );
    }

    /// Waits for `work`; on Ctrl-C says that the work goes on and exits with 130, as shells
    /// expect of an interrupted command.
    pub async fn wait<T>(&self, work: impl IntoFuture<Output = T>) -> T {
        tokio::select! {
            done = work => done,
            _ = tokio::signal::ctrl_c() => {
                eprintln!(
                    "\ninterrupted: {} {} is still running on the server; wait for it again with `ycml {} {}`, \
                     cancel it with `ycml {} {}`",
                    self.what, self.id, self.wait, self.id, self.cancel, self.id
                );
                std::process::exit(130);
            }
        }
    }
}
