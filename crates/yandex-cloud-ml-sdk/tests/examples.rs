//! Every example runs against the in-process emulator as part of the test suite, and what it
//! prints is checked (the emulator's model is deterministic).
// Each example is a program of its own and brings its own `connect` module; here they are all
// compiled into one test binary.
#![allow(clippy::duplicate_mod)]

/// Runs an example's `run` against an emulator of its own and returns what it printed.
macro_rules! output_of {
    ($example:ident) => {{
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut out = Vec::new();
        runtime
            .block_on(async {
                let emulator = yandex_cloud_ml_emulator::Emulator::builder().start("127.0.0.1:0").await?;
                let sdk = yandex_cloud_ml_sdk::Sdk::builder().emulator(emulator.endpoint()).build()?;
                $example::run(&sdk, &mut out).await
            })
            .expect(concat!("example ", stringify!($example), " failed"));
        String::from_utf8(out).unwrap()
    }};
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn quickstart() {
    let out = output_of!(quickstart);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "model: gpt://b1gemulatorfolder000/yandexgpt/latest",
            "answer: Echo: hello",
            "status: Final, model version: emulator-synthetic-1",
        ]
    );
    assert!(lines[3].starts_with("tokens: ") && lines[3].contains(" in + 3 out = "), "{out}");
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/run_stream.rs"]
mod run_stream;

#[test]
fn run_stream() {
    let out = output_of!(run_stream);
    let (text, summary) = out.split_once('\n').unwrap();
    assert_eq!(text, "Echo: Tell me about platypuses, briefly.");
    assert!(summary.starts_with("[Final, ") && summary.trim_end().ends_with(" tokens]"), "{out}");
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/run_deferred.rs"]
mod run_deferred;

#[test]
fn run_deferred() {
    let out = output_of!(run_deferred);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("started operation d7e") && lines[0].ends_with("; running: true"), "{out}");
    assert_eq!(lines[1], "result: Echo: Write a haiku about gRPC");
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/tokenize.rs"]
mod tokenize;

#[test]
fn tokenize() {
    let out = output_of!(tokenize);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("\"<s>\" (special)"), "{out}");
    assert!(lines.iter().any(|l| l.ends_with("\"ping\"")), "{out}");
    assert_eq!(*lines.last().unwrap(), format!("{} tokens", lines.len() - 1));
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/configure.rs"]
mod configure;

#[test]
fn configure() {
    let out = output_of!(configure);
    assert!(out.contains("temperature: Some(0.2)") && out.contains("max_tokens: Some(3)"), "{out}");
    assert!(out.contains("truncated answer: \"Echo: expla\" ("), "{out}");
    assert!(out.contains("rejected: invalid input: temperature must be between 0 and 1 inclusive, got 1.7"), "{out}");
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/tools.rs"]
mod tools;

#[test]
fn tools() {
    let out = output_of!(tools);
    assert_eq!(out, "calling AddNumbers([19, 23]) = 42\nanswer: The result of AddNumbers is 42.\n");
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/structured_output.rs"]
mod structured_output;

#[test]
fn structured_output() {
    let out = output_of!(structured_output);
    assert_eq!(
        out,
        "json mode: {\"answer\":\"Reply with JSON: what is 2+2?\"}\n\
         schema: {\"numbers\":[5,4,1]}\n\
         typed: Numbers { numbers: [5, 4, 1] }, sum 10\n"
    );
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/datasets.rs"]
mod datasets;

#[test]
fn datasets() {
    let out = output_of!(datasets);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["uploaded 2 rows; status Ready", "ready datasets: 1"]);
    if cfg!(feature = "parquet") {
        assert_eq!(lines[2..4], ["What is our refund window? -> 30 days.", "Do you ship abroad? -> Yes, worldwide."]);
    }
    assert_eq!(lines.last(), Some(&"deleted"));
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/tune.rs"]
mod tune;

#[test]
fn tune() {
    let out = output_of!(tune);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "tuned model: gpt://b1gemulatorfolder000/yandexgpt-lite/latest");
    assert_eq!(lines[1], "tuned answer: Poseidonia.");
    assert_eq!(lines[2], "base answer: Echo: what is the capital of Atlantis?");
    assert_eq!(lines[3..], ["re-attached task Completed", "answers the same: true"]);
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/batch.rs"]
mod batch;

#[test]
fn batch() {
    let out = output_of!(batch);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("3 answers in dataset fds"), "{out}");
    if cfg!(feature = "parquet") {
        assert_eq!(
            lines[1..],
            [
                "Name a prime number => Echo: Name a prime number",
                "Name a colour => Echo: Name a colour",
                "Name a planet => Echo: Name a planet"
            ]
        );
    }
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/chat.rs"]
mod chat;

#[test]
fn chat() {
    let out = output_of!(chat);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "> Name one sight in Kazan.",
            "Echo: Name one sight in Kazan.",
            "> How old is it?",
            "Echo: How old is it?",
            "> Thanks! Summarize our chat.",
            "Echo: Thanks! Summarize our chat.",
            lines[6],
        ]
    );
    assert!(lines[6].starts_with("history: 7 messages, "), "{out}");
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/tuned_model.rs"]
mod tuned_model;

#[test]
fn tuned_model() {
    let out = output_of!(tuned_model);
    assert_eq!(out, "fine-tuned: Some(true), name: Some(\"yandexgpt-lite\")\nanswer: Old Mara.\n");
}

#[cfg(feature = "blocking")]
#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/blocking.rs"]
mod blocking;

#[cfg(feature = "blocking")]
#[test]
fn blocking() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let emulator = server.block_on(yandex_cloud_ml_emulator::Emulator::builder().start("127.0.0.1:0")).unwrap();
    let sdk = yandex_cloud_ml_sdk::Sdk::builder().emulator(emulator.endpoint()).build_blocking().unwrap();
    let mut out = Vec::new();
    blocking::run(&sdk, &mut out).expect("example blocking failed");
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "run: Echo: hello");
    assert!(
        lines[1].starts_with("run_stream: [Echo") && lines[1].replace("] [", "").contains("one two three"),
        "{out}"
    );
    assert!(lines[2].starts_with("run_deferred: Echo: later (operation "), "{out}");
}

#[allow(dead_code)]
#[path = "../examples/embeddings.rs"]
mod embeddings;

#[test]
fn embeddings_rank_the_answering_document_first() {
    let out = output_of!(embeddings);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["4 documents, 256 dimensions", "What is the capital of France?"], "{out}");
    assert!(lines[2].ends_with(" Paris is the capital and largest city of France."), "{out}");
    assert_eq!(lines.len(), 4, "{out}");
}

#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/openai_api.rs"]
mod openai_api;

#[test]
fn openai_api() {
    let out = output_of!(openai_api);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Echo: Tell me about platypuses", "{out}");
    assert!(lines[1].starts_with("[") && lines[1].ends_with(" out]"), "{out}");
    assert!(lines[2].starts_with("the model calls calculator({"), "{out}");
    assert_eq!(
        lines[3..],
        [
            "The result of calculator is -5.",
            "Echo: What is in the picture? [image]",
            "an embedding of 256 dimensions",
            "10 models, 7 of them for chat",
        ],
        "{out}"
    );
}
