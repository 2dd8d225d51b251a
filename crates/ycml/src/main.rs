//! `ycml`: Yandex Cloud AI Studio text generation at the terminal.

mod commands;
mod connect;
mod error;
mod messages;
mod output;
mod profile;
mod progress;
mod resume;
mod seconds;
mod status;

use std::{process::ExitCode, time::Duration};

use clap::{FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ycml", version, about = "Yandex Cloud AI Studio text generation from the command line")]
struct Cli {
    #[command(flatten)]
    connection: connect::Connection,
    /// Output format: text for people; json (pretty on a terminal, one object per line in a
    /// pipe) or yaml for scripts.
    #[arg(long, global = true, hide = true, value_enum, default_value_t = output::Format::Text)]
    output: output::Format,
    /// Longest time between status polls while waiting for long work (seconds, or 500ms, 30s,
    /// 2m, 1h).
    #[arg(long, global = true, hide = true, value_name = "DURATION", default_value = "5s", value_parser = seconds::parse)]
    poll_interval: Duration,
    /// Show each call, its retries and its timing on stderr (-vv: also the payloads);
    /// RUST_LOG-style filters in YCML_LOG win.
    #[arg(long, short, global = true, hide = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// What every command gets besides its own arguments.
pub struct Context {
    pub connection: connect::Connection,
    pub out: output::Out,
    pub poll_interval: Duration,
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
    /// Embed a text, or every line of a file, as vectors (JSON lines).
    Embed(commands::embed::EmbedArgs),
    /// Tokenize a prompt as the model sees it.
    Tokenize(commands::complete::TokenizeArgs),
    /// Chat at a prompt: line editing, history, streamed answers, /help for the commands.
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
    Emulator(Box<yandex_cloud_ml_emulator::cli::EmulatorArgs>),
    /// List the models the folder can use (chat and embeddings, tuned ones included).
    Models,
    /// Print a shell completion script (`source <(ycml completion bash)`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The command line's definition. The global options (connection, output, logging) are listed
/// once, in `ycml --help`, with where the folder and credentials come from; they are hidden in
/// every subcommand's help and usage errors, which show the subcommand's own options.
fn command() -> clap::Command {
    fn point_to_top(cmd: clap::Command) -> clap::Command {
        cmd.after_help("Connection, output and logging options: see `ycml --help`.").mut_subcommands(point_to_top)
    }
    let cmd = <Cli as clap::CommandFactory>::command()
        .mut_subcommands(|sub| if sub.get_name() == "emulator" { sub } else { point_to_top(sub) });
    // Only the top command's help shows them, from a copy of the definition with them visible
    // (a hidden global option stays hidden where clap copies it, so they are hidden by default).
    if !std::env::args_os().skip(1).any(|a| a == "-h" || a == "--help" || a == "help") {
        return cmd;
    }
    let globals: Vec<clap::Id> =
        cmd.get_arguments().filter(|a| a.is_global_set()).map(|a| a.get_id().clone()).collect();
    let mut shown = globals
        .iter()
        .fold(cmd.clone(), |c, id| c.mut_arg(id, |a| a.hide(false)))
        .after_help(connect::Connection::sources());
    cmd.override_help(shown.render_long_help())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.verbose);
    cli.connection.log_payloads = cli.verbose >= 2;
    let context =
        Context { connection: cli.connection, out: output::Out::new(cli.output), poll_interval: cli.poll_interval };
    let result: Result<(), error::CliError> = match cli.command {
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut command(), "ycml", &mut std::io::stdout());
            Ok(())
        }
        Command::Emulator(args) => {
            yandex_cloud_ml_emulator::cli::run_as("ycml emulator", *args).await.map_err(|e| e.to_string().into())
        }
        Command::Complete(args) => commands::complete::complete(&context, args).await,
        Command::Tokenize(args) => commands::complete::tokenize(&context, args).await,
        Command::Embed(args) => commands::embed::embed(&context, args).await,
        Command::Operation { action } => commands::operation::run(&context, action).await,
        Command::Chat(args) => commands::chat::chat(&context, args).await,
        Command::Datasets { action } => commands::datasets::run(&context, action).await,
        Command::Tune(args) => commands::tuning::tune(&context, args).await,
        Command::Tuning { action } => commands::tuning::run(&context, action).await,
        Command::Batch { action } => commands::batch::run(&context, action).await,
        Command::Models => commands::complete::models(&context).await,
    };
    status::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ycml: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (coloured on a terminal): by default only warnings, with the SDK's retries
/// as a status line; `-v` adds every call attempt, its retries and its timing, `-vv` the
/// request and response payloads (credentials withheld) and the HTTP/2 traffic; YCML_LOG (a
/// RUST_LOG-style filter) wins.
fn init_logging(verbose: u8) {
    use tracing_subscriber::{Layer, fmt::format::FmtSpan, layer::SubscriberExt, util::SubscriberInitExt};
    let default = match verbose {
        0 => "warn,yandex_cloud_ml_sdk=error",
        1 => "warn,yandex_cloud_ml_sdk=debug,ycml=debug",
        _ => "debug,yandex_cloud_ml_sdk=trace,ycml=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("YCML_LOG").unwrap_or_else(|_| default.into());
    // With -v, the end of each attempt's span says how long it took.
    let spans = if verbose > 0 { FmtSpan::CLOSE } else { FmtSpan::NONE };
    let registry = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_span_events(spans)
            .with_filter(filter),
    );
    if verbose == 0 {
        registry.with(status::RetryStatus::new().with_filter(tracing_subscriber::filter::LevelFilter::WARN)).init();
    } else {
        registry.init();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_are_consistent() {
        super::command().debug_assert();
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
