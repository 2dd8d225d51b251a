//! The blocking flavour, one test per method, against an emulator that runs on its own runtime
//! (the test threads themselves have none, as in a program without async).
#![cfg(feature = "blocking")]

mod common;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig, EmulatorHandle, OperationPolicy, ScriptRule, ScriptedAnswer};
use yandex_cloud_ml_sdk::{
    ErrorKind, RetryPolicy,
    batch::BatchStatus,
    blocking::{Dataset, Sdk},
    completions::AlternativeStatus,
    datasets::DatasetStatus,
    operations::OperationStatus,
    tuning::TuningStatus,
};

const FAST: Duration = Duration::from_millis(10);

/// One emulator for the file, served by a runtime the tests never enter.
fn emulator() -> &'static EmulatorHandle {
    static EMULATOR: OnceLock<(tokio::runtime::Runtime, EmulatorHandle)> = OnceLock::new();
    &EMULATOR
        .get_or_init(|| {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let config = EmulatorConfig { tuning_step_ms: 1, batch_step_ms: 1, ..Default::default() };
            let handle = runtime.block_on(Emulator::builder().config(config).start("127.0.0.1:0")).unwrap();
            (runtime, handle)
        })
        .1
}

fn sdk() -> Sdk {
    let fast = RetryPolicy::default().initial_backoff(Duration::from_millis(5)).max_backoff(Duration::from_millis(20));
    yandex_cloud_ml_sdk::Sdk::builder().emulator(emulator().endpoint()).retry_policy(fast).build_blocking().unwrap()
}

fn jsonl(name: &str, rows: &[serde_json::Value]) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let path = std::env::temp_dir().join(format!("ycml-blocking-{name}-{nanos}-{}.jsonl", std::process::id()));
    let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn upload_prompts(sdk: &Sdk, prompts: &[&str]) -> Dataset {
    let rows: Vec<_> = prompts.iter().map(|p| serde_json::json!({"request": [{"role": "user", "text": p}]})).collect();
    let path = jsonl("prompts", &rows);
    let dataset =
        sdk.datasets().batch_requests().draft_from_path(&path).upload().with(|c| c.poll_interval(FAST)).send();
    let _ = std::fs::remove_file(path);
    dataset.unwrap()
}

fn upload_training(sdk: &Sdk) -> Dataset {
    let rows = [
        serde_json::json!({"request": [{"role": "user", "text": "What is our refund window?"}], "response": "30 days."}),
    ];
    let path = jsonl("train", &rows);
    let dataset = sdk.datasets().completions().draft_from_path(&path).upload().with(|c| c.poll_interval(FAST)).send();
    let _ = std::fs::remove_file(path);
    dataset.unwrap()
}

#[test]
fn run_answers_with_per_call_options() {
    let model = sdk().models().completions("yandexgpt");
    let result = model.run("hello").timeout(Duration::from_secs(30)).attempt_timeout(Duration::from_secs(10)).send();
    assert_eq!(result.unwrap().text(), "Echo: hello");
    let named = sdk().models().completions_with_version("yandexgpt", "rc");
    assert!(named.uri().ends_with("/yandexgpt/rc"), "{}", named.uri());
}

#[test]
fn configure_returns_a_blocking_model_with_the_settings() {
    let model = sdk().models().completions("yandexgpt").configure(|c| c.max_tokens(2)).unwrap();
    assert_eq!(model.config().get_max_tokens(), Some(2));
    let result = model.run("one two three four").send().unwrap();
    assert_eq!(result.status(), AlternativeStatus::TruncatedFinal);
}

#[test]
fn run_stream_is_an_iterator_whose_deltas_add_up() {
    let model = sdk().models().completions("yandexgpt");
    let stream = model.run_stream("stream these words please").send().unwrap();
    assert!(!stream.request_id().is_empty());
    let mut text = String::new();
    let mut last = None;
    for chunk in stream {
        let chunk = chunk.unwrap();
        text.push_str(chunk.delta());
        last = Some(chunk.status());
    }
    assert_eq!(text, "Echo: stream these words please");
    assert_eq!(last, Some(AlternativeStatus::Final));
    let whole = model.run_stream("collect me").send().unwrap().final_result().unwrap();
    assert_eq!(whole.text(), "Echo: collect me");
}

