//! Fine-tuning end to end on the emulator: tune → wait → the tuned model answers its training
//! responses (run, stream, deferred, tokenize) while the base model does not; task info,
//! metrics, cancel, failures on bad datasets, listing over pages, re-attaching by id, and a
//! restart with a data directory that keeps everything.

mod common;

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures_util::StreamExt;
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig};
use yandex_cloud_ml_sdk::{
    Code, ErrorKind, Sdk,
    datasets::Dataset,
    tuning::{Scheduler, TuneParams, TuningStatus, TuningType},
};

const FAST: Duration = Duration::from_millis(10);

fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("ycml-{name}-{nanos}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn upload(sdk: &Sdk, dir: &std::path::Path, rows: &[(&str, &str)]) -> Dataset {
    let lines: Vec<String> = rows
        .iter()
        .map(|(q, a)| serde_json::json!({"request": [{"role": "system", "text": "Be brief."}, {"role": "user", "text": q}], "response": a}).to_string())
        .collect();
    let path = dir.join(format!("train-{}.jsonl", lines.len()));
    std::fs::write(&path, lines.join("\n")).unwrap();
    sdk.datasets().completions().draft_from_path(path).upload().poll_interval(FAST).await.unwrap()
}

const TRAINING: &[(&str, &str)] = &[
    ("What is our refund window?", "30 days from delivery, no questions asked."),
    ("Do you ship to Kazakhstan?", "Yes, in 5 to 7 working days."),
];

