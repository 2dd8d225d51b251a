//! `ycml-emulator`: serves the emulated Yandex Cloud AI Studio API until stopped.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = yandex_cloud_ml_emulator::BANNER)]
struct Cli {
    #[command(flatten)]
    args: yandex_cloud_ml_emulator::cli::EmulatorArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("YCML_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match yandex_cloud_ml_emulator::cli::run(Cli::parse().args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ycml-emulator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
