//! `ycml`: Yandex Cloud AI Studio text generation at the terminal.

mod commands;
mod connect;
mod messages;
mod progress;
mod resume;
mod seconds;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "ycml", version, about = "Yandex Cloud AI Studio text generation from the command line")]
struct Cli {
    #[command(flatten)]
    connection: connect::Connection,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable.
    Text,
    /// JSON, one document (or one line per streamed chunk).
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a completion for a prompt or a list of messages.
    Complete(commands::complete::CompleteArgs),
    /// Inspect, wait for or cancel a deferred operation.
    Operation {
        #[command(subcommand)]
        action: commands::operation::OperationAction,
    },
    /// Tokenize a prompt as the model sees it.
    Tokenize(commands::complete::TokenizeArgs),
    /// Interactive chat with streaming answers and history (/reset, /exit).
    Chat(commands::chat::ChatArgs),
    /// Upload, list, inspect, download and read datasets.
    Datasets {
        #[command(subcommand)]
        action: commands::datasets::DatasetsAction,
    },
    /// Fine-tune a model on datasets (or files uploaded on the way).
    Tune(commands::tuning::TuneArgs),
    /// List, inspect and cancel tuning tasks.
    Tuning {
        #[command(subcommand)]
        action: commands::tuning::TuningAction,
    },
    /// Run a model over a whole dataset of prompts, and follow the batch tasks.
    Batch {
        #[command(subcommand)]
        action: commands::batch::BatchAction,
    },
    /// Run the local emulator of the API.
    Emulator(yandex_cloud_ml_emulator::cli::EmulatorArgs),
    /// Print a shell completion script (`source <(ycml completion bash)`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};
    // Logs go to stderr as YCML_LOG asks; by default the SDK's retries show as a status line.
    let filter = tracing_subscriber::EnvFilter::try_from_env("YCML_LOG")
        .unwrap_or_else(|_| "warn,yandex_cloud_ml_sdk=error".into());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter))
        .with(status::RetryStatus::new().with_filter(tracing_subscriber::filter::LevelFilter::WARN))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "ycml",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Emulator(args) => {
            yandex_cloud_ml_emulator::cli::run_as("ycml emulator", args).await.map_err(|e| e.to_string())
        }
        Command::Complete(args) => commands::complete::complete(&cli.connection, cli.output, args).await,
        Command::Tokenize(args) => commands::complete::tokenize(&cli.connection, cli.output, args).await,
        Command::Operation { action } => commands::operation::run(&cli.connection, cli.output, action).await,
        Command::Chat(args) => commands::chat::chat(&cli.connection, args).await,
        Command::Datasets { action } => commands::datasets::run(&cli.connection, cli.output, action).await,
        Command::Tune(args) => commands::tuning::tune(&cli.connection, cli.output, args).await,
        Command::Tuning { action } => commands::tuning::run(&cli.connection, cli.output, action).await,
        Command::Batch { action } => commands::batch::run(&cli.connection, cli.output, action).await,
    };
    status::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ycml: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_are_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "ycml",
            "--api-key",
            "AQVN-key-secret",
            "--iam-token",
            "t1.iam-secret",
            "--oauth-token",
            "y0_oauth-secret",
            "tokenize",
            "hi",
        ])
        .unwrap();
        let shown = format!("{:?}", cli.connection);
        for secret in ["key-secret", "iam-secret", "oauth-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("api_key: \"***\""), "{shown}");
    }
}