#[test]
fn dropping_a_stream_cancels_the_call_on_the_server() {
    let emulator = {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let handle = runtime
            .block_on(Emulator::builder().stream_chunk_delay(Duration::from_millis(50)).start("127.0.0.1:0"))
            .unwrap();
        (runtime, handle)
    };
    let sdk = yandex_cloud_ml_sdk::Sdk::builder().emulator(emulator.1.endpoint()).build_blocking().unwrap();
    let mut stream = sdk.models().completions("yandexgpt").run_stream("word ".repeat(200).as_str()).send().unwrap();
    assert_eq!(stream.next().unwrap().unwrap().status(), AlternativeStatus::Partial);
    assert!(stream.current().is_some());
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(2);
    while emulator.1.control().stats().streams_cancelled == 0 {
        assert!(Instant::now() < deadline, "generation did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_deferred_then_wait_status_result_cancel_and_reattach() {
    let sdk = sdk();
    let model = sdk.models().completions("yandexgpt");
    let operation = model.run_deferred("deferred hello").send().unwrap();
    let seen = Arc::new(Mutex::new(0));
    let sink = seen.clone();
    let result = operation
        .wait()
        .poll_interval(FAST)
        .timeout(Duration::from_secs(30))
        .on_progress(move |_| *sink.lock().unwrap() += 1)
        .send()
        .unwrap();
    assert_eq!(result.text(), "Echo: deferred hello");
    assert!(operation.status().send().unwrap() == OperationStatus::Succeeded);
    assert_eq!(operation.result().send().unwrap().text(), "Echo: deferred hello");
    let again = model.attach_deferred(operation.id());
    assert_eq!(again.result().timeout(Duration::from_secs(5)).send().unwrap().text(), "Echo: deferred hello");
    let by_id = sdk.operations().get::<yandex_cloud_ml_sdk::completions::CompletionResult>(operation.id());
    assert_eq!(by_id.result().send().unwrap().text(), "Echo: deferred hello");
    let untyped = sdk.operations().get_untyped(operation.id());
    assert!(untyped.status().send().unwrap() == OperationStatus::Succeeded);
    assert!(untyped.result().send().unwrap().type_url.ends_with("CompletionResponse"));
}

#[test]
fn cancel_stops_a_running_deferred_generation() {
    let emulator = {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let handle =
            runtime.block_on(Emulator::builder().operations(OperationPolicy::Manual).start("127.0.0.1:0")).unwrap();
        (runtime, handle)
    };
    let sdk = yandex_cloud_ml_sdk::Sdk::builder().emulator(emulator.1.endpoint()).build_blocking().unwrap();
    let operation = sdk.models().completions("yandexgpt").run_deferred("slow").send().unwrap();
    assert!(operation.status().send().unwrap().is_running());
    let e = operation
        .wait()
        .poll_interval(FAST)
        .with(|w| w.poll_timeout(Duration::from_secs(5)))
        .timeout(Duration::from_millis(50))
        .send();
    assert!(e.unwrap_err().is_timeout());
    operation.cancel().send().unwrap();
    assert_eq!(operation.status().send().unwrap(), OperationStatus::Failed);
    let e = operation.result().send().unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::OperationFailed, Some(yandex_cloud_ml_sdk::Code::Cancelled)));
}

#[test]
fn per_call_retry_policy_and_the_async_escape_hatches() {
    let sdk = sdk();
    let rule = ScriptRule {
        prompt_contains: "unavailable once".into(),
        model: None,
        answer: ScriptedAnswer::Error { code: tonic::Code::Unavailable as i32, message: "try later".into() },
        times: Some(1),
    };
    emulator().control().add_script(rule).unwrap();
    let model = sdk.models().completions("yandexgpt");
    let call = model.run("unavailable once").retry_policy(RetryPolicy::none());
    assert_eq!(call.as_async().options().timeout(), Duration::from_secs(180));
    let e = call.send().unwrap_err();
    assert_eq!((e.code(), e.attempts(), e.is_retryable()), (Some(yandex_cloud_ml_sdk::Code::Unavailable), 1, true));
    // The rule is used up: the default policy gets through.
    assert_eq!(model.run("unavailable once").send().unwrap().text(), "Echo: unavailable once");

    let stream = model.run_stream("escape").send().unwrap();
    assert!(stream.as_async().is_some());
    let mut stream = stream;
    while stream.next().is_some() {}
    let e = stream.final_result().unwrap_err();
    assert!(e.is_invalid_input(), "an ended stream has no more results");
    assert_eq!(e.message(), "the stream has already ended; keep the last chunk's result instead");

    let async_model = model.clone().into_async();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(async { async_model.run("async").await }).unwrap().text(), "Echo: async");
}

