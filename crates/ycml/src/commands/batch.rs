//! `ycml batch`: run a model over a dataset of prompts (a file is uploaded first), follow and
//! manage the tasks, and print the answers next to their prompts.

use futures_util::StreamExt;
use yandex_cloud_ml_sdk::{
    batch::{BatchStatus, BatchTaskInfo},
    datasets::TaskType,
};

use super::{complete::ModelArgs, datasets::id_or_upload};
use crate::{Context, error::CliError, output::Out};

/// `ycml batch …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BatchAction {
    /// Run a model over every row of a dataset of prompts.
    Run(RunArgs),
    /// List the folder's batch tasks (every page).
    List {
        /// Only this status (created, pending, in-progress, completed, failed, canceled).
        #[arg(long, value_parser = parse_status)]
        status: Option<BatchStatus>,
        /// Print at most this many (the listing stops reading pages there).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Show one batch task.
    Get {
        /// Task id.
        id: String,
    },
    /// Wait for a batch task started earlier (with a progress bar) and print its result dataset.
    Wait {
        /// Task id.
        id: String,
    },
    /// Cancel a running batch task (what it answered stays in its result dataset).
    Cancel {
        /// Task id.
        id: String,
    },
    /// Remove a finished batch task from the history (its result dataset stays).
    Delete {
        /// Task id.
        id: String,
    },
    /// Print a completed task's answers, one JSON object per line: `{"request", "response"}`.
    Results {
        /// Task id.
        id: String,
    },
}

/// `ycml batch run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A dataset id, or a `jsonlines` file of `{"request": [{"role", "text"}…]}` rows that is
    /// uploaded first.
    #[arg(long, value_name = "ID|FILE")]
    pub dataset: String,
    /// Wait for the answers and print the task and its result dataset (otherwise print the
    /// task id).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn parse_status(value: &str) -> Result<BatchStatus, String> {
    value.parse().map_err(|e: yandex_cloud_ml_sdk::Error| e.message().to_owned())
}

const COLUMNS: [&str; 6] = ["task_id", "status", "model_uri", "source_dataset_id", "result_dataset_id", "created_at"];

fn print_task(out: Out, t: &BatchTaskInfo) -> Result<(), CliError> {
    let mut value = serde_json::to_value(t)?;
    if out.is_text() {
        let errors: Vec<String> = t.line_errors.iter().map(|e| format!("line {}: {}", e.line, e.message)).collect();
        value["line_errors"] = errors.into();
    }
    out.record(&value, &[&COLUMNS[..], &["error", "line_errors"]].concat())
}

fn running(id: &str) -> crate::resume::Running<'_> {
    crate::resume::Running::new("batch task", id, "batch wait", Some("batch cancel"))
}

/// Waits for a batch task with a progress bar; prints the task and its result dataset,
/// labelled (the result dataset is not the task: `batch results` takes the task's id).
async fn wait(
    cx: &Context,
    task: &yandex_cloud_ml_sdk::batch::BatchTask,
    running: crate::resume::Running<'_>,
) -> Result<(), CliError> {
    let result = crate::resume::with_bar(running, task.wait(), cx.poll_interval).await?;
    cx.out.fields(&[("task_id", task.id()), ("result_dataset_id", result.id())])
}

pub async fn run(cx: &Context, action: BatchAction) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let out = cx.out;
    match action {
        BatchAction::Run(args) => {
            let model = args.model.model(&sdk)?;
            let dataset = id_or_upload(cx, &sdk, &args.dataset, TaskType::TextToTextGenerationRequest).await?;
            let task = model.batch().run_deferred(dataset).await?;
            if !args.wait {
                return out.fields(&[("task_id", task.id())]);
            }
            let running = running(task.id());
            running.announce();
            wait(cx, &task, running).await
        }
        BatchAction::Wait { id } => {
            let task = sdk.batch().get(id).await?;
            wait(cx, &task, running(task.id())).await
        }
        BatchAction::List { status, limit } => {
            let mut list = sdk.batch().list();
            if let Some(s) = status {
                list = list.status(s);
            }
            let mut table = out.listing(&COLUMNS);
            let mut stream = std::pin::pin!(list.stream().take(limit.unwrap_or(usize::MAX)));
            while let Some(task) = stream.next().await {
                table.push(&task?)?;
            }
            table.finish();
            Ok(())
        }
        BatchAction::Get { id } => print_task(out, &sdk.batch().get(id).await?.info().await?),
        BatchAction::Cancel { id } => {
            let task = sdk.batch().get(id).await?;
            task.cancel().await?;
            print_task(out, &task.info().await?)
        }
        BatchAction::Delete { id } => {
            sdk.batch().get(&id).await?.delete().await?;
            out.fields(&[("deleted", &id)])
        }
        BatchAction::Results { id } => {
            let task = sdk.batch().get(id).await?;
            let mut records = std::pin::pin!(task.results());
            // Records are data: always one JSON object per line.
            while let Some(record) = records.next().await {
                out.line(serde_json::to_string(&record?)?);
            }
            Ok(())
        }
    }
}
