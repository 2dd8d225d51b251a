//! `ycml batch`: run a model over a dataset of prompts (a file is uploaded first), follow and
//! manage the tasks, and print the answers next to their prompts.

use std::{io::Write, time::Duration};

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_sdk::{
    batch::{BatchStatus, BatchTaskInfo},
    datasets::TaskType,
};

use super::{complete::ModelArgs, datasets::id_or_upload};
use crate::{Output, connect::Connection};

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
        /// Longest time between polls (seconds, or 500ms, 30s, 2m, 1h).
        #[arg(long, value_name = "DURATION", default_value = "10", value_parser = crate::seconds::parse)]
        poll_interval: Duration,
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
    /// Wait for the answers and print the result dataset (otherwise print the task id).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: longest time between polls (seconds, or 500ms, 30s, 2m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = crate::seconds::parse)]
    pub poll_interval: Duration,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn parse_status(value: &str) -> Result<BatchStatus, String> {
    value.parse().map_err(|e: yandex_cloud_ml_sdk::Error| e.message().to_owned())
}

fn print_task(output: Output, t: &BatchTaskInfo) -> Result<(), String> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(t).map_err(|e| e.to_string())?),
        Output::Text => {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                t.task_id,
                t.status,
                t.model_uri,
                t.source_dataset_id,
                t.result_dataset_id.as_deref().unwrap_or("-")
            );
            for e in &t.line_errors {
                println!("  line {}: {}", e.line, e.message);
            }
        }
    }
    Ok(())
}

fn running(id: &str) -> crate::resume::Running<'_> {
    crate::resume::Running::new("batch task", id, "batch wait", Some("batch cancel"))
}

/// Waits for a batch task with a progress bar; prints the task and its result dataset,
/// labelled (the result dataset is not the task: `batch results` takes the task's id).
async fn wait(
    output: Output,
    task: &yandex_cloud_ml_sdk::batch::BatchTask,
    poll_interval: Duration,
    running: crate::resume::Running<'_>,
) -> Result<(), String> {
    let result = crate::resume::with_bar(running, task.wait(), poll_interval).await?;
    match output {
        Output::Text => println!("task_id {}\nresult_dataset_id {}", task.id(), result.id()),
        Output::Json => println!("{}", json!({"task_id": task.id(), "result_dataset_id": result.id()})),
    }
    Ok(())
}

pub async fn run(connection: &Connection, output: Output, action: BatchAction) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let explain = crate::connect::explain;
    match action {
        BatchAction::Run(args) => {
            let model = args.model.model(&sdk)?;
            let dataset = id_or_upload(&sdk, &args.dataset, TaskType::TextToTextGenerationRequest).await?;
            let task = model.batch().run_deferred(dataset).await.map_err(explain)?;
            if !args.wait {
                match output {
                    Output::Text => println!("{}", task.id()),
                    Output::Json => println!("{}", json!({"task_id": task.id()})),
                }
                return Ok(());
            }
            let running = running(task.id());
            running.announce();
            wait(output, &task, args.poll_interval, running).await?;
        }
        BatchAction::Wait { id, poll_interval } => {
            let task = sdk.batch().get(id).await.map_err(explain)?;
            wait(output, &task, poll_interval, running(task.id())).await?;
        }
        BatchAction::List { status, limit } => {
            let mut list = sdk.batch().list();
            if let Some(s) = status {
                list = list.status(s);
            }
            let mut stream = std::pin::pin!(list.stream().take(limit.unwrap_or(usize::MAX)));
            while let Some(task) = stream.next().await {
                print_task(output, &task.map_err(explain)?)?;
            }
        }
        BatchAction::Get { id } => {
            let task = sdk.batch().get(id).await.map_err(explain)?;
            print_task(output, &task.info().await.map_err(explain)?)?;
        }
        BatchAction::Cancel { id } => {
            let task = sdk.batch().get(id).await.map_err(explain)?;
            task.cancel().await.map_err(explain)?;
            print_task(output, &task.info().await.map_err(explain)?)?;
        }
        BatchAction::Delete { id } => {
            sdk.batch().get(&id).await.map_err(explain)?.delete().await.map_err(explain)?;
            match output {
                Output::Text => println!("deleted {id}"),
                Output::Json => println!("{}", json!({"deleted": id})),
            }
        }
        BatchAction::Results { id } => {
            let task = sdk.batch().get(id).await.map_err(explain)?;
            let mut records = std::pin::pin!(task.results());
            let mut out = std::io::stdout().lock();
            while let Some(record) = records.next().await {
                let line = serde_json::to_string(&record.map_err(explain)?).map_err(|e| e.to_string())?;
                // A closed pipe (`| head`) ends the listing quietly.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}