/// `blocking::Sdk::from_env` in a child process with an environment of its own.
fn from_env_in_child(emulator_host: Option<&str>) -> String {
    let mut cmd = common::child_test("from_env_child");
    for var in ["YC_FOLDER_ID", "YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_TOKEN", "YCML_EMULATOR_HOST"] {
        cmd.env_remove(var);
    }
    if let Some(host) = emulator_host {
        cmd.env("YCML_EMULATOR_HOST", host);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the child failed:\n{text}");
    text
}

#[test]
fn from_env_needs_a_folder_and_reaches_the_emulator_named_by_the_environment() {
    let out = from_env_in_child(None);
    assert!(out.contains("CHILD ERR Configuration") && out.contains("YC_FOLDER_ID"), "{out}");
    let out = from_env_in_child(Some(&emulator().endpoint()));
    let folder = yandex_cloud_ml_sdk::EMULATOR_FOLDER_ID;
    assert!(out.contains(&format!("CHILD OK folder {folder}: Echo: from env")), "{out}");
}

/// A step of the test above, run by it in a child process.
#[test]
#[ignore = "a step of from_env_needs_a_folder_and_reaches_the_emulator_named_by_the_environment"]
fn from_env_child() {
    match Sdk::from_env() {
        Ok(sdk) => {
            let answer = sdk.models().completions("yandexgpt").run("from env").send().unwrap();
            println!("CHILD OK folder {}: {}", sdk.folder_id(), answer.text());
        }
        Err(e) => println!("CHILD ERR {:?}: {e}", e.kind()),
    }
}

#[test]
fn tokenize_counts_tokens() {
    let tokens = sdk().models().completions("yandexgpt").tokenize("hello world").send().unwrap();
    assert!(!tokens.is_empty());
}

#[cfg(feature = "schemars")]
#[test]
fn run_structured_deserializes() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct City {
        name: String,
    }
    // The deterministic model fills string fields with the prompt.
    let city = sdk().models().completions("yandexgpt").run_structured::<City>("Paris").send().unwrap();
    assert_eq!(city.name, "Paris");
}

#[test]
fn inside_an_async_runtime_calls_are_refused_not_deadlocked() {
    let sdk = sdk();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let e = sdk.models().completions("yandexgpt").run("hi").send().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration);
        assert!(e.message().contains("async runtime"), "{e}");
        let e = sdk.batch().get("fbinosuchtask").send().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "methods without send are refused too");
        let mut stream_error = sdk.batch().list().into_iter();
        assert_eq!(stream_error.next().unwrap().unwrap_err().kind(), ErrorKind::Configuration);
        assert!(stream_error.next().is_none(), "an error ends the iteration");
        // Dropping the client inside a runtime does not panic either.
        drop(sdk);
    });
}

