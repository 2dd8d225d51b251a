//! `ycml chat`: an interactive conversation with streaming answers.

use std::io::{IsTerminal, Write};

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use yandex_cloud_ml_sdk::completions::Message;

use crate::{commands::complete::ModelArgs, connect::Connection};

#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// A system message that starts the conversation.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub async fn chat(connection: &Connection, args: ChatArgs) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let model = args.model.model(&sdk)?;
    let start: Vec<Message> = args.system.iter().map(Message::system).collect();
    let mut history = start.clone();
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("Chatting with {} (/reset clears the history, /exit or Ctrl-D quits)", model.uri());
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = std::io::stdout();
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next_line().await.map_err(|e| format!("cannot read stdin: {e}"))? else { break };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history = start.clone();
                println!("(history cleared)");
                continue;
            }
            _ => {}
        }
        history.push(Message::user(line));
        let mut call = model.run_stream(history.clone());
        if let Some(t) = connection.timeout() {
            call = call.timeout(t);
        }
        let mut stream = match call.await {
            Ok(s) => s,
            Err(e) => {
                history.pop();
                eprintln!("ycml: {e}");
                continue;
            }
        };
        let mut last = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    let _ = write!(stdout, "{}", chunk.delta());
                    let _ = stdout.flush();
                    last = Some(chunk.into_result());
                }
                Err(e) => {
                    eprintln!("\nycml: {e}");
                    break;
                }
            }
        }
        println!();
        match last {
            Some(result) => history.push(Message::from(&result)),
            None => {
                history.pop();
            }
        }
    }
    Ok(())
}