#[tokio::test]
async fn a_tuned_model_answers_what_it_learned_and_the_base_model_does_not() {
    // Steps that take a moment, so polls see the training advance.
    let config = EmulatorConfig { tuning_step_ms: 5, ..Default::default() };
    let emulator = common::start(Emulator::builder().config(config)).await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("tune");
    let train = upload(&sdk, &dir, TRAINING).await;
    let base = sdk.models().completions("yandexgpt-lite");
    let steps = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = steps.clone();
    let tuned = base
        .tune(&train)
        .validation(&train)
        .params(TuneParams::default().seed(7).tuning_type(TuningType::lora(8)).scheduler(Scheduler::linear(0.1)))
        .name("support bot")
        .poll_interval(FAST)
        .on_progress(move |p| sink.lock().unwrap().push(p.done))
        .await
        .unwrap();
    assert!(tuned.uri().starts_with(&format!("{}@", base.uri())), "{}", tuned.uri());
    assert!(steps.lock().unwrap().iter().any(|d| *d > 0), "steps reported: {:?}", steps.lock().unwrap());

    let prompt = "what is our refund window";
    assert_eq!(tuned.run(prompt).await.unwrap().text(), "30 days from delivery, no questions asked.");
    assert_ne!(base.run(prompt).await.unwrap().text(), "30 days from delivery, no questions asked.");
    // Streaming, deferred and tokenize work on the tuned URI too.
    let mut stream = tuned.run_stream("Do you ship to Kazakhstan?").await.unwrap();
    let mut last = String::new();
    while let Some(chunk) = stream.next().await {
        last = chunk.unwrap().text().to_owned();
    }
    assert_eq!(last, "Yes, in 5 to 7 working days.");
    let op = tuned.run_deferred(prompt).await.unwrap();
    assert_eq!(op.wait().poll_interval(FAST).await.unwrap().text(), "30 days from delivery, no questions asked.");
    assert!(!tuned.tokenize(prompt).await.unwrap().is_empty());
    // A prompt it did not learn gets the base model's answer.
    assert_eq!(tuned.run("hello there").await.unwrap().text(), base.run("hello there").await.unwrap().text());
    // A tuned model is not tuned again (the server says so, like the cloud).
    let e = tuned.tune_deferred(&train).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(e.message(), "base_model_uri: a tuned model cannot be tuned again; tune its base model");

    // An unknown tuned URI is NOT_FOUND, like the cloud.
    let unknown = sdk.models().completions(&format!("{}@tamnosuchmodel000000", base.uri()));
    let e = unknown.run("hi").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound));
    assert_eq!(e.message(), format!("model {} not found", unknown.uri()));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_task_reports_its_info_metrics_and_can_be_reattached() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("task");
    let train = upload(&sdk, &dir, TRAINING).await;
    let base = sdk.models().completions("yandexgpt");
    let task = base.tune_deferred(train.id()).name("first-try").await.unwrap();
    assert_eq!(task.task_id().await.unwrap(), task.id(), "a task id equals its operation id");
    let tuned = task.wait().poll_interval(FAST).await.unwrap();
    let info = task.info().await.unwrap();
    assert_eq!(info.status, TuningStatus::Completed);
    assert_eq!(info.target_model_uri.as_deref(), Some(tuned.uri()));
    assert_eq!(info.source_model_uri.as_deref(), Some("gpt://yandexgpt/latest"), "the cloud's source has no folder");
    assert_eq!(info.name.as_deref(), Some("first-try"));
    assert!(info.started_at.is_some() && info.finished_at.is_some());

    // Metrics: a CSV of the training steps behind a presigned URL.
    let url = task.metrics_url().await.unwrap().expect("a completed task has metrics");
    assert!(url.contains("/storage/download/") && url.contains("sig="), "{url}");

    // Re-attached by id, from the model or from the tuning domain.
    let again = base.attach_tune_deferred(task.id());
    assert_eq!(again.result().await.unwrap().uri(), tuned.uri());
    let found = sdk.tuning().get(task.id()).await.unwrap();
    assert_eq!(found.info().await.unwrap().status, TuningStatus::Completed);
    let e = sdk.tuning().get("ftnnosuchtask0000000").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");

    // Cancelling a finished task says so.
    let e = task.cancel().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert!(e.message().contains("already completed"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_running_task_can_be_cancelled() {
    let config = EmulatorConfig { tuning_step_ms: 200, ..Default::default() };
    let emulator = common::start(Emulator::builder().config(config)).await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("cancel");
    let train = upload(&sdk, &dir, TRAINING).await;
    let task = sdk.models().completions("yandexgpt").tune_deferred(&train).await.unwrap();
    assert!(task.info().await.unwrap().status.is_running());
    task.cancel().await.unwrap();
    assert_eq!(task.info().await.unwrap().status, TuningStatus::Canceled);
    let e = task.wait().poll_interval(FAST).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::OperationFailed, Some(Code::Cancelled)), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tuning_on_a_bad_dataset_fails_and_never_reports_success() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("badtune");
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, "{\"request\": []}\n").unwrap();
    let invalid = sdk
        .datasets()
        .completions()
        .draft_from_path(&path)
        .upload()
        .accept_invalid(true)
        .poll_interval(FAST)
        .await
        .unwrap();
    let model = sdk.models().completions("yandexgpt");
    for (dataset, needle) in [(invalid.id(), "is INVALID"), ("fdsnosuchdataset0000", "not found")] {
        let task = model.tune_deferred(dataset).await.unwrap();
        let e = task.wait().poll_interval(FAST).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OperationFailed, "{e}");
        assert!(e.message().contains(needle), "{needle}: {e}");
        assert_eq!(task.info().await.unwrap().status, TuningStatus::Failed);
    }
    // Caught before anything is sent.
    let e = model.tune_deferred(Vec::<String>::new()).await.unwrap_err();
    assert!(e.is_invalid_input() && e.message().starts_with("no training datasets: pass at least one"), "{e}");
    for weight in [f64::NAN, -1.0] {
        let e = model.tune_deferred((invalid.id(), weight)).await.unwrap_err();
        let expected = format!("dataset {} has weight {weight}, which is not a non-negative number", invalid.id());
        assert!(e.is_invalid_input() && e.message().contains(&expected), "{e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn listing_walks_every_page() {
    let emulator = common::emulator().await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("tunelist");
    let train = upload(&sdk, &dir, TRAINING).await;
    let model = sdk.models().completions("yandexgpt");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let task = model.tune_deferred(&train).await.unwrap();
        task.wait().poll_interval(FAST).await.unwrap();
        ids.push(task.id().to_owned());
    }
    let listed = sdk.tuning().list().page_size(1).await.unwrap();
    let mut listed_ids: Vec<String> = listed.iter().map(|t| t.task_id.clone()).collect();
    listed_ids.sort();
    ids.sort();
    assert_eq!(listed_ids, ids);
    let pages = emulator.control().journal().iter().filter(|j| j.method.ends_with("TuningService/List")).count();
    assert_eq!(pages, 3);
    assert_eq!(sdk.tuning().list().status(TuningStatus::Failed).await.unwrap().len(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_restart_with_a_data_dir_keeps_datasets_and_tuned_models() {
    let data = temp_dir("datadir");
    let config = || EmulatorConfig { data_dir: Some(data.clone()), ..Default::default() };
    let emulator = common::start(Emulator::builder().config(config())).await;
    let sdk = common::sdk(&emulator);
    let train = upload(&sdk, &data, TRAINING).await;
    let task = sdk.models().completions("yandexgpt").tune_deferred(&train).await.unwrap();
    let tuned = task.wait().poll_interval(FAST).await.unwrap();
    let uri = tuned.uri().to_owned();
    emulator.shutdown().await;

    let emulator = common::start(Emulator::builder().config(config())).await;
    let sdk = common::sdk(&emulator);
    let dataset = sdk.datasets().get(train.id()).await.unwrap();
    assert_eq!(dataset.info().rows, 2);
    let out = temp_dir("datadir-download");
    assert_eq!(dataset.download(&out).await.unwrap().len(), 1);
    // The tuned model is known (its file's size counted) but read back only when first used.
    let suffix = uri.rsplit('@').next().unwrap();
    assert!(emulator.control().tuned_models().iter().any(|(s, bytes)| s == suffix && *bytes > 0));
    let tuned = sdk.models().completions(&uri);
    assert_eq!(
        tuned.run("What is our refund window?").await.unwrap().text(),
        "30 days from delivery, no questions asked."
    );
    // The task, and its operation, can be re-attached after the restart.
    let again = sdk.models().completions("yandexgpt").attach_tune_deferred(task.id());
    assert_eq!(again.result().await.unwrap().uri(), uri);
    let _ = std::fs::remove_dir_all(data);
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test]
async fn tuned_models_are_bounded_in_bytes_and_can_be_deleted() {
    // The budget fits one model of these rows (each cut to 16 KiB of prompt and of response),
    // not two.
    let config = EmulatorConfig { max_tuned_model_bytes: 25_000, ..Default::default() };
    let emulator = common::start(Emulator::builder().config(config)).await;
    let sdk = common::sdk(&emulator);
    let dir = temp_dir("tune-budget");
    let long = "x".repeat(40_000);
    let train = upload(&sdk, &dir, &[("what is long", &long), ("what is short", "short")]).await;
    let base = sdk.models().completions("yandexgpt-lite");
    let tuned = base.tune(&train).poll_interval(FAST).await.unwrap();
    assert_eq!(tuned.run("what is long").await.unwrap().text().len(), 16 << 10, "the response was cut to 16 KiB");
    let models = emulator.control().tuned_models();
    assert_eq!(models.len(), 1);
    let (suffix, bytes) = models[0].clone();
    assert!(bytes > 16 << 10 && bytes < 20_000, "{bytes}");

    // A second one does not fit: the tuning fails naming the limit and what to do.
    let e = base.tune(&train).poll_interval(FAST).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OperationFailed, "{e}");
    assert!(e.message().contains("max_tuned_model_bytes") && e.message().contains("DELETE /tuned-models"), "{e}");

    // Deleted, the model is gone (NOT_FOUND) and its bytes are free for the next tuning.
    assert!(emulator.control().delete_tuned_model(&suffix));
    assert!(!emulator.control().delete_tuned_model(&suffix));
    assert_eq!(tuned.run("what is long").await.unwrap_err().code(), Some(Code::NotFound));
    let again = base.tune(&train).poll_interval(FAST).await.unwrap();
    assert_eq!(again.run("what is short").await.unwrap().text(), "short");
    let _ = std::fs::remove_dir_all(dir);
}
