//! Every example runs against the in-process emulator as part of the test suite.

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn quickstart() {
    quickstart::main().expect("example quickstart failed");
}

#[path = "../examples/run_stream.rs"]
mod run_stream;

#[test]
fn run_stream() {
    run_stream::main().expect("example run_stream failed");
}

#[path = "../examples/run_deferred.rs"]
mod run_deferred;

#[test]
fn run_deferred() {
    run_deferred::main().expect("example run_deferred failed");
}

#[path = "../examples/tokenize.rs"]
mod tokenize;

#[test]
fn tokenize() {
    tokenize::main().expect("example tokenize failed");
}

#[path = "../examples/configure.rs"]
mod configure;

#[test]
fn configure() {
    configure::main().expect("example configure failed");
}

#[path = "../examples/tools.rs"]
mod tools;

#[test]
fn tools() {
    tools::main().expect("example tools failed");
}

#[path = "../examples/structured_output.rs"]
mod structured_output;

#[test]
fn structured_output() {
    structured_output::main().expect("example structured_output failed");
}