#[test]
fn datasets_upload_get_list_update_download_and_delete() {
    let sdk = sdk();
    let dataset = upload_prompts(&sdk, &["first", "second"]);
    assert_eq!(dataset.status(), DatasetStatus::Ready);
    let fetched = sdk.datasets().get(dataset.id()).send().unwrap();
    assert_eq!(fetched.info().rows, 2);
    let refreshed = dataset.refresh().send().unwrap();
    assert_eq!(refreshed.id(), dataset.id());
    let renamed = dataset.update(|u| u.name("renamed")).send().unwrap();
    assert_eq!(renamed.info().name.as_deref(), Some("renamed"));
    let listed: Vec<_> = sdk.datasets().list().with(|l| l.page_size(1)).into_iter().map(|d| d.unwrap()).collect();
    assert!(listed.iter().any(|d| d.id() == dataset.id()), "paged through every dataset");
    let schemas = sdk.datasets().list_upload_schemas("TextToTextGenerationRequest").send().unwrap();
    assert!(!schemas.is_empty());
    let dir = std::env::temp_dir().join(format!("ycml-blocking-download-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = dataset.download(&dir).with(|d| d.exist_ok(true)).send().unwrap();
    assert!(!files.is_empty() && files.iter().all(|f| f.exists()));
    let _ = std::fs::remove_dir_all(dir);
    dataset.delete().send().unwrap();
    assert!(sdk.datasets().get(dataset.id()).send().unwrap_err().is_not_found());
}

#[cfg(feature = "parquet")]
#[test]
fn datasets_read_rows_as_an_iterator() {
    let sdk = sdk();
    let dataset = upload_prompts(&sdk, &["alpha", "beta", "gamma"]);
    let rows: Vec<serde_json::Value> = dataset.read().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let typed: Vec<serde_json::Value> = dataset.read_as::<serde_json::Value>().map(|r| r.unwrap()).collect();
    assert_eq!(typed, rows);
}

#[test]
fn upload_deferred_returns_the_validation_operation() {
    let sdk = sdk();
    let path = jsonl("deferred", &[serde_json::json!({"request": [{"role": "user", "text": "x"}]})]);
    let operation = sdk.datasets().batch_requests().draft_from_path(&path).upload_deferred().send().unwrap();
    let dataset = operation.wait().poll_interval(FAST).send().unwrap();
    assert_eq!(dataset.status(), DatasetStatus::Ready);
    // The dataset an operation hands back is a blocking one.
    assert_eq!(dataset.refresh().send().unwrap().info().rows, 1);
    assert_eq!(operation.result().send().unwrap().refresh().send().unwrap().id(), dataset.id());
    for shortcut in [
        sdk.datasets().text_classifiers_multilabel(),
        sdk.datasets().text_classifiers_multiclass(),
        sdk.datasets().text_classifiers_binary(),
        sdk.datasets().text_embeddings_pair(),
        sdk.datasets().text_embeddings_triplet(),
    ] {
        assert!(shortcut.list().into_iter().all(|d| d.unwrap().id() != dataset.id()), "filtered by task type");
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn tuning_tune_deferred_wait_and_lookups() {
    let sdk = sdk();
    let train = upload_training(&sdk);
    let base = sdk.models().completions("yandexgpt-lite");
    let task = base.tune_deferred(&train).with(|c| c.name("blocking")).send().unwrap();
    let tuned = task.wait().poll_interval(FAST).send().unwrap();
    assert_eq!(tuned.run("What is our refund window?").send().unwrap().text(), "30 days.");
    assert_eq!(task.status().send().unwrap(), TuningStatus::Completed);
    assert_eq!(task.result().send().unwrap().uri(), tuned.uri());
    let task_id = task.task_id().send().unwrap();
    assert!(!task.operation_id().send().unwrap().is_empty());
    assert_eq!(task.info().send().unwrap().status, TuningStatus::Completed);
    let _ = task.metrics_url().send().unwrap();
    let operation =
        sdk.operations().get::<yandex_cloud_ml_sdk::completions::GptModel>(task.operation_id().send().unwrap());
    assert_eq!(operation.result().send().unwrap().run("What is our refund window?").send().unwrap().text(), "30 days.");
    assert_eq!(sdk.tuning().get(&task_id).send().unwrap().result().send().unwrap().uri(), tuned.uri());
    assert_eq!(base.attach_tune_deferred(task.id()).result().send().unwrap().uri(), tuned.uri());
    let listed: Vec<_> = sdk.tuning().list().with(|l| l.status(TuningStatus::Completed)).into_iter().collect();
    assert!(listed.iter().any(|t| t.as_ref().unwrap().task_id == task_id));
    // `tune` waits itself; cancelling a finished task is refused with the reason.
    let again = base.tune(&train).with(|c| c.poll_interval(FAST)).send().unwrap();
    assert_eq!(again.run("What is our refund window?").send().unwrap().text(), "30 days.");
    let e = task.cancel().send().unwrap_err();
    assert!(e.to_string().contains("already completed"), "{e}");
}

#[test]
fn batch_run_wait_results_list_get_and_delete() {
    let sdk = sdk();
    let source = upload_prompts(&sdk, &["one", "two", "three"]);
    let model = sdk.models().completions("yandexgpt");
    let task = model.batch().run_deferred(&source).send().unwrap();
    let progress = Arc::new(Mutex::new(Vec::new()));
    let sink = progress.clone();
    let result =
        task.wait().poll_interval(FAST).on_progress(move |p| sink.lock().unwrap().push(p.done)).send().unwrap();
    assert_eq!(result.status(), DatasetStatus::Ready);
    assert_eq!(task.status().send().unwrap(), BatchStatus::Completed);
    assert_eq!(task.info().send().unwrap().result_dataset_id.as_deref(), Some(result.id()));
    assert_eq!(task.result().send().unwrap().id(), result.id());
    #[cfg(feature = "parquet")]
    {
        let mut answers: Vec<String> = task.results().map(|r| r.unwrap().response.unwrap()).collect();
        answers.sort();
        assert_eq!(answers, ["Echo: one", "Echo: three", "Echo: two"]);
    }
    let found = sdk.batch().get(task.id()).timeout(Duration::from_secs(5)).send().unwrap();
    assert_eq!(found.id(), task.id());
    let info = found.info().send().unwrap();
    assert_eq!(sdk.batch().from_info(&info).status().send().unwrap(), BatchStatus::Completed);
    let listed: Vec<_> = sdk.batch().list().with(|l| l.status(BatchStatus::Completed)).into_iter().collect();
    assert!(listed.iter().any(|t| t.as_ref().unwrap().task_id == task.id()));
    task.delete().send().unwrap();
    assert!(sdk.batch().get(task.id()).send().unwrap_err().is_not_found());
}

#[test]
fn batch_cancel_stops_a_running_task() {
    let emulator = {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config = EmulatorConfig { batch_step_ms: 200, ..Default::default() };
        let handle = runtime.block_on(Emulator::builder().config(config).start("127.0.0.1:0")).unwrap();
        (runtime, handle)
    };
    let sdk = yandex_cloud_ml_sdk::Sdk::builder().emulator(emulator.1.endpoint()).build_blocking().unwrap();
    let prompts: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let source = upload_prompts(&sdk, &refs);
    let task = sdk.models().completions("yandexgpt").batch().run_deferred(source.id()).send().unwrap();
    task.cancel().send().unwrap();
    let e = task.wait().poll_interval(FAST).send().unwrap_err();
    assert_eq!(task.status().send().unwrap(), BatchStatus::Canceled, "{e}");
}

#[test]
fn chat_run_stream_embeddings_and_models() {
    let chat = sdk().chat();
    let model = chat.completions("qwen3-235b-a22b-fp8");
    assert_eq!(model.run("hello").send().unwrap().text(), "Echo: hello");
    let stream = model.run_stream("stream this answer in several deltas please").send().unwrap();
    assert!(!stream.request_id().is_empty());
    let deltas: Vec<_> = stream.collect::<Result<_, _>>().unwrap();
    let text: String = deltas.iter().map(|d: &yandex_cloud_ml_sdk::chat::ChatDelta| d.delta()).collect();
    assert_eq!(text, "Echo: stream this answer in several deltas please");
    let whole = model.run_stream("x").send().unwrap().final_result().unwrap();
    assert_eq!(whole.status(), AlternativeStatus::Final);
    let limited = model.configure(|c| c.max_tokens(2)).unwrap().run("a long answer please").send().unwrap();
    assert_eq!(limited.status(), AlternativeStatus::TruncatedFinal);
    let vector = chat.text_embeddings("text-search-doc").with_dimensions(8).unwrap().run("hello").send().unwrap();
    assert_eq!(vector.len(), 8);
    assert!(chat.models().send().unwrap().iter().any(|m| m.name() == Some("gemma-3-27b-it")));
}
