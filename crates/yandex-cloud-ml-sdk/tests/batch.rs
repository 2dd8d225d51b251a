//! Batch inference end to end on the emulator: a 1,000-row batch whose answers match `run`,
//! row errors that do not sink the task, cancel with a partial result, listing, a tuned model
//! in batch, and the bad input that must fail clearly.

mod common;

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures_util::StreamExt;
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig};
use yandex_cloud_ml_sdk::{
    Code, ErrorKind, Sdk,
    batch::{BatchFailure, BatchStatus},
    datasets::{Dataset, DatasetStatus, TaskType},
};

const FAST: Duration = Duration::from_millis(10);

fn temp_file(name: &str, lines: &[String]) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let path = std::env::temp_dir().join(format!("ycml-batch-{name}-{nanos}-{}.jsonl", std::process::id()));
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn prompt_row(prompt: &str) -> String {
    serde_json::json!({"request": [{"role": "user", "text": prompt}]}).to_string()
}

async fn prompts(sdk: &Sdk, name: &str, prompts: &[String]) -> Dataset {
    let lines: Vec<String> = prompts.iter().map(|p| prompt_row(p)).collect();
    let path = temp_file(name, &lines);
    let dataset = sdk.datasets().batch_requests().draft_from_path(&path).upload().poll_interval(FAST).await.unwrap();
    let _ = std::fs::remove_file(path);
    dataset
}

#[cfg(feature = "parquet")]
#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_rows_are_answered_as_run_answers_them() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let questions: Vec<String> = (0..1000).map(|i| format!("question number {i}")).collect();
    let source = prompts(&sdk, "thousand", &questions).await;
    let model = sdk.models().completions("yandexgpt-lite").configure(|c| c.temperature(0.3)).unwrap();
    let task = model.batch().run_deferred(&source).await.unwrap();
    assert!(task.id().starts_with("fbi"), "{}", task.id());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let result = task
        .wait()
        .poll_interval(FAST)
        .on_progress(move |p| sink.lock().unwrap().push((p.done, p.total)))
        .await
        .unwrap();

    let info = result.info();
    assert_eq!(
        (info.status, info.task_type.clone(), info.rows),
        (DatasetStatus::Ready, TaskType::TextToTextGeneration, 1000)
    );
    assert_eq!(info.name.as_deref(), Some(format!("Batch inference {} result", task.id()).as_str()));
    assert_eq!(info.labels["foundation_models_batch_task_id"], task.id());
    assert_eq!(info.labels["foundation_models_source_dataset"], source.id());
    assert!(
        seen.lock().unwrap().iter().any(|(_, total)| *total == Some(10)),
        "batches reported: {:?}",
        seen.lock().unwrap()
    );

    // Each answer comes with the row it answers, in order, and is what `run` answers.
    let records: Vec<_> = task.results().map(Result::unwrap).collect().await;
    assert_eq!(records.len(), 1000);
    for (i, record) in records.iter().enumerate().step_by(97) {
        assert_eq!(record.request[0].text, questions[i]);
        let online = model.run(questions[i].as_str()).await.unwrap();
        assert_eq!(record.response.as_deref(), Some(online.text()));
    }
    let info = task.info().await.unwrap();
    assert_eq!(info.status, BatchStatus::Completed);
    assert_eq!(info.result_dataset_id.as_deref(), Some(result.id()));
    assert!(info.started_at.is_some() && info.finished_at.is_some() && info.line_errors.is_empty());
    assert_eq!(info.source_dataset_id, source.id());

    // Re-attached by id; deleted once finished (its result dataset stays).
    let again = sdk.batch().get(task.id()).await.unwrap();
    assert_eq!(again.result().await.unwrap().id(), result.id());
    again.delete().await.unwrap();
    assert!(sdk.batch().get(task.id()).await.unwrap_err().is_not_found());
    assert!(sdk.datasets().get(result.id()).await.is_ok());
}

#[tokio::test]
async fn a_row_that_cannot_be_answered_is_a_line_error_not_a_failure() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    // The first prompt is longer than the model's context window.
    let source = prompts(&sdk, "errors", &["too long ".repeat(40_000), "fine".into(), "also fine".into()]).await;
    let task = sdk.models().completions("yandexgpt").batch().run_deferred(source.id()).await.unwrap();
    let result = task.wait().poll_interval(FAST).await.unwrap();
    assert_eq!(result.info().rows, 2);
    let info = task.info().await.unwrap();
    assert_eq!(info.line_errors.len(), 1);
    assert_eq!(info.line_errors[0].line, 1);
    assert!(info.line_errors[0].message.contains("context window"), "{:?}", info.line_errors);
}

