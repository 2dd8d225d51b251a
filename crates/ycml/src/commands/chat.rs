//! `ycml chat`: a conversation at a prompt with line editing and a history file (rustyline),
//! multi-line input, slash commands, answers streamed as they come (Ctrl-C stops the answer
//! only), tool calls shown, and the conversation saved for `--continue`. With stdin piped, each
//! line is a turn and slash commands work the same.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
};

use rustyline::{
    Completer, Config, Editor, Helper, Highlighter, Hinter,
    error::ReadlineError,
    history::FileHistory,
    validate::{ValidationContext, ValidationResult, Validator},
};
use tokio::io::{AsyncBufReadExt, BufReader};
use yandex_cloud_ml_sdk::{
    completions::{CompletionResult, GptModel, Message},
    tools::ToolResult,
};

use crate::{
    Context,
    commands::complete::{ModelArgs, print_result, stream_answer},
    error::CliError,
};

#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// A system message that starts the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// Go on with the last conversation (saved whenever a chat ends).
    #[arg(long = "continue", short = 'c', conflicts_with = "load")]
    pub continue_last: bool,
    /// Start from the conversation in FILE (a JSON list of messages, as /save writes).
    #[arg(long, value_name = "FILE")]
    pub load: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

const HELP: &str = "\
Type a message and press Enter. Multi-line input: end a line with \\ to go on, or start with \"\"\"
and end with \"\"\". Arrows and Ctrl-R search the history; Ctrl-C stops an answer; Ctrl-D exits.
  /help               this text
  /system [TEXT]      show the system message, or set it
  /reset              forget the conversation (the system message stays)
  /save FILE          write the conversation as JSON (the SDK's message format)
  /load FILE          replace the conversation with one saved by /save
  /result NAME TEXT   answer the model's call of tool NAME
  /exit               leave (so does Ctrl-D)
A message that starts with / is sent as is when it starts with //.";

/// Where `ycml` keeps state between runs: the prompt history and the last conversation.
fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/state"))
    })?;
    Some(base.join("ycml"))
}

fn last_conversation() -> Option<PathBuf> {
    state_dir().map(|d| d.join("last-conversation.json"))
}

