//! The blocking flavour (feature `blocking`): run, stream and a deferred generation without
//! `async`. Run with `cargo run -p yandex-cloud-ml-sdk --example blocking --features blocking`.
//!
//! The emulator is a server and needs a runtime of its own; the SDK calls below run on the
//! runtime the blocking client owns, so this thread never sees async code.

use std::time::Duration;

use yandex_cloud_ml_emulator::Emulator;
use yandex_cloud_ml_sdk::{Sdk, blocking};

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    // With `YC_FOLDER_ID` and credentials (or `YCML_EMULATOR_HOST`) in the environment: the
    // cloud (or that emulator).
    if std::env::var_os("YC_FOLDER_ID").is_some() || std::env::var_os("YCML_EMULATOR_HOST").is_some() {
        return run(&blocking::Sdk::from_env()?, &mut std::io::stdout());
    }
    // Offline: an emulator on a runtime of its own.
    let server = tokio::runtime::Runtime::new()?;
    let emulator = server.block_on(Emulator::builder().start("127.0.0.1:0"))?;
    let sdk = Sdk::builder().emulator(emulator.endpoint()).build_blocking()?;
    run(&sdk, &mut std::io::stdout())
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub fn run(sdk: &blocking::Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let model = sdk.models().completions("yandexgpt");

    let answer = model.run("hello").timeout(Duration::from_secs(30)).send()?;
    writeln!(out, "run: {}", answer.text())?;

    write!(out, "run_stream:")?;
    for chunk in model.run_stream("one two three").send()? {
        write!(out, " [{}]", chunk?.delta())?;
    }
    writeln!(out)?;

    let operation = model.run_deferred("later").send()?;
    let result = operation.wait().poll_interval(Duration::from_millis(50)).send()?;
    writeln!(out, "run_deferred: {} (operation {})", result.text(), operation.id())?;
    Ok(())
}
