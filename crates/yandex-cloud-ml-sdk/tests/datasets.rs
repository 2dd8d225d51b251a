//! Datasets end to end on the emulator: single and multipart uploads (parallel parts, a failed
//! part sent again), validation with row errors, get/list/update/delete/download/read, and the
//! bad input that must fail before or without leaving anything behind.

mod common;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use yandex_cloud_ml_emulator::{Emulator, FaultAction, FaultRule};
use yandex_cloud_ml_sdk::{
    Code, ErrorKind, RetryPolicy,
    datasets::{DatasetStatus, TaskType, ValidationFailure},
    operations::ProgressUnit,
};

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ycml-{name}-{}", fastrand_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fastrand_id() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ u64::from(std::process::id())
}

/// A completions row.
fn row(prompt: &str, answer: &str) -> String {
    serde_json::json!({"request": [{"role": "user", "text": prompt}], "response": answer}).to_string()
}

fn write_rows(dir: &Path, name: &str, rows: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    path
}

/// A file of `rows` completion rows of about `row_bytes` each.
fn big_file(dir: &Path, rows: usize, row_bytes: usize) -> PathBuf {
    let padding = "x".repeat(row_bytes.saturating_sub(80));
    let lines: Vec<String> =
        (0..rows).map(|i| row(&format!("question {i}"), &format!("answer {i} {padding}"))).collect();
    write_rows(dir, "big.jsonl", &lines)
}

#[tokio::test]
async fn a_small_file_uploads_validates_and_comes_back_as_parquet() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("small");
    let path =
        write_rows(&dir, "train.jsonl", &[row("hi", "hello"), row("how are you", "fine"), row("bye", "see you")]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let dataset = sdk
        .datasets()
        .completions()
        .draft_from_path(&path)
        .name("greetings")
        .label("team", "ml")
        .upload()
        .poll_interval(Duration::from_millis(20))
        .on_progress(move |p| sink.lock().unwrap().push((p.stage.clone(), p.unit, p.done, p.total)))
        .await
        .unwrap();
    assert_eq!(dataset.status(), DatasetStatus::Ready);
    let info = dataset.info();
    assert_eq!(
        (info.rows, info.task_type.clone(), info.name.as_deref()),
        (3, TaskType::TextToTextGeneration, Some("greetings"))
    );
    assert!(info.size_bytes > 0, "the stored parquet size");
    let seen = seen.lock().unwrap().clone();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(seen.iter().any(|s| s.1 == ProgressUnit::Bytes && s.2 == size && s.3 == Some(size)), "{seen:?}");
    assert!(seen.iter().any(|s| s.1 == ProgressUnit::Rows && s.3 == Some(3)), "{seen:?}");

    // get, list (with filters), update.
    let again = sdk.datasets().get(dataset.id()).await.unwrap();
    assert_eq!(again.info().rows, 3);
    let listed = sdk.datasets().completions().list().status(DatasetStatus::Ready).name_pattern("greet").await.unwrap();
    assert_eq!(listed.iter().map(|d| d.id().to_owned()).collect::<Vec<_>>(), vec![dataset.id().to_owned()]);
    assert!(sdk.datasets().list().name_pattern("nothing like it").await.unwrap().is_empty());
    let renamed = dataset.update(|u| u.name("renamed")).await.unwrap();
    assert_eq!(renamed.info().name.as_deref(), Some("renamed"));
    assert_eq!(renamed.info().labels.get("team").map(String::as_str), Some("ml"), "labels untouched");

    // download: the cloud's parquet file under its key.
    let out = temp_dir("download");
    let files = dataset.download(&out).await.unwrap();
    assert_eq!(files, vec![out.join("main")]);
    assert_eq!(&std::fs::read(&files[0]).unwrap()[..4], b"PAR1");
    let e = dataset.download(&out).await.unwrap_err();
    assert!(e.is_invalid_input() && e.message().contains("exists"), "{e}");
    assert_eq!(dataset.download(&out).exist_ok(true).await.unwrap().len(), 1);

    // delete; afterwards the object refuses without calling the cloud.
    dataset.delete().await.unwrap();
    assert!(dataset.is_deleted());
    let e = dataset.delete().await.unwrap_err();
    assert!(e.is_invalid_input() && e.message().contains("deleted"), "{e}");
    let e = sdk.datasets().get(dataset.id()).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(out);
}

