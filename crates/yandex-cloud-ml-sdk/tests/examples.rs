//! Every example runs against the in-process emulator as part of the test suite, and what it
//! prints is checked (the emulator's model is deterministic).

/// Runs an example's `run` and returns what it printed.
macro_rules! output_of {
    ($example:ident) => {{
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut out = Vec::new();
        runtime.block_on($example::run(&mut out)).expect(concat!("example ", stringify!($example), " failed"));
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

#[cfg(feature = "blocking")]
#[allow(dead_code)] // `main` runs the example as a program; the tests call `run`.
#[path = "../examples/blocking.rs"]
mod blocking;

#[cfg(feature = "blocking")]
#[test]
fn blocking() {
    let mut out = Vec::new();
    blocking::run(&mut out).expect("example blocking failed");
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "run: Echo: hello");
    assert!(
        lines[1].starts_with("run_stream: [Echo") && lines[1].replace("] [", "").contains("one two three"),
        "{out}"
    );
    assert!(lines[2].starts_with("run_deferred: Echo: later (operation "), "{out}");
}
