//! `ycml datasets`: upload (with a progress bar), list, get, delete, download, read.

use std::{io::Write, path::PathBuf, time::Duration};

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_sdk::{
    Sdk,
    datasets::{Dataset, DatasetDraft, DatasetInfo, DatasetStatus, TaskType},
};

use crate::{Output, connect::Connection, progress::Bar};

/// `ycml datasets …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DatasetsAction {
    /// Upload a file as a new dataset and validate it.
    Upload(UploadArgs),
    /// List the folder's datasets (every page).
    List {
        /// Only this status: draft, validating, ready, invalid, deleting (repeatable).
        #[arg(long, value_parser = parse_status)]
        status: Vec<DatasetStatus>,
        /// Only this task type (repeatable).
        #[arg(long, value_parser = parse_task_type)]
        task_type: Vec<TaskType>,
        /// Only names matching this pattern.
        #[arg(long)]
        name_pattern: Option<String>,
        /// Print at most this many (the listing stops reading pages there).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Show one dataset.
    Get {
        /// Dataset id.
        id: String,
    },
    /// Wait until a dataset's validation ends; print it when READY, fail with its errors when
    /// INVALID.
    Wait {
        /// Dataset id.
        id: String,
        /// Time between polls (seconds, or 500ms, 30s, 2m, 1h).
        #[arg(long, value_name = "DURATION", default_value = "2", value_parser = crate::seconds::parse)]
        poll_interval: Duration,
    },
    /// Delete a dataset.
    Delete {
        /// Dataset id.
        id: String,
    },
    /// Download a dataset's files into a directory.
    Download {
        /// Dataset id.
        id: String,
        /// Existing directory to write into.
        dir: PathBuf,
        /// Overwrite files that exist.
        #[arg(long)]
        exist_ok: bool,
    },
    /// Print a dataset's rows, one JSON object per line.
    Read {
        /// Dataset id.
        id: String,
        /// Print at most this many rows.
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// `ycml datasets upload`.
#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// A `jsonlines` file of rows.
    pub file: PathBuf,
    /// What the rows are for: completions (TextToTextGeneration), batch-requests
    /// (TextToTextGenerationRequest), or any task type name of the cloud.
    #[arg(long, value_parser = parse_task_type)]
    pub task_type: TaskType,
    /// Dataset name.
    #[arg(long)]
    pub name: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// A label KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Files larger than this go up in parts (MiB, 5 to 5120).
    #[arg(long, value_name = "MIB", default_value_t = 100)]
    pub chunk_size: u64,
    /// Parts sent at once.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
    /// Wait for validation and print the ready dataset (otherwise print the validation's
    /// operation id).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: keep a dataset that failed validation (status invalid) instead of failing.
    #[arg(long)]
    pub accept_invalid: bool,
    /// With --wait: longest time between validation polls (seconds, or 500ms, 30s, 2m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5", value_parser = crate::seconds::parse)]
    pub poll_interval: Duration,
}

fn parse_status(value: &str) -> Result<DatasetStatus, String> {
    value.parse().map_err(|e: yandex_cloud_ml_sdk::Error| e.message().to_owned())
}

/// Task types by their cloud names or the short names of the SDK's shortcuts.
pub fn parse_task_type(value: &str) -> Result<TaskType, String> {
    let task_type = match value {
        "completions" => TaskType::TextToTextGeneration,
        "batch-requests" => TaskType::TextToTextGenerationRequest,
        "text-classifiers-multilabel" => TaskType::TextClassificationMultilabel,
        "text-classifiers-multiclass" => TaskType::TextClassificationMulticlass,
        "text-embeddings-pair" => TaskType::TextEmbeddingsPair,
        "text-embeddings-triplet" => TaskType::TextEmbeddingsTriplet,
        "" => return Err("the task type is empty".into()),
        other => TaskType::from(other),
    };
    Ok(task_type)
}

fn parse_label(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{value}` is not KEY=VALUE")),
    }
}

fn print_dataset(output: Output, info: &DatasetInfo) -> Result<(), String> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(info).map_err(|e| e.to_string())?),
        Output::Text => {
            let name = info.name.as_deref().unwrap_or("-");
            println!(
                "{}\t{}\t{}\t{} rows\t{} bytes\t{name}",
                info.id,
                info.status.as_str(),
                info.task_type,
                info.rows,
                info.size_bytes
            );
            for e in &info.validation_errors {
                println!("  {e}");
            }
        }
    }
    Ok(())
}

/// The draft the flags describe.
fn draft(sdk: &Sdk, args: &UploadArgs) -> DatasetDraft {
    let mut draft = sdk
        .datasets()
        .draft_from_path(&args.file)
        .task_type(args.task_type.clone())
        .chunk_size(args.chunk_size.saturating_mul(1 << 20))
        .parallelism(args.parallelism);
    if let Some(n) = &args.name {
        draft = draft.name(n);
    }
    if let Some(d) = &args.description {
        draft = draft.description(d);
    }
    for (k, v) in &args.labels {
        draft = draft.label(k, v);
    }
    draft
}

/// A dataset id, or a file uploaded (and validated) first as a dataset of `task_type`, with a
/// progress bar; returns the id.
pub async fn id_or_upload(sdk: &Sdk, value: &str, task_type: TaskType) -> Result<String, String> {
    if !std::path::Path::new(value).is_file() {
        return Ok(value.to_owned());
    }
    let args = UploadArgs {
        file: value.into(),
        task_type,
        name: None,
        description: None,
        labels: Vec::new(),
        chunk_size: 100,
        parallelism: 4,
        wait: true,
        accept_invalid: false,
        poll_interval: Duration::from_secs(2),
    };
    let uploaded = upload_and_wait(sdk, &args).await?;
    eprintln!("uploaded {value} as dataset {}", uploaded.id());
    Ok(uploaded.id().to_owned())
}

/// Uploads a file as a dataset with a progress bar and waits for validation.
pub async fn upload_and_wait(sdk: &Sdk, args: &UploadArgs) -> Result<Dataset, String> {
    let bar = Bar::new();
    let upload = draft(sdk, args).upload().accept_invalid(args.accept_invalid).poll_interval(args.poll_interval);
    let result = upload.on_progress(bar.callback()).await;
    bar.finish();
    result.map_err(crate::connect::explain)
}

pub async fn run(connection: &Connection, output: Output, action: DatasetsAction) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let explain = crate::connect::explain;
    match action {
        DatasetsAction::Upload(args) if args.wait => {
            let dataset = upload_and_wait(&sdk, &args).await?;
            print_dataset(output, dataset.info())?;
        }
        DatasetsAction::Upload(args) => {
            let bar = Bar::new();
            let op = draft(&sdk, &args).upload_deferred().on_progress(bar.callback()).await;
            bar.finish();
            let op = op.map_err(explain)?;
            // What the next command needs: the dataset (`datasets get`) and its validation
            // (`operation wait`), labelled.
            let dataset = op.dataset_id().unwrap_or_default();
            match output {
                Output::Text => println!("operation_id {}\ndataset_id {dataset}", op.id()),
                Output::Json => println!("{}", json!({"operation_id": op.id(), "dataset_id": dataset})),
            }
        }
        DatasetsAction::List { status, task_type, name_pattern, limit } => {
            let mut list = sdk.datasets().list();
            for s in status {
                list = list.status(s);
            }
            for t in task_type {
                list = list.task_type(t);
            }
            if let Some(p) = name_pattern {
                list = list.name_pattern(p);
            }
            let mut stream = std::pin::pin!(list.stream().take(limit.unwrap_or(usize::MAX)));
            while let Some(dataset) = stream.next().await {
                print_dataset(output, dataset.map_err(explain)?.info())?;
            }
        }
        DatasetsAction::Get { id } => {
            let dataset = sdk.datasets().get(id).await.map_err(explain)?;
            print_dataset(output, dataset.info())?;
        }
        DatasetsAction::Wait { id, poll_interval } => {
            let running = crate::resume::Running::new("the validation of dataset", &id, "datasets wait", None);
            let validated = running.wait(async {
                loop {
                    let dataset = sdk.datasets().get(&id).await.map_err(explain)?;
                    match dataset.status() {
                        DatasetStatus::Validating => tokio::time::sleep(poll_interval).await,
                        DatasetStatus::Ready => return Ok(dataset),
                        DatasetStatus::Invalid => {
                            let errors: Vec<String> = dataset
                                .info()
                                .validation_errors
                                .iter()
                                .map(|e| format!("{} ({})", e.error, e.description))
                                .collect();
                            return Err(format!("dataset {id} is INVALID: {}", errors.join("; ")));
                        }
                        other => {
                            return Err(format!(
                                "dataset {id} is {other}, not being validated: upload its file first \
                                 (`ycml datasets upload`)"
                            ));
                        }
                    }
                }
            });
            print_dataset(output, validated.await?.info())?;
        }
        DatasetsAction::Delete { id } => {
            let dataset = sdk.datasets().get(&id).await.map_err(explain)?;
            dataset.delete().await.map_err(explain)?;
            match output {
                Output::Text => println!("deleted {id}"),
                Output::Json => println!("{}", json!({"deleted": id})),
            }
        }
        DatasetsAction::Download { id, dir, exist_ok } => {
            let dataset = sdk.datasets().get(id).await.map_err(explain)?;
            let files = dataset.download(dir).exist_ok(exist_ok).await.map_err(explain)?;
            for f in files {
                match output {
                    Output::Text => println!("{}", f.display()),
                    Output::Json => println!("{}", json!({"file": f})),
                }
            }
        }
        DatasetsAction::Read { id, limit } => {
            let dataset = sdk.datasets().get(id).await.map_err(explain)?;
            let mut rows = std::pin::pin!(dataset.read().take(limit.unwrap_or(usize::MAX)));
            let mut out = std::io::stdout().lock();
            while let Some(row) = rows.next().await {
                // A closed pipe (`| head`) ends the listing quietly.
                if writeln!(out, "{}", row.map_err(explain)?).is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}