#[cfg(feature = "parquet")]
#[tokio::test]
async fn read_yields_the_rows_as_records() {
    use yandex_cloud_ml_sdk::datasets::CompletionRecord;
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("read");
    let path = write_rows(&dir, "train.jsonl", &[row("Привет", "Здравствуй"), row("2+2?", "4")]);
    let dataset = sdk
        .datasets()
        .completions()
        .draft_from_path(&path)
        .upload()
        .poll_interval(Duration::from_millis(20))
        .await
        .unwrap();
    let records: Vec<CompletionRecord> = dataset.read_as::<CompletionRecord>().map(Result::unwrap).collect().await;
    assert_eq!(records.len(), 2);
    assert_eq!((records[0].request[0].text.as_str(), records[0].response.as_deref()), ("Привет", Some("Здравствуй")));
    let raw: Vec<serde_json::Value> = dataset.read().map(Result::unwrap).collect().await;
    assert_eq!(raw[1]["response"], "4");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_large_file_goes_up_in_parallel_parts_and_a_failed_part_is_sent_again() {
    // The second part PUT fails once with 503; the upload sends that part again on its own.
    let fault = FaultRule::new("storage/UploadPart", FaultAction::Fail { code: 14, message: "slow down".into() });
    let emulator = common::start(Emulator::builder().fault(fault.first_calls(1))).await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("multipart");
    let path = big_file(&dir, 60_000, 200); // about 12 MiB
    let size = std::fs::metadata(&path).unwrap().len();
    let dataset = sdk
        .datasets()
        .completions()
        .draft_from_path(&path)
        .chunk_size(5 << 20)
        .parallelism(2)
        .upload()
        .poll_interval(Duration::from_millis(20))
        .await
        .unwrap();
    assert_eq!((dataset.status(), dataset.info().rows), (DatasetStatus::Ready, 60_000));
    let journal = emulator.control().journal();
    let parts: Vec<_> = journal.iter().filter(|j| j.method == "storage/UploadPart").collect();
    assert_eq!(parts.len(), 3, "two parts, one of them twice: {:?}", parts.iter().map(|j| &j.note).collect::<Vec<_>>());
    let finish = journal.iter().find(|j| j.method.ends_with("DatasetService/FinishMultipartUploadDraft")).unwrap();
    let listed = finish.request["uploadedParts"].as_array().unwrap();
    assert_eq!(listed.iter().map(|p| p["partNum"].as_str().unwrap()).collect::<Vec<_>>(), ["1", "2"]);
    assert!(size > 10 << 20);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn validation_errors_name_every_bad_row() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("invalid");
    let lines = [
        row("fine", "ok"),
        "not json at all".to_owned(),
        serde_json::json!({"request": [{"role": "robot", "text": "x"}], "response": "y"}).to_string(),
        serde_json::json!({"request": [{"role": "user", "text": "no answer"}]}).to_string(),
        "{\"also\": \"broken\"".to_owned(),
    ];
    let path = write_rows(&dir, "bad.jsonl", &lines);
    let draft = sdk.datasets().completions().draft_from_path(&path);
    let e = draft.upload().poll_interval(Duration::from_millis(20)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidDataset, "{e}");
    let Some(ValidationFailure { dataset_id, errors, .. }) = e.details::<ValidationFailure>() else { panic!("{e:?}") };
    let rows_of =
        |needle: &str| errors.iter().find(|v| v.error.contains(needle)).map(|v| v.rows.clone()).unwrap_or_default();
    assert_eq!(rows_of("not valid JSON"), vec![2, 5]);
    assert_eq!(rows_of("`request`"), vec![3]);
    assert_eq!(rows_of("`response` is missing"), vec![4]);
    assert!(e.message().contains(dataset_id.as_str()));

    // Opting out returns the INVALID dataset with the same errors.
    let dataset = draft.upload().accept_invalid(true).poll_interval(Duration::from_millis(20)).await.unwrap();
    assert_eq!(dataset.status(), DatasetStatus::Invalid);
    assert_eq!(dataset.info().validation_errors.len(), 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_input_fails_before_anything_is_created() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("bad");
    let file = write_rows(&dir, "ok.jsonl", &[row("a", "b")]);
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let completions = sdk.datasets().completions();
    let cases = [
        (completions.draft_from_path(dir.join("missing.jsonl")), "cannot read dataset file"),
        (completions.draft_from_path(&dir), "is not a regular file"),
        (completions.draft_from_path(&empty), "is empty: a dataset needs rows"),
        (completions.draft_from_path(&file).chunk_size(1 << 20), "outside 5 MiB"),
        (completions.draft_from_path(&file).chunk_size(6 << 30), "outside 5 MiB"),
        (sdk.datasets().draft_from_path(&file), "no task type"),
    ];
    for (draft, needle) in cases {
        let e = draft.upload().await.unwrap_err();
        assert!(e.is_invalid_input() && e.message().contains(needle), "{needle}: {e}");
    }
    // A (sparse) 60 GiB file in 5 MiB chunks would need more parts than object storage takes.
    let huge = dir.join("huge.jsonl");
    std::fs::File::create(&huge).unwrap().set_len(60 << 30).unwrap();
    let e = completions.draft_from_path(&huge).chunk_size(5 << 20).upload().await.unwrap_err();
    assert!(e.is_invalid_input() && e.message().contains("at most 10000 parts"), "{e}");
    let e = sdk.datasets().get("fdsnosuchdataset0000").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    assert_eq!(e.message(), "Dataset fdsnosuchdataset0000 not found");
    assert!(emulator.control().journal().iter().all(|j| !j.method.ends_with("DatasetService/Create")));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_failed_upload_deletes_the_new_dataset_and_names_the_step() {
    let fault = FaultRule::new("storage/PutObject", FaultAction::Fail { code: 7, message: "denied".into() });
    let emulator = common::start(Emulator::builder().fault(fault)).await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("failed");
    let path = write_rows(&dir, "ok.jsonl", &[row("a", "b")]);
    let e = sdk.datasets().completions().draft_from_path(&path).upload().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Http, "{e}");
    assert!(e.message().contains("the upload PUT") && e.message().contains("was deleted"), "{e}");
    assert!(sdk.datasets().list().await.unwrap().is_empty(), "nothing left behind");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn listing_walks_every_page() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("pages");
    let path = write_rows(&dir, "ok.jsonl", &[row("a", "b")]);
    let mut ids = Vec::new();
    for i in 0..5 {
        let draft = sdk.datasets().completions().draft_from_path(&path).name(format!("d{i}"));
        let operation = draft.upload_deferred().await.unwrap();
        // The handle knows the dataset it created; one re-attached by operation id does not.
        ids.push(operation.dataset_id().unwrap().to_owned());
        assert_eq!(sdk.operations().get::<yandex_cloud_ml_sdk::datasets::Dataset>(operation.id()).dataset_id(), None);
    }
    let all = sdk.datasets().list().page_size(2).await.unwrap();
    assert_eq!(all.len(), 5);
    for id in &ids {
        assert!(all.iter().any(|d| d.id() == id), "{id}");
    }
    let pages = emulator.control().journal().iter().filter(|j| j.method.ends_with("DatasetService/List")).count();
    assert_eq!(pages, 3);
    // Deleting what was listed while the listing goes on does not break it.
    let mut stream = std::pin::pin!(sdk.datasets().list().page_size(2).stream());
    let mut deleted = 0;
    while let Some(dataset) = stream.next().await {
        dataset.unwrap().delete().await.unwrap();
        deleted += 1;
    }
    assert_eq!(deleted, 5);
    assert!(sdk.datasets().list().await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn uploads_and_downloads_survive_thirty_percent_failed_storage_requests() {
    // 30 % of part PUTs and of GETs answer 503 (a PUT before its body is read, so the server
    // may close the connection while the SDK still sends); every upload and every read must
    // come through on retries, with the same rows.
    let unavailable = |method: &str| {
        FaultRule::new(method, FaultAction::Fail { code: 14, message: "slow down".into() }).probability(0.3)
    };
    let emulator = common::start(
        Emulator::builder()
            .fault_seed(7)
            .fault(unavailable("storage/UploadPart"))
            .fault(unavailable("storage/GetObject")),
    )
    .await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("flaky-storage");
    let path = big_file(&dir, 6_300, 5_000); // about 31 MiB: six parts of about 5 MiB
    let runs = 20;
    let mut done = 0;
    for run in 0..runs {
        let upload = sdk
            .datasets()
            .completions()
            .draft_from_path(&path)
            .chunk_size(5 << 20)
            .parallelism(2)
            .upload()
            .poll_interval(Duration::from_millis(20))
            .retry_policy(RetryPolicy::default().initial_backoff(Duration::from_millis(5)).jitter(Duration::ZERO))
            .await;
        let dataset = match upload {
            Ok(dataset) => dataset,
            Err(e) => {
                eprintln!("upload {run} failed: {e}");
                continue;
            }
        };
        let rows: Vec<_> = dataset.read().collect().await;
        match rows.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => eprintln!("read {run} failed: {e}"),
            None if rows.len() == 6_300 => done += 1,
            None => eprintln!("read {run} gave {} rows", rows.len()),
        }
    }
    let journal = emulator.control().journal();
    let count = |method: &str| journal.iter().filter(|j| j.method == method).count();
    // Six parts per upload and one file per read when nothing fails.
    let (puts, gets) = (count("storage/UploadPart"), count("storage/GetObject"));
    assert!(puts > 6 * runs + 10 && gets > runs + 3, "the faults fired: {puts} part PUTs, {gets} GETs");
    assert!(done >= 19, "{done} of {runs} uploads and reads came through");
    let _ = std::fs::remove_dir_all(dir);
}
