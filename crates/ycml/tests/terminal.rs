//! `ycml` at a terminal (a pseudo-terminal): the chat prompt's editing, history and Ctrl-C, and
//! the progress bars of long work.
#![cfg(unix)]

use std::{path::PathBuf, process::Command};

use rexpect::{process::WaitStatus, session::PtySession};
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

fn home(name: &str) -> PathBuf {
    let home = std::env::temp_dir().join(format!("ycml-terminal-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// `ycml --emulator … ARGS` on a pseudo-terminal, with HOME at `home`.
fn spawn(e: &EmulatorHandle, home: &std::path::Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ycml"));
    cmd.args(["--emulator", &e.endpoint()])
        .args(args)
        .env("HOME", home)
        .env("TERM", "xterm")
        .env_remove("XDG_STATE_HOME");
    for var in [
        "YC_API_KEY",
        "YC_IAM_TOKEN",
        "YC_OAUTH_TOKEN",
        "YC_FOLDER_ID",
        "YCML_LOG",
        "YCML_PROFILE",
        "YCML_ENDPOINT",
        "YC_API_ENDPOINT",
        "YCML_EMULATOR_HOST",
    ] {
        cmd.env_remove(var);
    }
    rexpect::session::spawn_command(cmd, Some(20_000)).unwrap()
}

/// Types `line` once the prompt is up: keys typed before it would go to the terminal's line
/// discipline, not the editor.
fn type_line(session: &mut PtySession, line: &str) {
    session.exp_string("> ").unwrap();
    session.send_line(line).unwrap();
}

fn exited_with(session: &mut PtySession, code: i32) {
    match session.process_mut().wait().unwrap() {
        WaitStatus::Exited(_, c) => assert_eq!(c, code),
        other => panic!("ycml ended with {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_at_a_terminal_edits_remembers_and_stops_answers() {
    // Slow streams, so that Ctrl-C comes in the middle of an answer.
    let config = EmulatorConfig { stream_chunk_tokens: 1, stream_chunk_delay_ms: 300, ..Default::default() };
    let e = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let home = home("chat");
    let saved = home.join("conversation.json");
    let mut chat = spawn(&e, &home, &["chat"]);
    chat.exp_string("/help lists the commands; Ctrl-D leaves.").unwrap();
    type_line(&mut chat, "hello");
    chat.exp_string("Echo: hello").unwrap();
    type_line(&mut chat, "/help");
    chat.exp_string("/save FILE").unwrap();
    type_line(&mut chat, "/nonsense");
    chat.exp_string("unknown command /nonsense (not sent)").unwrap();
    // Multi-line input: a line ending in a backslash goes on.
    type_line(&mut chat, "first\\");
    type_line(&mut chat, "second");
    chat.exp_string("Echo: first").unwrap();
    chat.exp_string("second").unwrap();
    // Ctrl-C stops the answer, not the chat; the stopped turn is forgotten.
    type_line(&mut chat, "one two three four five six seven eight nine ten eleven twelve");
    chat.exp_string("Echo: one").unwrap();
    chat.send_control('c').unwrap();
    chat.exp_string("(answer stopped)").unwrap();
    // The stream was dropped, and the server stopped generating.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while e.control().stats().streams_cancelled == 0 {
        assert!(std::time::Instant::now() < deadline, "the server went on generating");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    type_line(&mut chat, "after");
    chat.exp_string("Echo: after").unwrap();
    type_line(&mut chat, &format!("/save {}", saved.display()));
    chat.exp_string("(saved 6 messages to").unwrap();
    // Ctrl-D leaves, with exit code 0.
    chat.exp_string("> ").unwrap();
    chat.send_control('d').unwrap();
    chat.exp_eof().unwrap();
    exited_with(&mut chat, 0);
    let stopped = e.control().journal().into_iter().filter(|j| j.method.ends_with("/Completion")).count();
    assert_eq!(stopped, 4, "every turn was one call, the stopped one included");

    // The history file outlives the chat: the up arrow brings back earlier lines (the last one
    // is the /save).
    let history = std::fs::read_to_string(home.join(".local/state/ycml/history")).unwrap();
    assert!(history.contains("hello") && history.contains("after"), "{history}");
    let mut again = spawn(&e, &home, &["chat", "--continue"]);
    again.exp_string("going on from 6 messages").unwrap();
    // Keys typed before the prompt is up would be read by the terminal, not the editor.
    again.exp_string("> ").unwrap();
    again.send("\x1b[A\x1b[A\r").unwrap();
    again.flush().unwrap();
    again.exp_string("Echo: after").unwrap();
    type_line(&mut again, "/exit");
    again.exp_eof().unwrap();
    exited_with(&mut again, 0);
    let sent = e.control().journal().pop().unwrap().request;
    assert_eq!(sent["messages"].as_array().unwrap().len(), 7, "the saved six and the new question: {sent}");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_work_shows_named_stages_with_units() {
    let config = EmulatorConfig { tuning_step_ms: 40, ..Default::default() };
    let e = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let home = home("progress");
    let file = home.join("train.jsonl");
    let row = serde_json::json!({"request": [{"role": "user", "text": "q"}], "response": "a"});
    std::fs::write(&file, row.to_string()).unwrap();
    let mut tune = spawn(&e, &home, &["--poll-interval", "20ms", "tune", "--train", file.to_str().unwrap(), "--wait"]);
    let shown = tune.exp_eof().unwrap();
    exited_with(&mut tune, 0);
    // The upload's bytes, the validation's rows and the tuning's steps, each a bar in words.
    let frames = frames(&shown);
    for (stage, unit) in [("uploading", " B/"), ("validating", " rows"), ("in progress", " steps")] {
        assert!(frames.iter().any(|f| f.contains(stage) && f.contains(unit)), "{stage} in{unit}: {frames:#?}");
    }
    assert!(frames.iter().all(|f| !f.contains(" 0/0 ")), "no empty frame: {frames:#?}");
    assert!(shown.contains("model_uri  gpt://"), "{shown:?}");
    // Rates have at most one decimal (`12.3/s`, `1.2 KiB/s`).
    for frame in frames.iter().filter(|f| f.contains("/s")) {
        let before = frame.split("/s").next().unwrap().trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim_end();
        let number = before.rsplit(' ').next().unwrap();
        assert!(number.split('.').nth(1).is_none_or(|d| d.len() <= 1), "{frame}");
    }
}

/// What a terminal would show, frame by frame: the output split at carriage returns and line
/// ends, with escape sequences removed.
fn frames(output: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = output.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final letter.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.split(['\r', '\n']).map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect()
}
