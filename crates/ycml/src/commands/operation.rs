//! `ycml operation get|wait|cancel ID`.

use std::time::Duration;

use serde_json::json;
use yandex_cloud_ml_sdk::{completions::CompletionResult, operations::OperationInfo};

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
        /// Longest time between polls, in seconds.
        #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = crate::seconds::parse)]
        poll_interval: Duration,
        /// Give up after this many seconds (the operation keeps running).
        #[arg(long, value_name = "SECONDS", default_value = "3600", value_parser = crate::seconds::parse)]
        wait_timeout: Duration,
    },
    /// Cancel a running operation.
    Cancel {
        /// Operation id.
        id: String,
    },
}

fn print_status(output: Output, s: &OperationInfo) {
    use yandex_cloud_ml_sdk::operations::OperationStatus;
    let state = match s.status() {
        OperationStatus::Running => "running",
        OperationStatus::Failed => "failed",
        _ => "done",
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

pub async fn run(connection: &Connection, output: Output, action: OperationAction) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let operations = sdk.operations();
    match action {
        OperationAction::Get { id } => {
            let status = operations.get_untyped(id).info().await.map_err(crate::connect::explain)?;
            print_status(output, &status);
        }
        OperationAction::Cancel { id } => {
            let operation = operations.get_untyped(id);
            operation.cancel().await.map_err(crate::connect::explain)?;
            print_status(output, &operation.info().await.map_err(crate::connect::explain)?);
        }
        OperationAction::Wait { id, poll_interval, wait_timeout } => {
            let result = operations
                .get::<CompletionResult>(id)
                .wait()
                .poll_interval(poll_interval)
                .timeout(wait_timeout)
                .await
                .map_err(crate::connect::explain)?;
            print_result(output, &result)?;
        }
    }
    Ok(())
}
