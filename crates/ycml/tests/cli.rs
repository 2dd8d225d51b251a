//! The `ycml` binary against an in-process emulator.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Output, Stdio},
};

use serde_json::{Value, json};
use yandex_cloud_ml_emulator::{Emulator, EmulatorHandle, OperationPolicy};

fn ycml(emulator: &EmulatorHandle, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ycml"));
    cmd.args(["--emulator", &emulator.endpoint()]).args(args);
    for var in
        ["YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_FOLDER_ID", "YCML_ENDPOINT", "YC_SERVICE_ACCOUNT_KEY_FILE"]
    {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "ycml failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn write_temp(name: &str, content: &Value) -> String {
    let path = std::env::temp_dir().join(format!("ycml-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, content.to_string()).unwrap();
    path.display().to_string()
}

async fn emulator() -> EmulatorHandle {
    Emulator::builder().start("127.0.0.1:0").await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_prompt_system_and_stdin() {
    let e = emulator().await;
    assert_eq!(stdout(&ycml(&e, &["complete", "hello"], None)), "Echo: hello\n");
    assert_eq!(stdout(&ycml(&e, &["complete", "--system", "be brief", "hi"], None)), "Echo: hi\n");
    assert_eq!(stdout(&ycml(&e, &["complete"], Some("from stdin\n"))), "Echo: from stdin\n");
    // Piped text comes before the prompt (`cat notes.txt | ycml complete "Summarize:"`); `-` is stdin.
    assert_eq!(stdout(&ycml(&e, &["complete", "Summarize:"], Some("the notes\n"))), "Echo: the notes\n\nSummarize:\n");
    assert_eq!(stdout(&ycml(&e, &["complete", "-"], Some("dash\n"))), "Echo: dash\n");
    // An answer cut by the token limit says so (on stderr; stdout keeps the text).
    for stream in [false, true] {
        let args: &[&str] = if stream {
            &["complete", "--stream", "--max-tokens", "2", "a b c d"]
        } else {
            &["complete", "--max-tokens", "2", "a b c d"]
        };
        let cut = ycml(&e, args, None);
        assert!(String::from_utf8_lossy(&cut.stderr).contains("the answer was cut at 2 tokens"), "{cut:?}");
    }
    let completions: Vec<Value> =
        e.control().journal().into_iter().filter(|j| j.method.ends_with("/Completion")).map(|j| j.request).collect();
    let request = &completions[1];
    assert_eq!(request["messages"][0], json!({"role": "system", "text": "be brief"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_with_options_messages_file_and_json_output() {
    let e = emulator().await;
    let messages = write_temp("messages.json", &json!([{"role": "system", "text": "s"}, {"text": "from file"}]));
    let out = stdout(&ycml(
        &e,
        &[
            "--output",
            "json",
            "complete",
            "--messages",
            &messages,
            "--temperature",
            "0.2",
            "--max-tokens",
            "100",
            "--reasoning",
            "enabled_hidden",
            "-m",
            "yandexgpt-lite",
            "--model-version",
            "rc",
        ],
        None,
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["alternatives"][0]["text"], "Echo: from file");
    assert!(v["usage"]["reasoning_tokens"].as_u64().unwrap() > 0);
    let request = e.control().journal().pop().unwrap().request;
    assert!(request["modelUri"].as_str().unwrap().ends_with("/yandexgpt-lite/rc"));
    assert_eq!(request["completionOptions"]["maxTokens"], "100");
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_prints_the_whole_answer_once() {
    let e = emulator().await;
    let prompt = "a fairly long prompt so that the answer arrives in several chunks";
    let out = stdout(&ycml(&e, &["complete", "--stream", prompt], None));
    assert_eq!(out, format!("Echo: {prompt}\n"));
    let lines = stdout(&ycml(&e, &["--output", "json", "complete", "--stream", prompt], None));
    let chunks: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(chunks.len() > 2);
    let joined: String = chunks.iter().map(|c| c["deltas"][0].as_str().unwrap()).collect();
    assert_eq!(joined, format!("Echo: {prompt}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn deferred_then_operation_get_wait_and_cancel() {
    let e = Emulator::builder().operations(OperationPolicy::AfterPolls(2)).start("127.0.0.1:0").await.unwrap();
    let id = stdout(&ycml(&e, &["complete", "--deferred", "later"], None)).trim().to_owned();
    assert_eq!(id.len(), 20);
    assert_eq!(stdout(&ycml(&e, &["operation", "get", &id], None)), format!("{id} running\n"));
    assert_eq!(stdout(&ycml(&e, &["operation", "wait", "--poll-interval", "0.01", &id], None)), "Echo: later\n");
    e.control().set_operation_policy(OperationPolicy::Manual);
    let id = stdout(&ycml(&e, &["complete", "--deferred", "never"], None)).trim().to_owned();
    let out = stdout(&ycml(&e, &["--output", "json", "operation", "cancel", &id], None));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("failed"), Some("CANCELLED")));
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_json_schema_and_tokenize() {
    let e = emulator().await;
    let tool = write_temp(
        "tool.json",
        &json!({"name": "sum", "description": "adds", "parameters": {"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}}}}),
    );
    let out = stdout(&ycml(&e, &["complete", "--tool", &tool, "--tool-choice", "required", "add 2 and 3"], None));
    assert_eq!(out, "tool call: sum {\"numbers\":[2,3]}\n");
    let schema = write_temp("schema.json", &json!({"type": "object", "properties": {"n": {"type": "integer"}}}));
    let out = stdout(&ycml(&e, &["complete", "--json-schema", &schema, "n is 7"], None));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!({"n": 7}));
    let out = stdout(&ycml(&e, &["tokenize", "ping"], None));
    assert!(out.starts_with("1\t<s>\t(special)\n") && out.trim_end().ends_with("tokens"), "{out}");
    // A token with a line break is printed escaped: one token per line whatever the text.
    let out = stdout(&ycml(&e, &["tokenize", "two\nlines"], None));
    let lines: Vec<&str> = out.lines().collect();
    let count: usize = lines.last().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert_eq!(lines.len(), count + 1, "{out}");
    // Completion scripts for the shells.
    let script = stdout(&ycml(&e, &["completion", "bash"], None));
    assert!(script.contains("_ycml()") && script.contains("tuning"), "{}", &script[..script.len().min(200)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_keeps_history() {
    let e = emulator().await;
    let out = stdout(&ycml(&e, &["chat", "--system", "sys"], Some("first\nsecond\n/reset\nthird\n/exit\n")));
    assert_eq!(out, "Echo: first\nEcho: second\n(history cleared)\nEcho: third\n");
    let journal = e.control().journal();
    let completions: Vec<&Value> =
        journal.iter().filter(|j| j.method.ends_with("TextGenerationService/Completion")).map(|j| &j.request).collect();
    assert_eq!(completions[1]["messages"].as_array().unwrap().len(), 4, "system, first, answer, second");
    assert_eq!(completions[2]["messages"].as_array().unwrap().len(), 2, "reset keeps only the system message");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_reported_with_a_nonzero_exit() {
    let e = emulator().await;
    let out = ycml(&e, &["complete", "--temperature", "3", "hi"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("temperature must be between 0 and 1"));
    let out = ycml(&e, &["complete", "--reasoning", "maybe", "hi"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ycml: --reasoning: invalid input: unknown reasoning mode `maybe`: use disabled or enabled_hidden\n"
    );
}

#[test]
fn emulator_subcommand_serves_until_killed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ycml"))
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    assert!(banner.starts_with("ycml emulator: a local EMULATOR"), "{banner}");
    let addr = lines.next().unwrap().unwrap().strip_prefix("listening on ").unwrap().to_owned();
    let out =
        Command::new(env!("CARGO_BIN_EXE_ycml")).args(["--emulator", &addr, "complete", "hello"]).output().unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Echo: hello\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_flag_sends_everything_to_one_address_without_discovery() {
    let e = emulator().await;
    let out = Command::new(env!("CARGO_BIN_EXE_ycml"))
        .args(["--endpoint", &e.endpoint(), "--folder-id", "b1gcli", "--api-key", "k", "complete", "direct"])
        .env_remove("YCML_EMULATOR_HOST")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "Echo: direct\n");
    let methods: Vec<String> = e.control().journal().into_iter().map(|j| j.method).collect();
    assert_eq!(methods, ["yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion"]);
    // A closed loopback port: the connection is refused, retried until --timeout, and the error
    // says both.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ycml"))
        .args(["--endpoint", &closed.to_string(), "--folder-id", "f", "--api-key", "k", "--timeout", "0.5"])
        .args(["complete", "x"])
        .env_remove("YCML_EMULATOR_HOST")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("retrying TextGenerationService/Completion (attempt 2 of 5"), "{stderr}");
    assert!(stderr.contains("deadline of 500ms exceeded; the previous attempt failed: transport error"), "{stderr}");
    assert!(stderr.contains("refused") && stderr.contains("; raise it with --timeout SECONDS"), "{stderr}");
}

/// A command line with no connection settings from the environment.
fn bare(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ycml"));
    cmd.args(args);
    for var in [
        "YC_API_KEY",
        "YC_IAM_TOKEN",
        "YC_OAUTH_TOKEN",
        "YC_FOLDER_ID",
        "YCML_ENDPOINT",
        "YCML_EMULATOR_HOST",
        "YC_API_ENDPOINT",
        "YC_SERVICE_ACCOUNT_KEY_FILE",
        "YC_TOKEN",
        "SSL_CERT_FILE",
        "YCML_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn the_recorded_function_call_round_trip_is_reproduced_from_the_cli() {
    use yandex_cloud_ml_emulator::replay::{Cassette, ReplayServer};
    let cassette = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/cassettes/models/test_function_call.gprc.json");
    let server = ReplayServer::start(Cassette::load(cassette).unwrap(), "127.0.0.1:0").await.unwrap();
    let tool = write_temp(
        "something.json",
        &json!({"name": "something",
                "description": "Tool which have to collect all the numbers from user message and do a SOMETHING with it",
                "parameters": {"title": "Numbers", "type": "object",
                               "properties": {"numbers": {"title": "Numbers", "type": "array", "items": {"type": "integer"}}},
                               "required": ["numbers"]}}),
    );
    let question = "do a SOMETHING with all the numbers from: 5, 4, a, 1";
    let endpoint = server.endpoint();
    let base =
        ["--endpoint", &endpoint, "--folder-id", "b1ghsjum2v37c2un8h64", "--api-key", "replay", "--output", "json"];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["complete", "-m", "yandexgpt", "--model-version", "rc", "--tool", &tool]);
        args.extend(extra);
        bare(&args).output().unwrap()
    };
    let first: Value = serde_json::from_str(&stdout(&run(&[question]))).unwrap();
    assert_eq!(first["alternatives"][0]["status"], "TOOL_CALLS");
    // The next turn from a file: the question, the answer as printed, and the tool's result.
    let history = write_temp(
        "history.json",
        &json!([{"text": question}, first, {"tool_results": [{"name": "something", "content": "+20.0"}]}]),
    );
    let second: Value = serde_json::from_str(&stdout(&run(&["--messages", &history]))).unwrap();
    assert_eq!(
        second["alternatives"][0]["text"],
        "The result of doing SOMETHING with the numbers 5, 4, and 1 is +20.0."
    );
    server.verify_requests().unwrap();
    assert_eq!(server.unused(), 1, "everything but discovery was used");
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_tool_calls_can_be_sent_both_ways() {
    let e = emulator().await;
    let tool = write_temp("sum.json", &json!({"name": "sum", "parameters": {"type": "object"}}));
    for value in ["true", "false"] {
        stdout(&ycml(&e, &["complete", "--tool", &tool, "--parallel-tool-calls", value, "use sum"], None));
        let request = e.control().journal().pop().unwrap().request;
        assert_eq!(request["parallelToolCalls"], value == "true", "{request}");
    }
}

#[test]
fn errors_speak_of_flags_and_point_offline_users_to_the_emulator() {
    let out = bare(&["complete", "hi"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--folder-id") && err.contains("YC_FOLDER_ID") && err.contains("--emulator"), "{err}");
    assert!(!err.contains("SdkBuilder"), "{err}");
}

#[test]
fn connection_options_have_their_own_help_section() {
    let out = bare(&["complete", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let section = help.find("Connection and credentials:").expect("a connection section");
    for flag in ["--folder-id", "--api-key", "--emulator", "--ca-cert"] {
        assert!(help.find(flag).is_some_and(|at| at > section), "{flag} under the connection heading:\n{help}");
    }
    assert!(help.find("--temperature").is_some_and(|at| at < section), "{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_show_as_one_status_line_and_tls_needs_the_ca() {
    use yandex_cloud_ml_emulator::{FaultAction, FaultRule, TlsIdentity};
    let identity = TlsIdentity::localhost().unwrap();
    let e = Emulator::builder()
        .tls(identity.clone())
        .fault(
            FaultRule::new("TextGenerationService", FaultAction::Fail { code: 14, message: "busy".into() })
                .first_calls(1),
        )
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let ca = std::env::temp_dir().join(format!("ycml-cli-{}-ca.pem", std::process::id()));
    std::fs::write(&ca, &identity.certificate_pem).unwrap();
    let endpoint = format!("localhost:{}", e.address().port());
    let args = ["--api-endpoint", &endpoint, "--tls", "--folder-id", "f", "--api-key", "k"];
    // Without the CA: refused at once, the message names the flag.
    let out = bare(&args).args(["complete", "hi"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--ca-cert") && !err.contains("SdkBuilder"), "{err}");
    // With it: the first attempt hits UNAVAILABLE, one status line, then the answer.
    let out = bare(&args).args(["--ca-cert", ca.to_str().unwrap(), "complete", "hi"]).output().unwrap();
    assert_eq!(stdout(&out), "Echo: hi\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("retrying TextGenerationService/Completion (attempt 2 of 5, next in"), "{err}");
    assert!(!err.contains("WARN"), "{err}");
    // SSL_CERT_FILE works as well.
    let out = bare(&args).env("SSL_CERT_FILE", &ca).args(["complete", "again"]).output().unwrap();
    assert_eq!(stdout(&out), "Echo: again\n");
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn datasets_from_upload_to_read_and_delete() {
    let e = emulator().await;
    let rows = [
        json!({"request": [{"role": "user", "text": "capital of France?"}], "response": "Paris."}),
        json!({"request": [{"role": "user", "text": "largest planet?"}], "response": "Jupiter."}),
    ];
    let file = std::env::temp_dir().join(format!("ycml-cli-{}-train.jsonl", std::process::id()));
    std::fs::write(&file, rows.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).unwrap();
    let file = file.display().to_string();
    let up = ycml(
        &e,
        &[
            "--output",
            "json",
            "datasets",
            "upload",
            &file,
            "--task-type",
            "completions",
            "--name",
            "cli",
            "--label",
            "a=b",
            "--wait",
            "--poll-interval",
            "0.01",
        ],
        None,
    );
    let dataset = &json_lines(&up)[0];
    assert_eq!((dataset["status"].as_str(), dataset["rows"].as_u64()), (Some("READY"), Some(2)), "{dataset}");
    let id = dataset["id"].as_str().unwrap();
    assert_eq!(dataset["labels"]["a"], "b");
    // JSON times are RFC 3339 text.
    let created = dataset["created_at"].as_str().unwrap();
    assert!(created.len() >= 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T', "{created}");

    let listed = stdout(&ycml(&e, &["datasets", "list", "--status", "ready"], None));
    assert!(listed.starts_with(&format!("{id}\tREADY\tTextToTextGeneration\t2 rows")), "{listed}");
    // A second dataset (upload without waiting, then `datasets wait`), and a listing cut at one.
    let started = stdout(&ycml(&e, &["datasets", "upload", &file, "--task-type", "completions"], None));
    let second = started.lines().find_map(|l| l.strip_prefix("dataset_id ")).unwrap().to_owned();
    let waited = stdout(&ycml(&e, &["datasets", "wait", &second, "--poll-interval", "10ms"], None));
    assert!(waited.starts_with(&format!("{second}\tREADY")), "{waited}");
    let all = stdout(&ycml(&e, &["datasets", "list"], None));
    let one = stdout(&ycml(&e, &["datasets", "list", "--limit", "1"], None));
    assert!(all.lines().count() > 1 && one.lines().count() == 1, "{all}\n{one}");
    assert!(stdout(&ycml(&e, &["datasets", "get", id], None)).contains("\tcli\n"));
    let read = json_lines(&ycml(&e, &["datasets", "read", id, "--limit", "1"], None));
    assert_eq!(read, vec![rows[0].clone()]);
    let dir = std::env::temp_dir().join(format!("ycml-cli-{}-download", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = stdout(&ycml(&e, &["datasets", "download", id, &dir.display().to_string(), "--exist-ok"], None));
    assert_eq!(files.trim(), dir.join("main").display().to_string());
    assert!(stdout(&ycml(&e, &["datasets", "delete", id], None)).contains("deleted"));
    let gone = ycml(&e, &["datasets", "get", id], None);
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NOT_FOUND"));

    // Bad input is refused with the reason.
    let bad = ycml(&e, &["datasets", "upload", "/no/such/file.jsonl", "--task-type", "completions"], None);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read dataset file"), "{bad:?}");
    let bad = ycml(&e, &["datasets", "upload", &file, "--task-type", "completions", "--chunk-size", "1"], None);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("outside 5 MiB"), "{bad:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn tune_from_a_file_then_complete_with_the_tuned_model() {
    let e = emulator().await;
    let row = json!({"request": [{"role": "user", "text": "what is the secret word"}], "response": "Swordfish."});
    let file = std::env::temp_dir().join(format!("ycml-cli-{}-tune.jsonl", std::process::id()));
    std::fs::write(&file, row.to_string()).unwrap();
    let file = file.display().to_string();
    let tuned = ycml(
        &e,
        &[
            "--output",
            "json",
            "tune",
            "--train",
            &file,
            "--lora-rank",
            "8",
            "--scheduler",
            "cosine",
            "--warmup-ratio",
            "0.1",
            "--name",
            "cli-tune",
            "--wait",
            "--poll-interval",
            "0.01",
        ],
        None,
    );
    let out = &json_lines(&tuned)[0];
    let uri = out["model_uri"].as_str().unwrap();
    let task = out["task_id"].as_str().unwrap();
    // The task id came first, with the commands that come back to it.
    let said = String::from_utf8_lossy(&tuned.stderr);
    assert!(
        said.contains(&format!("tuning task {task} started; wait for it again with `ycml tuning wait {task}`")),
        "{said}"
    );
    // Waiting again, by task or by operation (the same id), gives the same model.
    assert_eq!(stdout(&ycml(&e, &["tuning", "wait", task, "--poll-interval", "0.01"], None)), format!("{uri}\n"));
    assert_eq!(stdout(&ycml(&e, &["operation", "wait", task, "--poll-interval", "0.01"], None)), format!("{uri}\n"));
    assert_eq!(stdout(&ycml(&e, &["complete", "--model", uri, "What is the secret word?"], None)), "Swordfish.\n");
    let request = e.control().journal().into_iter().find(|j| j.method.ends_with("TuningService/Tune")).unwrap().request;
    let params = &request["textToTextCompletion"];
    assert_eq!((params["lora"]["rank"].as_str(), params["scheduler"]["warmupRatio"].as_f64()), (Some("8"), Some(0.1)));
    assert!(params["scheduler"]["cosine"].is_object(), "{params}");

    let listed = stdout(&ycml(&e, &["tuning", "list", "--status", "completed"], None));
    assert!(listed.starts_with(&format!("{task}\tCOMPLETED\t{uri}\tcli-tune")), "{listed}");
    let got = json_lines(&ycml(&e, &["--output", "json", "tuning", "get", task], None));
    assert_eq!(got[0]["status"], "COMPLETED");
    let cancel = ycml(&e, &["tuning", "cancel", task], None);
    assert!(
        !cancel.status.success() && String::from_utf8_lossy(&cancel.stderr).contains("already completed"),
        "{cancel:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_from_a_file_of_prompts_to_answers() {
    let e = emulator().await;
    let rows: Vec<String> =
        (0..3).map(|i| json!({"request": [{"role": "user", "text": format!("prompt {i}")}]}).to_string()).collect();
    let file = std::env::temp_dir().join(format!("ycml-cli-{}-prompts.jsonl", std::process::id()));
    std::fs::write(&file, rows.join("\n")).unwrap();
    let file = file.display().to_string();
    let run = ycml(
        &e,
        &[
            "--output",
            "json",
            "batch",
            "run",
            "--dataset",
            &file,
            "--model",
            "yandexgpt-lite",
            "--wait",
            "--poll-interval",
            "0.01",
        ],
        None,
    );
    let out = &json_lines(&run)[0];
    let task = out["task_id"].as_str().unwrap();
    let result = out["result_dataset_id"].as_str().unwrap();
    assert!(result.starts_with("fds"), "{out}");
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains(&format!("batch task {task} started; wait for it again with `ycml batch wait {task}`")),
        "{said}"
    );
    // Waiting again prints both ids, labelled; so does the task's operation.
    let labelled = format!("task_id {task}\nresult_dataset_id {result}\n");
    assert_eq!(stdout(&ycml(&e, &["batch", "wait", task, "--poll-interval", "0.01"], None)), labelled);
    let got = json_lines(&ycml(&e, &["--output", "json", "batch", "get", task], None));
    let operation = got[0]["operation_id"].as_str().unwrap();
    assert_eq!(stdout(&ycml(&e, &["operation", "wait", operation, "--poll-interval", "0.01"], None)), labelled);
    // So does a dataset upload's operation, started without waiting.
    let started = stdout(&ycml(&e, &["datasets", "upload", &file, "--task-type", "TextToTextGenerationRequest"], None));
    let label = |name: &str| started.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_owned();
    let (op, dataset) = (label("operation_id "), label("dataset_id "));
    let validated = stdout(&ycml(&e, &["operation", "wait", &op, "--poll-interval", "0.01"], None));
    assert_eq!(validated, format!("dataset {dataset} READY (3 rows)\n"));
    let answers = json_lines(&ycml(&e, &["batch", "results", task], None));
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[2]["response"], "Echo: prompt 2");
    assert_eq!(answers[2]["request"][0]["text"], "prompt 2");
    let listed = stdout(&ycml(&e, &["batch", "list", "--status", "completed"], None));
    assert!(listed.starts_with(&format!("{task}\tCOMPLETED\tgpt://")), "{listed}");
    let got = json_lines(&ycml(&e, &["--output", "json", "batch", "get", task], None));
    assert_eq!(got[0]["status"], "COMPLETED");
    let cancel = ycml(&e, &["batch", "cancel", task], None);
    assert!(!cancel.status.success() && String::from_utf8_lossy(&cancel.stderr).contains("COMPLETED"), "{cancel:?}");
    assert!(stdout(&ycml(&e, &["batch", "delete", task], None)).contains("deleted"));
    let missing = ycml(&e, &["batch", "run", "--dataset", "fdsnosuchdataset0000"], None);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_wait_says_what_still_runs_and_how_to_resume() {
    // Tuning steps of a second: the task is still running when Ctrl-C comes.
    let config = yandex_cloud_ml_emulator::EmulatorConfig { tuning_step_ms: 1_000, ..Default::default() };
    let e = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let row = json!({"request": [{"role": "user", "text": "q"}], "response": "a"});
    let file = std::env::temp_dir().join(format!("ycml-cli-{}-interrupt.jsonl", std::process::id()));
    std::fs::write(&file, row.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ycml"))
        .args(["--emulator", &e.endpoint(), "tune", "--train", &file.display().to_string(), "--wait"])
        .env_remove("YC_API_KEY")
        .env_remove("YC_FOLDER_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("started; wait for it again") {
        assert!(stderr.read_line(&mut said).unwrap() > 0, "ycml ended before announcing the task: {said}");
    }
    let task = said.split("tuning task ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap().to_owned();
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{said}{rest}");
    assert!(
        rest.contains(&format!("interrupted: tuning task {task} is still running on the server"))
            && rest.contains(&format!("`ycml tuning wait {task}`"))
            && rest.contains(&format!("`ycml tuning cancel {task}`")),
        "{rest}"
    );
    // It did keep running, and can be waited for again.
    let resumed = ycml(&e, &["tuning", "wait", &task, "--poll-interval", "0.05"], None);
    assert!(stdout(&resumed).starts_with("gpt://"), "{resumed:?}");
}