fn load(path: &Path) -> Result<Vec<Message>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(crate::messages::parse_messages(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// Writes a conversation, readable by its owner only: it may hold pasted secrets.
fn save(path: &Path, conversation: &[Message]) -> Result<(), CliError> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(conversation)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(json.as_bytes()).and_then(|()| f.write_all(b"\n")))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Keeps the conversation for `--continue`; a failure is said, and the chat goes on.
fn save_last(conversation: &[Message]) {
    if let Some(path) = last_conversation().filter(|_| !conversation.is_empty())
        && let Err(e) = save(&path, conversation)
    {
        eprintln!("ycml: the conversation was not saved for --continue: {e}");
    }
}

/// Multi-line input for rustyline: a line ending in `\`, or an open `"""` block, goes on.
#[derive(Completer, Helper, Highlighter, Hinter)]
struct Lines;

impl Validator for Lines {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(ctx.input()) { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

fn is_incomplete(input: &str) -> bool {
    let trimmed = input.trim();
    if let Some(block) = trimmed.strip_prefix("\"\"\"") {
        return !block.ends_with("\"\"\"");
    }
    input.ends_with('\\')
}

/// The text of a finished multi-line input.
fn joined(input: &str) -> String {
    let trimmed = input.trim();
    match trimmed.strip_prefix("\"\"\"").and_then(|b| b.strip_suffix("\"\"\"")) {
        Some(block) => block.trim().to_owned(),
        None => trimmed.replace("\\\n", "\n"),
    }
}

/// Where lines come from: the terminal through rustyline, or a pipe.
enum Input {
    Terminal(Option<Box<Editor<Lines, FileHistory>>>, Option<PathBuf>),
    Pipe(tokio::io::Lines<BufReader<tokio::io::Stdin>>),
}

impl Input {
    fn open() -> Result<Input, CliError> {
        // Editing needs a terminal on both sides: `ycml chat > transcript` reads plain lines.
        if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            return Ok(Input::Pipe(BufReader::new(tokio::io::stdin()).lines()));
        }
        let config = Config::builder().auto_add_history(true).max_history_size(10_000).map_err(|e| e.to_string())?;
        let mut editor = Editor::with_config(config.build()).map_err(|e| format!("cannot set up the prompt: {e}"))?;
        editor.set_helper(Some(Lines));
        let history = state_dir().map(|d| d.join("history"));
        if let Some(path) = &history {
            // No history yet is fine.
            let _ = editor.load_history(path);
        }
        Ok(Input::Terminal(Some(Box::new(editor)), history))
    }

    /// The next input; `None` at the end (Ctrl-D, end of the pipe). Ctrl-C at the prompt
    /// clears the line.
    async fn next(&mut self) -> Result<Option<String>, CliError> {
        match self {
            Input::Pipe(lines) => Ok(lines.next_line().await.map_err(|e| format!("cannot read stdin: {e}"))?),
            Input::Terminal(slot, history) => loop {
                let Some(mut editor) = slot.take() else { return Ok(None) };
                // rustyline blocks; the runtime's other work (signals) goes on meanwhile.
                let (mut editor, line) = tokio::task::spawn_blocking(move || {
                    let line = editor.readline("> ");
                    (editor, line)
                })
                .await
                .map_err(|e| format!("the prompt failed: {e}"))?;
                match line {
                    Ok(line) => {
                        // Saved line by line, so that no way of leaving loses it.
                        if let Some(path) = history {
                            save_history(&mut editor, path);
                        }
                        *slot = Some(editor);
                        return Ok(Some(joined(&line)));
                    }
                    Err(ReadlineError::Interrupted) => *slot = Some(editor),
                    Err(ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(format!("cannot read the prompt: {e}").into()),
                }
            },
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Input::Terminal(..))
    }
}

fn save_history(editor: &mut Editor<Lines, FileHistory>, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.save_history(path) {
        eprintln!("ycml: cannot save the prompt history to {}: {e}", path.display());
    }
}

/// What a line asks for.
#[derive(Debug)]
enum Turn {
    Send(Message),
    Done,
    Nothing,
}

/// The conversation and what the slash commands do to it.
struct Conversation {
    messages: Vec<Message>,
}

impl Conversation {
    fn system(&self) -> Option<&Message> {
        self.messages.first().filter(|m| m.role().as_str() == "system")
    }

    /// Handles a line: a slash command here, a message to send otherwise.
    fn handle(&mut self, line: &str) -> Result<Turn, CliError> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(Turn::Nothing);
        }
        if let Some(text) = line.strip_prefix("//") {
            return Ok(Turn::Send(Message::user(format!("/{text}"))));
        }
        let Some(command) = line.strip_prefix('/') else { return Ok(Turn::Send(Message::user(line))) };
        let (name, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
        let rest = rest.trim();
        match name {
            "help" | "?" => eprintln!("{HELP}"),
            "exit" | "quit" => return Ok(Turn::Done),
            "reset" => {
                self.messages.retain(|m| m.role().as_str() == "system");
                eprintln!("(conversation cleared)");
            }
            "system" if rest.is_empty() => match self.system() {
                Some(m) => eprintln!("system: {}", m.text().unwrap_or_default()),
                None => eprintln!("(no system message)"),
            },
            "system" => {
                if self.system().is_some() {
                    self.messages.remove(0);
                }
                self.messages.insert(0, Message::system(rest));
                eprintln!("(system message set)");
            }
            "save" if !rest.is_empty() => {
                save(Path::new(rest), &self.messages)?;
                eprintln!("(saved {} messages to {rest})", self.messages.len());
            }
            "load" if !rest.is_empty() => {
                self.messages = load(Path::new(rest))?;
                eprintln!("(loaded {} messages from {rest})", self.messages.len());
            }
            "result" => match rest.split_once(char::is_whitespace) {
                Some((tool, text)) => {
                    return Ok(Turn::Send(Message::tool_results([ToolResult::function(tool, text.trim())])));
                }
                None => return Err("usage: /result NAME TEXT".into()),
            },
            "save" | "load" => return Err(format!("usage: /{name} FILE").into()),
            _ => return Err(format!("unknown command /{name} (not sent); /help lists the commands").into()),
        }
        Ok(Turn::Nothing)
    }
}

pub async fn chat(cx: &Context, args: ChatArgs) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let model = args.model.model(&sdk)?;
    let mut messages = match (&args.load, args.continue_last) {
        (Some(path), _) => load(path)?,
        (None, true) => {
            let path = last_conversation().ok_or("--continue: HOME is not set, so there is no saved conversation")?;
            if !path.exists() {
                return Err(format!("--continue: no conversation saved yet ({} does not exist)", path.display()).into());
            }
            load(&path)?
        }
        (None, false) => Vec::new(),
    };
    if let Some(system) = &args.system {
        if messages.first().is_some_and(|m| m.role().as_str() == "system") {
            messages.remove(0);
        }
        messages.insert(0, Message::system(system));
    }
    let mut conversation = Conversation { messages };
    let mut input = Input::open()?;
    if input.is_terminal() {
        let resumed = match conversation.messages.len() {
            0 => String::new(),
            n => format!(", going on from {n} messages"),
        };
        eprintln!("Chatting with {}{resumed}. /help lists the commands; Ctrl-D leaves.", model.uri());
    }
    converse(cx, &model, &mut conversation, &mut input).await
}

async fn converse(
    cx: &Context,
    model: &GptModel,
    conversation: &mut Conversation,
    input: &mut Input,
) -> Result<(), CliError> {
    loop {
        // Ctrl-C while waiting for a piped line ends the chat (at a terminal, the editor reads
        // Ctrl-C as a key and clears the line).
        let line = tokio::select! {
            line = input.next() => line?,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(line) = line else { break };
        let message = match conversation.handle(&line) {
            Ok(Turn::Send(message)) => message,
            Ok(Turn::Nothing) => {
                save_last(&conversation.messages);
                continue;
            }
            Ok(Turn::Done) => break,
            Err(e) => {
                eprintln!("ycml: {e}");
                continue;
            }
        };
        conversation.messages.push(message);
        let answer = tokio::select! {
            answer = answer(cx, model, conversation.messages.clone()) => Some(answer),
            _ = tokio::signal::ctrl_c() => None,
        };
        match answer {
            Some(Ok(Some(result))) => {
                conversation.messages.push(Message::from(&result));
                save_last(&conversation.messages);
            }
            Some(Ok(None)) => {
                conversation.messages.pop();
            }
            Some(Err(e)) => {
                conversation.messages.pop();
                eprintln!("\nycml: {e}");
                if let Some(hint) = e.hint() {
                    eprintln!("hint: {hint}");
                }
            }
            None => {
                // The stream was dropped, so the server stops generating; the question is
                // forgotten with its unfinished answer.
                conversation.messages.pop();
                eprintln!("\n(answer stopped)");
            }
        }
    }
    Ok(())
}

/// One answer: streamed as text (tool calls printed after it), or, with `--output json|yaml`,
/// the whole result as one document.
async fn answer(cx: &Context, model: &GptModel, messages: Vec<Message>) -> Result<Option<CompletionResult>, CliError> {
    if cx.out.is_text() {
        let mut call = model.run_stream(messages);
        if let Some(t) = cx.connection.timeout() {
            call = call.timeout(t);
        }
        let result = stream_answer(cx.out, call.await?).await?;
        return Ok(result);
    }
    let mut call = model.run(messages);
    if let Some(t) = cx.connection.timeout() {
        call = call.timeout(t);
    }
    let result = call.await?;
    print_result(cx.out, &result)?;
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_input_goes_on_until_it_is_closed() {
        assert!(is_incomplete("first\\"));
        assert!(is_incomplete("\"\"\"first\nsecond"));
        assert!(!is_incomplete("\"\"\"first\nsecond\"\"\""));
        assert!(!is_incomplete("one line"));
        assert_eq!(joined("first\\\nsecond"), "first\nsecond");
        assert_eq!(joined("\"\"\"\nfirst\nsecond\n\"\"\""), "first\nsecond");
    }

    #[test]
    fn slash_commands_are_not_sent() {
        let mut c = Conversation { messages: Vec::new() };
        assert!(matches!(c.handle("/system be brief").unwrap(), Turn::Nothing));
        assert_eq!(c.system().unwrap().text(), Some("be brief"));
        assert!(c.handle("/frobnicate").unwrap_err().to_string().contains("unknown command /frobnicate (not sent)"));
        assert!(matches!(c.handle("//etc/hosts").unwrap(), Turn::Send(m) if m.text() == Some("/etc/hosts")));
        assert!(
            matches!(c.handle("/result weather sunny").unwrap(), Turn::Send(m) if m.tool_results_list().len() == 1)
        );
        assert!(matches!(c.handle("/exit").unwrap(), Turn::Done));
    }
}
