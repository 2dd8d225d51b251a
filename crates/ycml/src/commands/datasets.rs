//! `ycml datasets`: upload (with a progress bar), list, get, delete, download, read.

use std::path::PathBuf;

use futures_util::StreamExt;
use yandex_cloud_ml_sdk::{
    Sdk,
    datasets::{Dataset, DatasetDraft, DatasetInfo, DatasetStatus, TaskType, ValidationFailure},
    operations::Operation,
};

use crate::{Context, error::CliError, output::Out, progress::Bar};

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
    },
    /// Change a dataset's name, description or labels.
    Update {
        /// Dataset id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// A label KEY=VALUE (repeatable; replaces all the labels).
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
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
    /// What the rows are for: completions, batch-requests, text-classifiers-multilabel,
    /// text-classifiers-multiclass, text-embeddings-pair, text-embeddings-triplet, or any task
    /// type name of the cloud.
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
    #[arg(long, value_name = "MIB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(5..=5120))]
    pub chunk_size: u64,
    /// Parts sent at once.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
    /// Wait for validation and print the ready dataset (otherwise print the validation's
    /// operation id).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: keep a dataset that fails validation (status invalid), to inspect it with
    /// `datasets get`; by default it is deleted. The command fails either way.
    #[arg(long)]
    pub keep_invalid: bool,
}

fn parse_status(value: &str) -> Result<DatasetStatus, String> {
    value.parse().map_err(|e: yandex_cloud_ml_sdk::Error| e.message().to_owned())
}

/// The task types with names of the CLI's own, and the cloud's names for them.
const TASK_TYPES: [(&str, TaskType); 6] = [
    ("completions", TaskType::TextToTextGeneration),
    ("batch-requests", TaskType::TextToTextGenerationRequest),
    ("text-classifiers-multilabel", TaskType::TextClassificationMultilabel),
    ("text-classifiers-multiclass", TaskType::TextClassificationMulticlass),
    ("text-embeddings-pair", TaskType::TextEmbeddingsPair),
    ("text-embeddings-triplet", TaskType::TextEmbeddingsTriplet),
];

/// Task types by the CLI's names or the cloud's.
pub fn parse_task_type(value: &str) -> Result<TaskType, String> {
    if value.is_empty() {
        return Err("the task type is empty".into());
    }
    Ok(TASK_TYPES.iter().find(|(name, _)| *name == value).map_or_else(|| TaskType::from(value), |(_, t)| t.clone()))
}

/// A task type as `--task-type` takes it: the CLI's name when it has one.
pub fn task_type_name(task_type: &TaskType) -> &str {
    TASK_TYPES.iter().find(|(_, t)| t == task_type).map_or(task_type.as_str(), |(name, _)| name)
}

