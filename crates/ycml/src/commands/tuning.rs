//! `ycml tune` (with a progress bar) and `ycml tuning list|get|cancel`.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_sdk::{
    datasets::TaskType,
    tuning::{Optimizer, Scheduler, TuneParams, TuningStatus, TuningTaskInfo, TuningType, WeightedDataset},
};

use super::datasets::id_or_upload;
use crate::{Output, connect::Connection};

/// `ycml tune`.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneArgs {
    /// Training data: a dataset id, or a `jsonlines` file that is uploaded first (repeatable).
    #[arg(long, required = true, value_name = "FILE|ID")]
    pub train: Vec<String>,
    /// Validation data, like --train (repeatable).
    #[arg(long, value_name = "FILE|ID")]
    pub validation: Vec<String>,
    /// Base model name or full URI.
    #[arg(long, short, default_value = "yandexgpt-lite")]
    pub model: String,
    /// Base model version.
    #[arg(long = "model-version", default_value = "latest")]
    pub model_version: String,
    /// Name of the tuning.
    #[arg(long)]
    pub name: Option<String>,
    /// Description of the tuning.
    #[arg(long)]
    pub description: Option<String>,
    /// Random seed.
    #[arg(long)]
    pub seed: Option<i64>,
    /// Learning rate.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Training samples.
    #[arg(long)]
    pub n_samples: Option<i64>,
    /// LoRA tuning with this rank.
    #[arg(long, conflicts_with = "prompt_tune")]
    pub lora_rank: Option<i64>,
    /// LoRA alpha (with --lora-rank).
    #[arg(long, requires = "lora_rank")]
    pub lora_alpha: Option<f64>,
    /// Prompt tuning with this many virtual tokens.
    #[arg(long, value_name = "VIRTUAL_TOKENS")]
    pub prompt_tune: Option<i64>,
    /// Learning-rate schedule: linear, cosine or constant.
    #[arg(long, value_parser = ["linear", "cosine", "constant"])]
    pub scheduler: Option<String>,
    /// Warm-up share of the schedule (with --scheduler).
    #[arg(long, requires = "scheduler", default_value_t = 0.0)]
    pub warmup_ratio: f64,
    /// Smallest learning rate of a linear or cosine schedule.
    #[arg(long, requires = "scheduler")]
    pub min_lr: Option<f64>,
    /// AdamW weight decay (uses the AdamW optimizer).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Wait for the tuned model and print its URI (otherwise print the task id).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: longest time between polls (seconds, or 500ms, 30s, 2m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = crate::seconds::parse)]
    pub poll_interval: Duration,
}

impl TuneArgs {
    fn params(&self) -> TuneParams {
        let mut p = TuneParams::default();
        if let Some(v) = self.seed {
            p = p.seed(v);
        }
        if let Some(v) = self.learning_rate {
            p = p.learning_rate(v);
        }
        if let Some(v) = self.n_samples {
            p = p.n_samples(v);
        }
        if let Some(rank) = self.lora_rank {
            let mut lora = TuningType::lora(rank);
            if let Some(alpha) = self.lora_alpha {
                lora = lora.alpha(alpha);
            }
            p = p.tuning_type(lora);
        }
        if let Some(tokens) = self.prompt_tune {
            p = p.tuning_type(TuningType::prompt_tune(tokens));
        }
        if let Some(kind) = &self.scheduler {
            let mut s = match kind.as_str() {
                "linear" => Scheduler::linear(self.warmup_ratio),
                "cosine" => Scheduler::cosine(self.warmup_ratio),
                _ => Scheduler::constant(self.warmup_ratio),
            };
            if let Some(min) = self.min_lr {
                s = s.min_lr(min);
            }
            p = p.scheduler(s);
        }
        if let Some(decay) = self.weight_decay {
            p = p.optimizer(Optimizer::adamw().weight_decay(decay));
        }
        p
    }
}