#[tokio::test]
async fn a_cancelled_task_is_an_error_that_names_its_partial_result() {
    let config = EmulatorConfig { batch_step_ms: 50, ..Default::default() };
    let emulator = common::start(Emulator::builder().config(config)).await;
    let sdk = common::sdk(&emulator);
    let questions: Vec<String> = (0..1000).map(|i| format!("q{i}")).collect();
    let source = prompts(&sdk, "cancel", &questions).await;
    let task = sdk.models().completions("yandexgpt").batch().run_deferred(&source).await.unwrap();
    // Wait for the first batch, then cancel.
    loop {
        let info = task.info().await.unwrap();
        if info.status == BatchStatus::InProgress {
            break;
        }
        tokio::time::sleep(FAST).await;
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    let e = task.result().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OperationRunning, "{e}");
    assert_eq!(e.message(), format!("batch task {} is still IN_PROGRESS; wait for it", task.id()));
    let e = task.delete().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "a running task is not deleted: {e}");
    assert_eq!(e.message(), format!("Batch task {} is IN_PROGRESS; cancel it first", task.id()));
    task.cancel().await.unwrap();
    assert_eq!(task.status().await.unwrap(), BatchStatus::Canceled);
    let e = task.wait().poll_interval(FAST).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::OperationFailed, Some(Code::Cancelled)), "{e}");
    let Some(BatchFailure { partial_result: Some(partial), .. }) = e.details::<BatchFailure>() else { panic!("{e:?}") };
    assert!(
        e.message()
            .starts_with(&format!("batch task {} ended CANCELED; partial results in dataset {partial}", task.id())),
        "{e}"
    );
    // The partial result becomes readable once the worker has written what it answered.
    let mut rows = 0;
    for _ in 0..200 {
        let d = sdk.datasets().get(partial).await.unwrap();
        if d.status() == DatasetStatus::Ready {
            rows = d.info().rows;
            break;
        }
        tokio::time::sleep(FAST).await;
    }
    assert!(rows > 0 && rows < 1000, "partial rows: {rows}");
    let e = task.cancel().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "a finished task is not cancelled again: {e}");
    assert_eq!(e.message(), format!("Batch task {} is CANCELED", task.id()));

    // Cancelling its operation cancels the task too; cancelled at once, it leaves no result
    // dataset stuck half-written.
    let second = sdk.models().completions("yandexgpt").batch().run_deferred(&source).await.unwrap();
    let op = second.info().await.unwrap().operation_id;
    sdk.operations().get_untyped(op).cancel().await.unwrap();
    let mut status = second.status().await.unwrap();
    for _ in 0..200 {
        if !status.is_running() {
            break;
        }
        tokio::time::sleep(FAST).await;
        status = second.status().await.unwrap();
    }
    assert_eq!(status, BatchStatus::Canceled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    if let Some(result) = second.info().await.unwrap().result_dataset_id {
        let d = sdk.datasets().get(&result).await.unwrap();
        assert_eq!(d.status(), DatasetStatus::Ready, "the result it names is readable, however few rows it has");
    }
}

#[tokio::test]
async fn listing_walks_every_page_and_filters_by_status() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let source = prompts(&sdk, "list", &["a".into()]).await;
    let model = sdk.models().completions("yandexgpt");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let task = model.batch().run_deferred(&source).await.unwrap();
        task.wait().poll_interval(FAST).await.unwrap();
        ids.push(task.id().to_owned());
    }
    let mut listed: Vec<String> =
        sdk.batch().list().page_size(2).await.unwrap().into_iter().map(|t| t.task_id).collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    let completed = sdk.batch().list().status("completed".parse().unwrap()).await.unwrap();
    assert_eq!(completed.len(), 3);
    assert!(sdk.batch().list().status(BatchStatus::Failed).await.unwrap().is_empty());
}

#[cfg(feature = "parquet")]
#[tokio::test]
async fn a_tuned_model_answers_its_training_in_batch() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let train_path = temp_file(
        "train",
        &[serde_json::json!({"request": [{"role": "user", "text": "what is the code word"}], "response": "Marmalade."})
            .to_string()],
    );
    let train = sdk.datasets().completions().draft_from_path(&train_path).upload().poll_interval(FAST).await.unwrap();
    let tuned = sdk.models().completions("yandexgpt").tune(&train).poll_interval(FAST).await.unwrap();
    let source = prompts(&sdk, "tuned", &["What is the code word?".into(), "hello".into()]).await;
    let task = tuned.batch().run_deferred(&source).await.unwrap();
    task.wait().poll_interval(FAST).await.unwrap();
    let answers: Vec<Option<String>> = task.results().map(|r| r.unwrap().response).collect().await;
    assert_eq!(answers, [Some("Marmalade.".to_owned()), Some("Echo: hello".to_owned())]);
    let _ = std::fs::remove_file(train_path);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_reason() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let model = sdk.models().completions("yandexgpt");
    let e = model.batch().run_deferred("fdsnosuchdataset0000").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    assert_eq!(e.message(), "source_dataset_id: dataset fdsnosuchdataset0000 not found");
    let completions_path = temp_file(
        "wrongtype",
        &[serde_json::json!({"request": [{"role": "user", "text": "q"}], "response": "a"}).to_string()],
    );
    let wrong =
        sdk.datasets().completions().draft_from_path(&completions_path).upload().poll_interval(FAST).await.unwrap();
    let e = model.batch().run_deferred(&wrong).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert!(e.message().contains("TextToTextGenerationRequest"), "{e}");
    let e = model.batch().run_deferred("").await.unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    assert_eq!(e.message(), "the dataset id is empty: pass a dataset id or a Dataset");
    let hot = model.configure(|c| c.temperature(0.9)).unwrap();
    let source = prompts(&sdk, "bad", &["x".into()]).await;
    assert!(hot.batch().run_deferred(&source).await.is_ok(), "valid options pass");
    let e = sdk.batch().get("fbinosuchtask0000000").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let _ = std::fs::remove_file(completions_path);
}