fn parse_label(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{value}` is not KEY=VALUE")),
    }
}

/// A dataset's JSON; in text, its task type in the CLI's terms.
fn dataset_value(out: Out, info: &DatasetInfo) -> Result<serde_json::Value, CliError> {
    let mut value = serde_json::to_value(info)?;
    if out.is_text() {
        value["task_type"] = task_type_name(&info.task_type).into();
        value["validation_errors"] = info.validation_errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().into();
    }
    Ok(value)
}

/// Prints one dataset whole.
pub fn print_dataset(out: Out, info: &DatasetInfo) -> Result<(), CliError> {
    let columns = [
        "id",
        "name",
        "status",
        "task_type",
        "rows",
        "size_bytes",
        "created_at",
        "updated_at",
        "labels",
        "description",
        "validation_errors",
    ];
    out.record(&dataset_value(out, info)?, &columns)
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

/// The label that records a file's content (the first 128 bits of its SHA-256, in hex; label
/// values are at most 63 characters).
const CONTENT_LABEL: &str = "ycml-content-sha256";

fn content_hash(path: &std::path::Path) -> Result<String, CliError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        digest.update(&buffer[..n]);
    }
    Ok(digest.finish().as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect())
}

/// A dataset id, or a file: the ready dataset of the same task type uploaded from the same
/// content before (found by its content label), else the file uploaded (and validated) now,
/// with a progress bar. Returns the id.
pub async fn id_or_upload(cx: &Context, sdk: &Sdk, value: &str, task_type: TaskType) -> Result<String, CliError> {
    let path = std::path::Path::new(value);
    if !path.is_file() {
        // A dataset of another task type is refused here, in the CLI's names for task types.
        let dataset = sdk.datasets().get(value).await?;
        let found = &dataset.info().task_type;
        if *found != task_type {
            let wanted = task_type_name(&task_type);
            return Err(CliError::with_hint(
                format!("dataset {value} holds rows for {}, not {wanted}", task_type_name(found)),
                format!(
                    "upload the rows with `ycml datasets upload FILE --task-type {wanted}`, or give the file itself"
                ),
            ));
        }
        return Ok(value.to_owned());
    }
    let hash = content_hash(path)?;
    let mut ready =
        std::pin::pin!(sdk.datasets().list().status(DatasetStatus::Ready).task_type(task_type.clone()).stream());
    while let Some(dataset) = ready.next().await {
        let dataset = dataset?;
        if dataset.info().labels.get(CONTENT_LABEL) == Some(&hash) {
            eprintln!("{value} was uploaded before, as dataset {}: using it", dataset.id());
            return Ok(dataset.id().to_owned());
        }
    }
    let args = UploadArgs {
        file: value.into(),
        task_type,
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        description: None,
        labels: vec![(CONTENT_LABEL.to_owned(), hash)],
        chunk_size: 100,
        parallelism: 4,
        wait: true,
        keep_invalid: false,
    };
    let uploaded = upload_and_wait(cx, sdk, &args).await?;
    eprintln!("uploaded {value} as dataset {}", uploaded.id());
    Ok(uploaded.id().to_owned())
}

/// Uploads the file with a progress bar and starts its validation.
async fn start_upload(sdk: &Sdk, args: &UploadArgs) -> Result<Operation<Dataset>, CliError> {
    let bar = Bar::new();
    let started = draft(sdk, args).upload_deferred().on_progress(bar.callback()).await;
    bar.finish(started.is_ok());
    Ok(started?)
}

/// Uploads a file as a dataset with a progress bar, says which dataset is being validated (and
/// how to come back to it), and waits for the validation. A dataset that fails validation is
/// deleted unless `--keep-invalid`; the error says which happened.
pub async fn upload_and_wait(cx: &Context, sdk: &Sdk, args: &UploadArgs) -> Result<Dataset, CliError> {
    let operation = start_upload(sdk, args).await?;
    let id = operation.dataset_id().unwrap_or_default().to_owned();
    let running = crate::resume::Running::new("the validation of dataset", &id, "datasets wait", None);
    running.announce();
    let bar = Bar::new();
    let result = running.wait(operation.wait().poll_interval(cx.poll_interval).on_progress(bar.callback())).await;
    bar.finish(result.is_ok());
    let error = match result {
        Ok(dataset) => return Ok(dataset),
        Err(e) => e,
    };
    let Some(failure) = error.details::<ValidationFailure>() else { return Err(error.into()) };
    let id = failure.dataset_id.clone();
    let what = error.without_remedy().to_string();
    if args.keep_invalid {
        return Err(CliError::with_hint(
            format!("{what}\nthe dataset {id} was kept, with status invalid (--keep-invalid)"),
            format!("see its errors with `ycml datasets get {id}`; delete it with `ycml datasets delete {id}`"),
        ));
    }
    let kept = match sdk.datasets().get(&id).await {
        Ok(dataset) => dataset.delete().await.err(),
        Err(e) => Some(e),
    };
    Err(match kept {
        None => CliError::with_hint(
            format!("{what}\nthe invalid dataset {id} was deleted"),
            "fix the rows and upload again; --keep-invalid keeps a dataset that fails, to inspect it",
        ),
        Some(e) => CliError::with_hint(
            format!("{what}\nthe invalid dataset {id} could not be deleted ({e}), so it is still there"),
            format!("delete it with `ycml datasets delete {id}`"),
        ),
    })
}

pub async fn run(cx: &Context, action: DatasetsAction) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let out = cx.out;
    match action {
        DatasetsAction::Upload(args) if args.wait => {
            let dataset = upload_and_wait(cx, &sdk, &args).await?;
            print_dataset(out, dataset.info())
        }
        DatasetsAction::Upload(args) => {
            if args.keep_invalid {
                return Err("--keep-invalid needs --wait: without it, validation goes on after ycml exits".into());
            }
            let op = start_upload(&sdk, &args).await?;
            // What the next command needs: the dataset (`datasets get`) and its validation
            // (`datasets wait`, `operation wait`), labelled.
            out.fields(&[("operation_id", op.id()), ("dataset_id", op.dataset_id().unwrap_or_default())])
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
            let mut table = out.listing(&["id", "status", "task_type", "rows", "created_at", "name"]);
            let mut stream = std::pin::pin!(list.stream().take(limit.unwrap_or(usize::MAX)));
            while let Some(dataset) = stream.next().await {
                table.push(&dataset_value(out, dataset?.info())?)?;
            }
            table.finish();
            Ok(())
        }
        DatasetsAction::Get { id } => print_dataset(out, sdk.datasets().get(id).await?.info()),
        DatasetsAction::Update { id, name, description, labels } => {
            if name.is_none() && description.is_none() && labels.is_empty() {
                return Err("nothing to change: give --name, --description or --label".into());
            }
            let dataset = sdk.datasets().get(id).await?;
            let updated = dataset
                .update(|mut u| {
                    if let Some(n) = name {
                        u = u.name(n);
                    }
                    if let Some(d) = description {
                        u = u.description(d);
                    }
                    if !labels.is_empty() {
                        u = u.labels(labels);
                    }
                    u
                })
                .await?;
            print_dataset(out, updated.info())
        }
        DatasetsAction::Wait { id } => {
            let running = crate::resume::Running::new("the validation of dataset", &id, "datasets wait", None);
            let poll_interval = cx.poll_interval;
            let validated = running.wait(async {
                loop {
                    let dataset = sdk.datasets().get(&id).await?;
                    match dataset.status() {
                        DatasetStatus::Validating => tokio::time::sleep(poll_interval).await,
                        DatasetStatus::Ready => return Ok(dataset),
                        DatasetStatus::Invalid => {
                            let errors: Vec<String> =
                                dataset.info().validation_errors.iter().map(ToString::to_string).collect();
                            return Err(CliError::from(format!("dataset {id} is INVALID: {}", errors.join("; "))));
                        }
                        other => {
                            return Err(CliError::with_hint(
                                format!("dataset {id} is {other}, not being validated"),
                                "upload its file first (`ycml datasets upload`)",
                            ));
                        }
                    }
                }
            });
            print_dataset(out, validated.await?.info())
        }
        DatasetsAction::Delete { id } => {
            sdk.datasets().get(&id).await?.delete().await?;
            out.fields(&[("deleted", &id)])
        }
        DatasetsAction::Download { id, dir, exist_ok } => {
            let dataset = sdk.datasets().get(id).await?;
            for f in dataset.download(dir).exist_ok(exist_ok).await? {
                out.fields(&[("file", &f.display().to_string())])?;
            }
            Ok(())
        }
        DatasetsAction::Read { id, limit } => {
            let dataset = sdk.datasets().get(id).await?;
            let mut rows = std::pin::pin!(dataset.read().take(limit.unwrap_or(usize::MAX)));
            // Rows are data: always one JSON object per line.
            while let Some(row) = rows.next().await {
                out.line(row?);
            }
            Ok(())
        }
    }
}
