//! The `ycml` binary against an in-process emulator.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Output, Stdio},
};

use serde_json::{Value, json};
use yandex_cloud_ml_emulator::{Emulator, EmulatorHandle, OperationPolicy};

/// A fresh home directory: no yc profile, no chat history, unless a test writes them.
fn temp_home(name: &str) -> std::path::PathBuf {
    let home = std::env::temp_dir().join(format!("ycml-cli-{}-home-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    home
}

fn ycml(emulator: &EmulatorHandle, args: &[&str], stdin: Option<&str>) -> Output {
    ycml_at(emulator, &std::env::temp_dir().join("ycml-cli-no-home"), args, stdin)
}

/// `ycml --emulator … ARGS` with HOME at `home`.
fn ycml_at(emulator: &EmulatorHandle, home: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ycml"));
    cmd.env("HOME", home).env_remove("XDG_STATE_HOME");
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
    let started = stdout(&ycml(&e, &["complete", "--deferred", "later"], None));
    let id = started.strip_prefix("operation_id  ").unwrap().trim().to_owned();
    assert_eq!(id.len(), 20);
    let status = stdout(&ycml(&e, &["operation", "get", &id], None));
    assert!(status.starts_with(&format!("id           {id}\nstatus       running\n")), "{status}");
    assert_eq!(stdout(&ycml(&e, &["operation", "wait", "--poll-interval", "0.01", &id], None)), "Echo: later\n");
    e.control().set_operation_policy(OperationPolicy::Manual);
    let id = json_lines(&ycml(&e, &["--output", "json", "complete", "--deferred", "never"], None))[0]["operation_id"]
        .as_str()
        .unwrap()
        .to_owned();
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
    assert!(out.starts_with("ID     TEXT    SPECIAL\n1      <s>     true\n"), "{out}");
    // A token with a line break is printed escaped: one token per line whatever the text.
    let tokenized = ycml(&e, &["tokenize", "two\nlines"], None);
    let out = stdout(&tokenized);
    let count: usize = String::from_utf8_lossy(&tokenized.stderr).split(' ').next().unwrap().parse().unwrap();
    assert_eq!(out.lines().count(), count + 1, "a header and a line per token: {out}");
    // Tokenizing takes only the options it uses.
    let refused = ycml(&e, &["tokenize", "--temperature", "0.5", "hi"], None);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    // Completion scripts for the shells.
    let script = stdout(&ycml(&e, &["completion", "bash"], None));
    assert!(script.contains("_ycml()") && script.contains("tuning"), "{}", &script[..script.len().min(200)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_keeps_history() {
    let e = emulator().await;
    let home = temp_home("chat");
    let chat =
        ycml_at(&e, &home, &["chat", "--system", "sys"], Some("first\nsecond\n/reset\n/nonsense\nthird\n/exit\n"));
    assert_eq!(stdout(&chat), "Echo: first\nEcho: second\nEcho: third\n");
    let said = String::from_utf8_lossy(&chat.stderr);
    assert!(said.contains("(conversation cleared)"), "{said}");
    assert!(said.contains("unknown command /nonsense (not sent); /help lists the commands"), "{said}");
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
    // Said with the flags, checked before anything is sent.
    let out = ycml(&e, &["complete", "--tool-choice", "required", "hi"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ycml: --tool-choice required: there is no tool\nhint: give one with --tool FILE\n"
    );
    let out = ycml(&e, &["complete", "--tool-choice", "weather", "hi"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tool-choice weather: no --tool is named weather"));
    let out = ycml(&e, &["complete", "--max-tokens", "0", "hi"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
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
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_mistakes_are_fast_and_say_what_to_check() {
    // A closed loopback port: no emulator there. Said at once, with the address, not retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    for (flag, var) in [("--emulator", "YCML_EMULATOR_HOST"), ("--endpoint", "YCML_ENDPOINT")] {
        let started = std::time::Instant::now();
        let out = bare(&[flag, &closed, "--folder-id", "f", "complete", "x"]).output().unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "ycml: nothing is listening on {closed} ({flag} or {var})\nhint: is the emulator running? Start one with \
                 `ycml emulator --listen {closed}`\n"
            )
        );
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }
    // The emulator's control port given for its API port: named as not gRPC, not retried.
    let mut control = bare(&["emulator", "--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> =
        BufReader::new(control.stdout.take().unwrap()).lines().take(3).map(Result::unwrap).collect();
    let api = lines.iter().find_map(|l| l.strip_prefix("listening on ")).unwrap().to_owned();
    let control_addr = lines
        .iter()
        .find_map(|l| l.split("http://").nth(1))
        .map(|rest| rest.split(['/', ' ']).next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no control address in {lines:?}"));
    let out = bare(&["--emulator", &control_addr, "complete", "x"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{control_addr} answered HTTP 403 Forbidden with content type application/json, not gRPC"
        )) && !stderr.contains("compression flag")
            && !stderr.contains("attempts"),
        "{stderr}"
    );
    // A second emulator on the same address: the address is named.
    let taken = bare(&["emulator", "--listen", &api]).output().unwrap();
    control.kill().unwrap();
    let _ = control.wait();
    let stderr = String::from_utf8_lossy(&taken.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {api} for the API: ")) && stderr.contains("another emulator?"),
        "{stderr}"
    );
}

/// A command line with no connection settings from the environment.
fn bare(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ycml"));
    cmd.args(args).env("HOME", std::env::temp_dir().join("ycml-cli-no-home")).env_remove("XDG_STATE_HOME");
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
        "YCML_PROFILE",
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
fn connection_options_are_listed_once_in_the_top_help() {
    let out = bare(&["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let section = help.find("Connection and credentials:").expect("a connection section");
    for flag in ["--folder-id", "--api-key", "--emulator", "--ca-cert", "--profile", "--output", "--verbose"] {
        assert!(help.find(flag).is_some_and(|at| at > section), "{flag} under the connection heading:\n{help}");
    }
    assert!(help.contains("the folder comes from none: pass --folder-id"), "{help}");
    // A subcommand's help shows its own options, and says where the others are.
    let out = bare(&["complete", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--temperature") && !help.contains("--folder-id") && !help.contains("--api-key"), "{help}");
    assert!(help.trim_end().ends_with("Connection, output and logging options: see `ycml --help`."), "{help}");
    // A usage error does not present options filled from the environment as required.
    let out = bare(&["tune"]).env("YC_FOLDER_ID", "b1genv").env("SSL_CERT_FILE", "/dev/null").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("Usage: ycml tune --train <FILE|ID>\n") && !err.contains("--folder-id"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_yc_profile_supplies_folder_and_credentials() {
    let e = emulator().await;
    let home = temp_home("yc");
    let config = home.join(".config/yandex-cloud");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.yaml"),
        "current: work\nprofiles:\n  work:\n    token: y0_profiletoken\n    folder-id: b1gprofilefolder\n  \
         other:\n    folder-id: b1gotherfolder\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = bare(&["--endpoint", &e.endpoint()]);
        cmd.args(args).env("HOME", &home).output().unwrap()
    };
    assert_eq!(stdout(&run(&["complete", "hi"])), "Echo: hi\n");
    let journal = e.control().journal();
    let completion = journal.iter().find(|j| j.method.ends_with("/Completion")).unwrap();
    assert!(completion.request["modelUri"].as_str().unwrap().starts_with("gpt://b1gprofilefolder/"));
    // The OAuth token of the profile was exchanged for an IAM token.
    assert!(journal.iter().any(|j| j.method.ends_with("IamTokenService/Create")), "{journal:?}");
    // Another profile by name; flags win over it.
    stdout(&run(&["--profile", "other", "--api-key", "k", "complete", "hi"]));
    let last = e.control().journal().pop().unwrap();
    assert!(last.request["modelUri"].as_str().unwrap().starts_with("gpt://b1gotherfolder/"));
    stdout(&run(&["--folder-id", "b1gflag", "complete", "hi"]));
    assert!(e.control().journal().pop().unwrap().request["modelUri"].as_str().unwrap().starts_with("gpt://b1gflag/"));
    // A federated profile gets its tokens from `yc iam create-token --profile NAME`.
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = home.join("yc-args");
    let yc = bin.join("yc");
    std::fs::write(&yc, format!("#!/bin/sh\necho \"$@\" > {}\necho t1.fromyc\n", asked.display())).unwrap();
    std::fs::set_permissions(&yc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        config.join("config.yaml"),
        "current: fed\nprofiles:\n  fed:\n    federation-id: bpfexample\n    folder-id: b1gfedfolder\n",
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let fed =
        bare(&["--endpoint", &e.endpoint(), "complete", "hi"]).env("HOME", &home).env("PATH", path).output().unwrap();
    assert_eq!(stdout(&fed), "Echo: hi\n");
    assert_eq!(std::fs::read_to_string(&asked).unwrap().trim(), "iam create-token --no-user-output --profile fed");
    assert!(
        e.control().journal().pop().unwrap().request["modelUri"].as_str().unwrap().starts_with("gpt://b1gfedfolder/")
    );
    // A broken yc configuration does not stop a command that has what it needs.
    std::fs::write(config.join("config.yaml"), "current: [unclosed\n").unwrap();
    let given = run(&["--folder-id", "b1gflag", "--api-key", "k", "complete", "hi"]);
    assert_eq!(stdout(&given), "Echo: hi\n");
    let warned = run(&["complete", "hi"]);
    let err = String::from_utf8_lossy(&warned.stderr);
    assert!(
        err.contains("the yc CLI's profile is not used: the yc configuration") && err.contains("no folder"),
        "{err}"
    );
    std::fs::write(
        config.join("config.yaml"),
        "current: work\nprofiles:\n  work:\n    token: y0_profiletoken\n    folder-id: b1gprofilefolder\n  \
         other:\n    folder-id: b1gotherfolder\n",
    )
    .unwrap();
    let missing = run(&["--profile", "nope", "complete", "hi"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("has no profile `nope`; its profiles: work, other"), "{err}");
    // The top help says which source won.
    let help = bare(&["--help"]).env("HOME", &home).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains(
            "the folder comes from yc profile `work` (b1gprofilefolder), the credentials from yc profile \
                       `work` (OAuth token)"
        ),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_shows_calls_and_timings_and_models_are_listed() {
    let e = emulator().await;
    let out = ycml(&e, &["-v", "complete", "hi"], None);
    assert_eq!(stdout(&out), "Echo: hi\n");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("TextGenerationService/Completion") && said.contains("time.busy"), "{said}");
    assert!(!said.contains("request payload") && !said.contains('\x1b'), "no payloads, no colours in a pipe: {said}");
    let payloads = ycml(&e, &["-vv", "complete", "hi"], None);
    let said = String::from_utf8_lossy(&payloads.stderr);
    assert!(said.contains("request payload") && said.contains("response payload"), "{said}");
    let quiet = ycml(&e, &["complete", "hi"], None);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    let models = stdout(&ycml(&e, &["models"], None));
    assert!(models.starts_with("NAME ") && models.contains("\nyandexgpt-lite "), "{models}");
    assert!(models.contains("text-search-doc ") && models.contains(" embeddings "), "{models}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_prints_tool_calls_and_answers_them() {
    let e = emulator().await;
    let tool = write_temp(
        "chat-sum.json",
        &json!({"name": "sum", "parameters": {"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}}}}),
    );
    let args = ["chat", "--tool", &tool, "--tool-choice", "required"];
    let out = stdout(&ycml(&e, &args, Some("add 2 and 3\n/result sum 5\n")));
    assert!(out.starts_with("tool call: sum {\"numbers\":[2,3]}\n"), "{out}");
    let last = e.control().journal().pop().unwrap().request;
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(messages[2]["toolResultList"]["toolResults"][0]["functionResult"]["content"], "5", "{last}");
    // With --output json, each answer is a whole result document.
    let out = stdout(&ycml(&e, &[&["--output", "json"], &args[..]].concat(), Some("add 2 and 3\n")));
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["alternatives"][0]["status"], "TOOL_CALLS", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_saves_loads_and_continues_conversations() {
    let e = emulator().await;
    let home = temp_home("continue");
    let saved = home.join("saved.json");
    let script = format!("one\n/save {}\ntwo\n", saved.display());
    stdout(&ycml_at(&e, &home, &["chat"], Some(&script)));
    let file: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(file, vec![json!({"role": "user", "text": "one"}), json!({"role": "assistant", "text": "Echo: one"})]);
    // --continue goes on from the whole last conversation (four messages).
    stdout(&ycml_at(&e, &home, &["chat", "--continue"], Some("three\n")));
    let sent = e.control().journal().pop().unwrap().request;
    assert_eq!(sent["messages"].as_array().unwrap().len(), 5, "{sent}");
    // --load (and /load) start from a saved file.
    stdout(&ycml_at(&e, &home, &["chat", "--load", saved.to_str().unwrap()], Some("again\n")));
    let sent = e.control().journal().pop().unwrap().request;
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3, "{sent}");
    let none = ycml_at(&e, &temp_home("nothing-saved"), &["chat", "--continue"], Some(""));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--continue: no conversation saved yet"), "{none:?}");
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

    // A table with a header; task types in the CLI's names.
    let listed = stdout(&ycml(&e, &["datasets", "list", "--status", "ready"], None));
    let header = "ID                    STATUS  TASK TYPE    ROWS  CREATED AT";
    assert!(listed.starts_with(header), "{listed}");
    assert!(
        listed.lines().nth(1).unwrap().starts_with(&format!("{id}  READY   completions  2     {created}  cli")),
        "{listed}"
    );
    // A second dataset (upload without waiting, then `datasets wait`), and a listing cut at one.
    let started = stdout(&ycml(&e, &["datasets", "upload", &file, "--task-type", "completions"], None));
    let second = started.lines().find_map(|l| l.strip_prefix("dataset_id")).unwrap().trim().to_owned();
    let waited = stdout(&ycml(&e, &["datasets", "wait", &second, "--poll-interval", "10ms"], None));
    assert!(waited.starts_with(&format!("id                 {second}\nname               ")), "{waited}");
    assert!(waited.contains("\nstatus             READY\n"), "{waited}");
    let all = stdout(&ycml(&e, &["datasets", "list"], None));
    let one = stdout(&ycml(&e, &["datasets", "list", "--limit", "1"], None));
    assert!(all.lines().count() == 3 && one.lines().count() == 2, "{all}\n{one}");
    // In a pipe, JSON is one object per line.
    let lines = json_lines(&ycml(&e, &["--output", "json", "datasets", "list"], None));
    assert_eq!(lines.len(), 2);
    let yaml = stdout(&ycml(&e, &["--output", "yaml", "datasets", "get", id], None));
    assert!(yaml.starts_with("---\n") && yaml.contains(&format!("id: {id}\n")), "{yaml}");
    // Renamed and relabelled.
    let updated = stdout(&ycml(&e, &["datasets", "update", id, "--name", "renamed", "--label", "c=d"], None));
    assert!(
        updated.contains("\nname               renamed\n") && updated.contains("labels             c=d\n"),
        "{updated}"
    );
    let nothing = ycml(&e, &["datasets", "update", id], None);
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing to change"), "{nothing:?}");
    assert!(stdout(&ycml(&e, &["datasets", "get", id], None)).contains("renamed"));
    let read = json_lines(&ycml(&e, &["datasets", "read", id, "--limit", "1"], None));
    assert_eq!(read, vec![rows[0].clone()]);
    let dir = std::env::temp_dir().join(format!("ycml-cli-{}-download", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = stdout(&ycml(&e, &["datasets", "download", id, &dir.display().to_string(), "--exist-ok"], None));
    assert_eq!(files.trim(), format!("file  {}", dir.join("main").display()));
    // Again without --exist-ok: the hint names the flag.
    let again = ycml(&e, &["datasets", "download", id, &dir.display().to_string()], None);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("\nhint: remove ") && said.ends_with(" or pass --exist-ok\n"), "{said}");
    assert!(stdout(&ycml(&e, &["datasets", "delete", id], None)).contains("deleted"));
    let gone = ycml(&e, &["datasets", "get", id], None);
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NOT_FOUND"));

    // Bad input is refused with the reason.
    let bad = ycml(&e, &["datasets", "upload", "/no/such/file.jsonl", "--task-type", "completions"], None);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read dataset file"), "{bad:?}");
    let bad = ycml(&e, &["datasets", "upload", &file, "--task-type", "completions", "--chunk-size", "1"], None);
    // In the unit it was given in.
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'--chunk-size <MIB>': 1 is not in 5..=5120"), "{bad:?}");
    // Rows that fail validation: the dataset is deleted, or kept with --keep-invalid; both said.
    let invalid = std::env::temp_dir().join(format!("ycml-cli-{}-invalid.jsonl", std::process::id()));
    std::fs::write(&invalid, "{\"not\": \"a row\"}\n").unwrap();
    let invalid = invalid.display().to_string();
    let upload = ["datasets", "upload", &invalid, "--task-type", "completions", "--wait", "--poll-interval", "10ms"];
    let failed = ycml(&e, &upload, None);
    let said = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1));
    assert!(said.contains("failed validation") && said.contains("was deleted\nhint: fix the rows"), "{said}");
    let kept = ycml(&e, &[&upload[..], &["--keep-invalid"]].concat(), None);
    let said = String::from_utf8_lossy(&kept.stderr);
    let id = said.split("the dataset ").nth(1).unwrap().split(' ').next().unwrap();
    assert!(said.contains("was kept, with status invalid (--keep-invalid)"), "{said}");
    assert!(stdout(&ycml(&e, &["datasets", "get", id], None)).contains("INVALID"));
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
    let labelled = format!("task_id    {task}\nmodel_uri  {uri}\n");
    assert_eq!(stdout(&ycml(&e, &["tuning", "wait", task, "--poll-interval", "0.01"], None)), labelled);
    assert_eq!(
        stdout(&ycml(&e, &["operation", "wait", task, "--poll-interval", "0.01"], None)),
        format!("model_uri  {uri}\n")
    );
    assert_eq!(stdout(&ycml(&e, &["complete", "--model", uri, "What is the secret word?"], None)), "Swordfish.\n");
    let request = e.control().journal().into_iter().find(|j| j.method.ends_with("TuningService/Tune")).unwrap().request;
    let params = &request["textToTextCompletion"];
    assert_eq!((params["lora"]["rank"].as_str(), params["scheduler"]["warmupRatio"].as_f64()), (Some("8"), Some(0.1)));
    assert!(params["scheduler"]["cosine"].is_object(), "{params}");

    let listed = stdout(&ycml(&e, &["tuning", "list", "--status", "completed"], None));
    let row = listed.lines().nth(1).unwrap();
    assert!(listed.starts_with("TASK ID               STATUS     NAME      CREATED AT"), "{listed}");
    assert!(row.starts_with(&format!("{task}  COMPLETED  cli-tune  ")) && row.ends_with(uri), "{listed}");
    // The same file again is not uploaded again: its earlier dataset is used.
    let again = ycml(&e, &["tune", "--train", &file, "--name", "again"], None);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains(&format!("{file} was uploaded before, as dataset ")) && said.contains(": using it"),
        "{said}"
    );
    assert_eq!(stdout(&again).lines().count(), 1);
    let uploads = e.control().journal().into_iter().filter(|j| j.method.ends_with("DatasetService/Create")).count();
    assert_eq!(uploads, 1);
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
    let labelled = format!("task_id            {task}\nresult_dataset_id  {result}\n");
    assert_eq!(stdout(&ycml(&e, &["batch", "wait", task, "--poll-interval", "0.01"], None)), labelled);
    let got = json_lines(&ycml(&e, &["--output", "json", "batch", "get", task], None));
    let operation = got[0]["operation_id"].as_str().unwrap();
    assert_eq!(stdout(&ycml(&e, &["operation", "wait", operation, "--poll-interval", "0.01"], None)), labelled);
    // So does a dataset upload's operation, started without waiting.
    let started = stdout(&ycml(&e, &["datasets", "upload", &file, "--task-type", "TextToTextGenerationRequest"], None));
    let label = |name: &str| started.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_owned();
    let (op, dataset) = (label("operation_id "), label("dataset_id "));
    let validated = stdout(&ycml(&e, &["operation", "wait", &op, "--poll-interval", "0.01"], None));
    assert!(validated.starts_with(&format!("id                 {dataset}\n")), "{validated}");
    assert!(validated.contains("\ntask_type          batch-requests\nrows               3\n"), "{validated}");
    let answers = json_lines(&ycml(&e, &["batch", "results", task], None));
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[2]["response"], "Echo: prompt 2");
    assert_eq!(answers[2]["request"][0]["text"], "prompt 2");
    let listed = stdout(&ycml(&e, &["batch", "list", "--status", "completed"], None));
    assert!(listed.lines().nth(1).unwrap().starts_with(&format!("{task}  COMPLETED  gpt://")), "{listed}");
    let got = json_lines(&ycml(&e, &["--output", "json", "batch", "get", task], None));
    assert_eq!(got[0]["status"], "COMPLETED");
    let cancel = ycml(&e, &["batch", "cancel", task], None);
    assert!(!cancel.status.success() && String::from_utf8_lossy(&cancel.stderr).contains("COMPLETED"), "{cancel:?}");
    assert!(stdout(&ycml(&e, &["batch", "delete", task], None)).contains("deleted"));
    // A dataset of the wrong task type is named in the CLI's terms.
    let wrong = ycml(&e, &["batch", "run", "--dataset", result], None);
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains(&format!("dataset {result} holds rows for completions, not batch-requests")), "{said}");
    assert!(
        said.contains("hint: upload the rows with `ycml datasets upload FILE --task-type batch-requests`"),
        "{said}"
    );
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
    while !said.contains("tuning task") || !said.ends_with('\n') {
        assert!(stderr.read_line(&mut said).unwrap() > 0, "ycml ended before announcing the task: {said}");
    }
    // The upload's validation was announced first, with its own way back.
    assert!(said.contains("started; wait for it again with `ycml datasets wait "), "{said}");
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
    assert!(stdout(&resumed).contains("model_uri  gpt://"), "{resumed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn embed_prints_vectors_as_json_lines() {
    let e = emulator().await;
    let one = json_lines(&ycml(&e, &["embed", "hello world"], None));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["embedding"].as_array().unwrap().len(), 256);
    assert!(one[0]["num_tokens"].as_u64().unwrap() > 0 && one[0]["model_version"].is_string());
    let small = json_lines(&ycml(&e, &["embed", "--model", "query", "--dim", "8", "hello world"], None));
    assert_eq!(small[0]["embedding"].as_array().unwrap().len(), 8);
    let request = e.control().journal().pop().unwrap().request;
    assert!(request["modelUri"].as_str().unwrap().ends_with("/text-search-query/latest"), "{request}");
    // A file: every non-blank line, labelled with its number, in order.
    let file = std::env::temp_dir().join(format!("ycml-cli-{}-embed.txt", std::process::id()));
    std::fs::write(&file, "first line\n\nsecond line\nthird line\n").unwrap();
    let out = ycml(&e, &["embed", "--file", file.to_str().unwrap(), "--concurrency", "2"], None);
    let lines = json_lines(&out);
    assert_eq!(lines.iter().map(|l| l["line"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(lines[0]["embedding"], one_embedding(&e, "first line"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 blank line(s)"), "{out:?}");
    let empty = ycml(&e, &["embed", ""], None);
    assert!(String::from_utf8_lossy(&empty.stderr).contains("INVALID_ARGUMENT"), "{empty:?}");
}

fn one_embedding(e: &EmulatorHandle, text: &str) -> Value {
    json_lines(&ycml(e, &["embed", text], None))[0]["embedding"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn tune_an_embeddings_model_on_pairs_then_embed_with_it() {
    let e = emulator().await;
    let file = std::env::temp_dir().join(format!("ycml-cli-{}-pairs.jsonl", std::process::id()));
    std::fs::write(&file, "{\"anchor\": \"hello\", \"positive\": \"hi\"}\n").unwrap();
    let file = file.display().to_string();
    let args = ["--output", "json", "--poll-interval", "10ms", "tune", "--task", "embeddings-pair", "--train", &file];
    let tuned = ycml(&e, &[&args[..], &["--embedding-dim", "32", "--embedding-dim", "64", "--wait"]].concat(), None);
    let out = &json_lines(&tuned)[0];
    let uri = out["model_uri"].as_str().unwrap();
    assert!(uri.contains("/text-embeddings/latest@"), "{out}");
    let vector = json_lines(&ycml(&e, &["embed", "--model", uri, "hello"], None));
    assert_eq!(vector[0]["embedding"].as_array().unwrap().len(), 64);
    // `tuning wait` knows an embeddings tuning.
    let task = out["task_id"].as_str().unwrap();
    let again = stdout(&ycml(&e, &["tuning", "wait", task], None));
    assert!(again.contains(&format!("model_uri  {uri}")), "{again}");
    // The wrong rows for the task are named in the CLI's terms.
    let wrong = ycml(&e, &["tune", "--task", "embeddings-triplet", "--train", &file, "--poll-interval", "10ms"], None);
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains("failed validation") || said.contains("negative"), "{said}");
    let dims = ycml(&e, &["tune", "--train", &file, "--embedding-dim", "8"], None);
    assert!(
        String::from_utf8_lossy(&dims.stderr).contains("--embedding-dim is for --task embeddings-pair"),
        "{dims:?}"
    );
}
