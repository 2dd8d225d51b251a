//! `ycml tune` (with a progress bar) and `ycml tuning list|get|cancel`.

use futures_util::StreamExt;
use yandex_cloud_ml_sdk::{
    completions::GptModel,
    datasets::TaskType,
    embeddings::TextEmbeddingsModel,
    operations::OperationOutput,
    tuning::{
        EmbeddingsTuneType, Optimizer, Scheduler, TuneParams, TuningStatus, TuningTask, TuningTaskInfo, TuningType,
        WeightedDataset,
    },
};

use super::datasets::id_or_upload;
use crate::{Context, error::CliError, output::Out};

/// `ycml tune`.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneArgs {
    /// Training data: a dataset id, or a `jsonlines` file that is uploaded first (repeatable).
    #[arg(long, required = true, value_name = "FILE|ID")]
    pub train: Vec<String>,
    /// Validation data, like --train (repeatable).
    #[arg(long, value_name = "FILE|ID")]
    pub validation: Vec<String>,
    /// What to tune: a completion model on request/response rows, or an embeddings model on
    /// anchor/positive pairs or anchor/positive/negative triplets.
    #[arg(long, value_enum, default_value_t = TuneTask::Completions)]
    pub task: TuneTask,
    /// Base model name or full URI (default: yandexgpt-lite; text-embeddings for embeddings).
    #[arg(long, short)]
    pub model: Option<String>,
    /// With an embeddings task: a vector size the tuned model answers in (repeatable; the
    /// largest is its default).
    #[arg(long = "embedding-dim", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub embedding_dims: Vec<u32>,
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
}

/// `ycml tune --task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TuneTask {
    /// A completion model, on `{"request", "response"}` rows.
    Completions,
    /// An embeddings model, on `{"anchor", "positive"}` rows.
    EmbeddingsPair,
    /// An embeddings model, on `{"anchor", "positive", "negative"}` rows.
    EmbeddingsTriplet,
}

impl TuneTask {
    fn dataset_type(self) -> TaskType {
        match self {
            TuneTask::Completions => TaskType::TextToTextGeneration,
            TuneTask::EmbeddingsPair => TaskType::TextEmbeddingsPair,
            TuneTask::EmbeddingsTriplet => TaskType::TextEmbeddingsTriplet,
        }
    }
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

const COLUMNS: [&str; 6] = ["task_id", "status", "name", "created_at", "source_model_uri", "target_model_uri"];

fn print_task(out: Out, t: &TuningTaskInfo) -> Result<(), CliError> {
    out.record(t, &COLUMNS)
}

pub async fn tune(cx: &Context, args: TuneArgs) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    if args.task == TuneTask::Completions && !args.embedding_dims.is_empty() {
        return Err("--embedding-dim is for --task embeddings-pair or embeddings-triplet".into());
    }
    let task_type = args.task.dataset_type();
    let mut train = Vec::new();
    for value in &args.train {
        train.push(WeightedDataset::new(id_or_upload(cx, &sdk, value, task_type.clone()).await?, 1.0));
    }
    let mut validation = Vec::new();
    for value in &args.validation {
        validation.push(WeightedDataset::new(id_or_upload(cx, &sdk, value, task_type.clone()).await?, 1.0));
    }
    let tune_type = match args.task {
        TuneTask::Completions => None,
        TuneTask::EmbeddingsPair => Some(EmbeddingsTuneType::Pair),
        TuneTask::EmbeddingsTriplet => Some(EmbeddingsTuneType::Triplet),
    };
    let Some(tune_type) = tune_type else {
        let name = args.model.as_deref().unwrap_or("yandexgpt-lite");
        let model = sdk.models().completions_with_version(name, &args.model_version);
        let mut call = model.tune_deferred(train).validation(validation).params(args.params());
        if let Some(n) = &args.name {
            call = call.name(n);
        }
        if let Some(d) = &args.description {
            call = call.description(d);
        }
        return started(cx, &args, call.await?, GptModel::uri).await;
    };
    let name = args.model.as_deref().unwrap_or("text-embeddings");
    let model = sdk.models().text_embeddings_with_version(name, &args.model_version);
    let mut call = model
        .tune_deferred(train, tune_type)
        .validation(validation)
        .params(args.params())
        .embedding_dims(args.embedding_dims.iter().copied());
    if let Some(n) = &args.name {
        call = call.name(n);
    }
    if let Some(d) = &args.description {
        call = call.description(d);
    }
    started(cx, &args, call.await?, TextEmbeddingsModel::uri).await
}

/// A tuning just started: its id, or (with `--wait`) its id at once and the tuned model.
async fn started<M: OperationOutput>(
    cx: &Context,
    args: &TuneArgs,
    task: TuningTask<M>,
    uri: fn(&M) -> &str,
) -> Result<(), CliError> {
    if !args.wait {
        return cx.out.fields(&[("task_id", task.id())]);
    }
    let running = running(task.id());
    running.announce();
    wait(cx, &task, running, uri).await
}

fn running(id: &str) -> crate::resume::Running<'_> {
    crate::resume::Running::new("tuning task", id, "tuning wait", Some("tuning cancel"))
}

/// Waits for a tuning task with a progress bar; prints the task and the tuned model's URI.
async fn wait<M: OperationOutput>(
    cx: &Context,
    task: &TuningTask<M>,
    running: crate::resume::Running<'_>,
    uri: fn(&M) -> &str,
) -> Result<(), CliError> {
    let tuned = crate::resume::with_bar(running, task.wait(), cx.poll_interval).await?;
    cx.out.fields(&[("task_id", task.id()), ("model_uri", uri(&tuned))])
}

pub async fn run(cx: &Context, action: TuningAction) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    match action {
        TuningAction::List { status, limit } => {
            let mut list = sdk.tuning().list();
            if let Some(s) = status {
                list = list.status(s);
            }
            let mut table = cx.out.listing(&COLUMNS);
            let mut stream = std::pin::pin!(list.stream().take(limit.unwrap_or(usize::MAX)));
            while let Some(task) = stream.next().await {
                table.push(&task?)?;
            }
            table.finish();
            Ok(())
        }
        TuningAction::Get { id } => print_task(cx.out, &sdk.tuning().get(id).await?.info().await?),
        TuningAction::Wait { id } => {
            let task = sdk.tuning().get(id).await?;
            // An embeddings tuning's base model is an `emb://` one.
            let embeddings = task.info().await?.source_model_uri.is_some_and(|u| u.starts_with("emb://"));
            if embeddings {
                let task = task.embeddings();
                return wait(cx, &task, running(task.id()), TextEmbeddingsModel::uri).await;
            }
            wait(cx, &task, running(task.id()), GptModel::uri).await
        }
        TuningAction::Cancel { id } => {
            let task = sdk.tuning().get(id).await?;
            task.cancel().await?;
            print_task(cx.out, &task.info().await?)
        }
    }
}
