//! `ycml operation get|wait|cancel ID`, for every kind of operation.

use std::time::Duration;

use serde_json::json;
use yandex_cloud_ml_sdk::{
    Sdk,
    completions::{CompletionResult, GptModel},
    datasets::Dataset,
    operations::OperationInfo,
    proto::{unpack_any, yandex::cloud::ai::foundation_models::v1::BatchCompletionResponse},
};

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
        /// Longest time between polls (seconds, or 500ms, 30s, 2m, 1h).
        #[arg(long, value_name = "DURATION", default_value = "2", value_parser = crate::seconds::parse)]
        poll_interval: Duration,
        /// Give up after this long (seconds, or 30s, 2m, 1h); the operation keeps running.
        #[arg(long, value_name = "DURATION", default_value = "3600", value_parser = crate::seconds::parse)]
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

/// Prints what a finished operation produced, whatever kind it is: an answer, a validated
/// dataset, a tuned model, a batch task's result dataset.
async fn print_response(sdk: &Sdk, output: Output, id: &str, response: &prost_types::Any) -> Result<(), String> {
    let explain = crate::connect::explain;
    let kind = response.type_url.rsplit('.').next().unwrap_or_default();
    match kind {
        "CompletionResponse" => {
            let result = sdk.operations().get::<CompletionResult>(id).result().await.map_err(explain)?;
            print_result(output, &result)?;
        }
        "ValidateDatasetResponse" => {
            let dataset = sdk.operations().get::<Dataset>(id).result().await.map_err(explain)?;
            let info = dataset.info();
            match output {
                Output::Text => println!("dataset {} {} ({} rows)", dataset.id(), dataset.status(), info.rows),
                Output::Json => println!("{}", serde_json::to_string(info).map_err(|e| e.to_string())?),
            }
        }
        "TuningResponse" => {
            let model = sdk.operations().get::<GptModel>(id).result().await.map_err(explain)?;
            match output {
                Output::Text => println!("{}", model.uri()),
                Output::Json => println!("{}", json!({"model_uri": model.uri()})),
            }
        }
        "BatchCompletionResponse" => {
            let batch = unpack_any::<BatchCompletionResponse>(response)
                .ok_or("the operation's response is not a batch response")?
                .map_err(|e| e.to_string())?;
            match output {
                Output::Text => println!("task_id {}\nresult_dataset_id {}", batch.task_id, batch.result_dataset_id),
                Output::Json => {
                    println!("{}", json!({"task_id": batch.task_id, "result_dataset_id": batch.result_dataset_id}))
                }
            }
        }
        other => match output {
            Output::Text => println!("{id} done ({other})"),
            Output::Json => println!("{}", json!({"id": id, "done": true, "response_type": response.type_url})),
        },
    }
    Ok(())
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
            let running = crate::resume::Running::new("operation", &id, "operation wait", Some("operation cancel"));
            let waiting = operations.get_untyped(&id).wait().poll_interval(poll_interval).timeout(wait_timeout);
            let response = running.wait(waiting).await.map_err(crate::connect::explain)?;
            print_response(&sdk, output, &id, &response).await?;
        }
    }
    Ok(())
}
