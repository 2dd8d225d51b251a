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

use crate::{Context, commands::complete::print_result, error::CliError, output::Out};

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

fn print_status(out: Out, s: &OperationInfo) -> Result<(), CliError> {
    use yandex_cloud_ml_sdk::operations::OperationStatus;
    let state = match s.status() {
        OperationStatus::Running => "running",
        OperationStatus::Failed => "failed",
        _ => "done",
    };
    let error = s.error.as_ref().map(|e| json!({"code": e.code.as_str(), "message": e.message}));
    let record = json!({"id": s.id, "description": s.description, "done": s.done, "status": state, "error": error});
    out.record(&record, &["id", "status", "description", "error"])
}

/// Prints what a finished operation produced, whatever kind it is: an answer, a validated
/// dataset, a tuned model, a batch task's result dataset.
async fn print_response(sdk: &Sdk, out: Out, id: &str, response: &prost_types::Any) -> Result<(), CliError> {
    let kind = response.type_url.rsplit('.').next().unwrap_or_default();
    match kind {
        "CompletionResponse" => {
            let result = sdk.operations().get::<CompletionResult>(id).result().await?;
            print_result(out, &result)
        }
        "ValidateDatasetResponse" => {
            let dataset = sdk.operations().get::<Dataset>(id).result().await?;
            super::datasets::print_dataset(out, dataset.info())
        }
        "TuningResponse" => {
            let model = sdk.operations().get::<GptModel>(id).result().await?;
            out.fields(&[("model_uri", model.uri())])
        }
        "BatchCompletionResponse" => {
            let batch = unpack_any::<BatchCompletionResponse>(response)
                .ok_or("the operation's response is not a batch response")?
                .map_err(|e| e.to_string())?;
            out.fields(&[("task_id", &batch.task_id), ("result_dataset_id", &batch.result_dataset_id)])
        }
        _ => out.fields(&[("id", id), ("status", "done"), ("response_type", &response.type_url)]),
    }
}

pub async fn run(cx: &Context, action: OperationAction) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let operations = sdk.operations();
    match action {
        OperationAction::Get { id } => print_status(cx.out, &operations.get_untyped(id).info().await?),
        OperationAction::Cancel { id } => {
            let operation = operations.get_untyped(id);
            operation.cancel().await?;
            print_status(cx.out, &operation.info().await?)
        }
        OperationAction::Wait { id, wait_timeout } => {
            let running = crate::resume::Running::new("operation", &id, "operation wait", Some("operation cancel"));
            let waiting = operations.get_untyped(&id).wait().poll_interval(cx.poll_interval).timeout(wait_timeout);
            let response = running.wait(waiting).await?;
            print_response(&sdk, cx.out, &id, &response).await
        }
    }
}
