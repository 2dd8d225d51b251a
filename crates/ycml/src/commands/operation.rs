//! `ycml operation get|wait|cancel ID`.

use std::time::Duration;

use serde_json::json;
use yandex_cloud_ml_sdk::{completions::CompletionResult, operations::OperationStatus};

use crate::{Output, commands::complete::print_result, connect::Connection};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum OperationAction {
    /// Show the status of an operation.
    Get {
        /// Operation id.
        id: String,
    },
    /// Wait until the operation finishes and print its result.
    Wait {
        /// Operation id.
        id: String,
        /// Seconds between polls.
        #[arg(long, default_value_t = 2.0)]
        poll_interval: f64,
        /// Give up after this many seconds (the operation keeps running).
        #[arg(long, default_value_t = 3600.0)]
        wait_timeout: f64,
    },
    /// Cancel a running operation.
    Cancel {
        /// Operation id.
        id: String,
    },
}

fn print_status(output: Output, s: &OperationStatus) {
    let state = if s.is_running() {
        "running"
    } else if s.is_failed() {
        "failed"
    } else {
        "done"
    };
    match output {
        Output::Json => {
            let error = s.error.as_ref().map(|e| json!({"code": e.code.as_str(), "message": e.message}));
            println!(
                "{}",
                json!({"id": s.id, "description": s.description, "done": s.done, "status": state, "error": error})
            );
        }
        Output::Text => {
            print!("{} {state}", s.id);
            if let Some(e) = &s.error {
                print!(": {} {}", e.code, e.message);
            }
            println!();
        }
    }
}

fn seconds(v: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("{flag} must be a non-negative number of seconds"))
}

pub async fn run(connection: &Connection, output: Output, action: OperationAction) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let operations = sdk.operations();
    match action {
        OperationAction::Get { id } => {
            let status = operations.get_untyped(id).status().await.map_err(crate::connect::explain)?;
            print_status(output, &status);
        }
        OperationAction::Cancel { id } => {
            let status = operations.get_untyped(id).cancel().await.map_err(crate::connect::explain)?;
            print_status(output, &status);
        }
        OperationAction::Wait { id, poll_interval, wait_timeout } => {
            let result = operations
                .get::<CompletionResult>(id)
                .wait()
                .poll_interval(seconds(poll_interval, "--poll-interval")?)
                .timeout(seconds(wait_timeout, "--wait-timeout")?)
                .await
                .map_err(crate::connect::explain)?;
            print_result(output, &result)?;
        }
    }
    Ok(())
}
