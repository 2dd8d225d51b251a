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
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reasoning: invalid input: unknown reasoning mode"));
}

#[test]
fn emulator_subcommand_serves_until_killed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ycml"))
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains("EMULATOR"));
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
    let out = Command::new(env!("CARGO_BIN_EXE_ycml"))
        .args([
            "--endpoint",
            "10.255.255.1:1",
            "--insecure",
            "--folder-id",
            "f",
            "--api-key",
            "k",
            "--timeout",
            "0.5",
            "complete",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unreachable endpoint fails");
}