/// `ycml tuning …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TuningAction {
    /// List the folder's tuning tasks (every page).
    List {
        /// Only this status (created, pending, in-progress, completed, failed, canceled…).
        #[arg(long, value_parser = parse_status)]
        status: Option<TuningStatus>,
        /// Print at most this many (the listing stops reading pages there).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Show one tuning task.
    Get {
        /// Task id.
        id: String,
    },
    /// Wait for a tuning task started earlier (with a progress bar) and print the tuned model.
    Wait {
        /// Task id.
        id: String,
        /// Longest time between polls (seconds, or 500ms, 30s, 2m, 1h).
        #[arg(long, value_name = "DURATION", default_value = "10", value_parser = crate::seconds::parse)]
        poll_interval: Duration,
    },
    /// Cancel a running tuning task.
    Cancel {
        /// Task id.
        id: String,
    },
}

fn parse_status(value: &str) -> Result<TuningStatus, String> {
    value.parse().map_err(|e: yandex_cloud_ml_sdk::Error| e.message().to_owned())
}

fn print_task(output: Output, t: &TuningTaskInfo) -> Result<(), String> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(t).map_err(|e| e.to_string())?),
        Output::Text => println!(
            "{}\t{}\t{}\t{}",
            t.task_id,
            t.status.as_str(),
            t.target_model_uri.as_deref().unwrap_or("-"),
            t.name.as_deref().unwrap_or("-")
        ),
    }
    Ok(())
}

pub async fn tune(connection: &Connection, output: Output, args: TuneArgs) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let explain = crate::connect::explain;
    let mut train = Vec::new();
    for value in &args.train {
        train.push(WeightedDataset::new(id_or_upload(&sdk, value, TaskType::TextToTextGeneration).await?, 1.0));
    }
    let mut validation = Vec::new();
    for value in &args.validation {
        validation.push(WeightedDataset::new(id_or_upload(&sdk, value, TaskType::TextToTextGeneration).await?, 1.0));
    }
    let model = sdk.models().completions_with_version(&args.model, &args.model_version);
    let mut call = model.tune_deferred(train).validation(validation).params(args.params());
    if let Some(n) = &args.name {
        call = call.name(n);
    }
    if let Some(d) = &args.description {
        call = call.description(d);
    }
    let task = call.await.map_err(explain)?;
    if !args.wait {
        match output {
            Output::Text => println!("{}", task.id()),
            Output::Json => println!("{}", json!({"task_id": task.id()})),
        }
        return Ok(());
    }
    let running = running(task.id());
    running.announce();
    wait(output, &task, args.poll_interval, running).await
}

fn running(id: &str) -> crate::resume::Running<'_> {
    crate::resume::Running::new("tuning task", id, "tuning wait", Some("tuning cancel"))
}

/// Waits for a tuning task with a progress bar; prints the tuned model's URI.
async fn wait(
    output: Output,
    task: &yandex_cloud_ml_sdk::tuning::TuningTask,
    poll_interval: Duration,
    running: crate::resume::Running<'_>,
) -> Result<(), String> {
    let tuned = crate::resume::with_bar(running, task.wait(), poll_interval).await?;
    match output {
        Output::Text => println!("{}", tuned.uri()),
        Output::Json => println!("{}", json!({"task_id": task.id(), "model_uri": tuned.uri()})),
    }
    Ok(())
}

pub async fn run(connection: &Connection, output: Output, action: TuningAction) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let explain = crate::connect::explain;
    match action {
        TuningAction::List { status, limit } => {
            let mut list = sdk.tuning().list();
            if let Some(s) = status {
                list = list.status(s);
            }
            let mut stream = std::pin::pin!(list.stream().take(limit.unwrap_or(usize::MAX)));
            while let Some(task) = stream.next().await {
                print_task(output, &task.map_err(explain)?)?;
            }
        }
        TuningAction::Get { id } => {
            let task = sdk.tuning().get(id).await.map_err(explain)?;
            print_task(output, &task.info().await.map_err(explain)?)?;
        }
        TuningAction::Wait { id, poll_interval } => {
            let task = sdk.tuning().get(id).await.map_err(explain)?;
            wait(output, &task, poll_interval, running(task.id())).await?;
        }
        TuningAction::Cancel { id } => {
            let task = sdk.tuning().get(id).await.map_err(explain)?;
            task.cancel().await.map_err(explain)?;
            print_task(output, &task.info().await.map_err(explain)?)?;
        }
    }
    Ok(())
}
