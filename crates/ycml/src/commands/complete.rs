//! `ycml complete` and `ycml tokenize`.

use std::{io::Write, path::PathBuf};

use futures_util::StreamExt;
use serde_json::{Value, json};
use yandex_cloud_ml_sdk::{
    Sdk,
    completions::{CompletionResult, GptModel, ReasoningMode, ResponseFormat},
    tools::{FunctionTool, ToolChoice},
};

use crate::{Output, connect::Connection, messages};

/// Which model and how it is configured.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model name or full URI.
    #[arg(long, short, default_value = "yandexgpt")]
    pub model: String,
    /// Model version.
    #[arg(long = "model-version", default_value = "latest")]
    pub model_version: String,
    /// Sampling temperature in [0, 1].
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Maximum tokens to generate.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Reasoning mode: disabled or enabled_hidden.
    #[arg(long)]
    pub reasoning: Option<String>,
    /// Answer with valid JSON.
    #[arg(long, conflicts_with = "json_schema")]
    pub json: bool,
    /// Answer with JSON that validates against the schema in FILE.
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    /// A function tool from FILE: `{"name", "description", "parameters"}` or a JSON schema with
    /// a `title` (repeatable).
    #[arg(long = "tool", value_name = "FILE")]
    pub tools: Vec<PathBuf>,
    /// none, auto, required, or a function name.
    #[arg(long)]
    pub tool_choice: Option<String>,
    /// Whether the model may ask for several tool calls at once (the cloud's default is true).
    #[arg(long, value_name = "BOOL")]
    pub parallel_tool_calls: Option<bool>,
}

fn read_json(path: &PathBuf) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

fn tool_from_file(path: &PathBuf) -> Result<FunctionTool, String> {
    let v = read_json(path)?;
    let tool = match (v.get("name").and_then(Value::as_str), v.get("parameters")) {
        (Some(name), Some(params)) => {
            let mut t = FunctionTool::new(name, params.clone());
            if let Some(d) = v.get("description").and_then(Value::as_str) {
                t = t.with_description(d);
            }
            t
        }
        _ => {
            let name = v.get("title").and_then(Value::as_str).unwrap_or_default().to_owned();
            let description = v.get("description").and_then(Value::as_str).map(str::to_owned);
            let t = FunctionTool::new(name, v);
            match description {
                Some(d) => t.with_description(d),
                None => t,
            }
        }
    };
    Ok(tool)
}

impl ModelArgs {
    /// The configured model; every problem is reported with the flag it came from.
    pub fn model(&self, sdk: &Sdk) -> Result<GptModel, String> {
        let reasoning: Option<ReasoningMode> =
            self.reasoning.as_deref().map(str::parse).transpose().map_err(|e| format!("--reasoning: {e}"))?;
        let format = match (&self.json_schema, self.json) {
            (Some(path), _) => Some(ResponseFormat::json_schema(read_json(path)?)),
            (None, true) => Some(ResponseFormat::Json),
            _ => None,
        };
        let tools = self.tools.iter().map(tool_from_file).collect::<Result<Vec<_>, _>>()?;
        let choice = self
            .tool_choice
            .as_deref()
            .map(|c| c.parse::<ToolChoice>().unwrap_or_else(|_| ToolChoice::Function(c.to_owned())));
        sdk.models()
            .completions_with_version(&self.model, &self.model_version)
            .configure(|c| {
                c.temperature(self.temperature)
                    .max_tokens(self.max_tokens)
                    .reasoning_mode(reasoning)
                    .response_format(format)
                    .tools(tools)
                    .tool_choice(choice)
                    .parallel_tool_calls(self.parallel_tool_calls)
            })
            .map_err(crate::connect::explain)
    }
}

/// `ycml complete`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompleteArgs {
    /// The prompt (`-`: read it from stdin; text piped in comes before it; read from stdin when
    /// neither it nor --messages is given).
    pub prompt: Option<String>,
    /// JSON file (or - for stdin) with a list of messages.
    #[arg(long, value_name = "FILE")]
    pub messages: Option<String>,
    /// A system message put first.
    #[arg(long)]
    pub system: Option<String>,
    /// Print tokens as they arrive.
    #[arg(long, conflicts_with = "deferred")]
    pub stream: bool,
    /// Start a deferred generation and print its operation id.
    #[arg(long)]
    pub deferred: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Prints a finished result.
pub fn print_result(output: Output, result: &CompletionResult) -> Result<(), String> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(result).map_err(|e| e.to_string())?),
        Output::Text => {
            if result.tool_calls().is_empty() {
                println!("{}", result.text());
            } else {
                for call in result.tool_calls() {
                    let args = call.function().map(|f| f.arguments.to_string()).unwrap_or_default();
                    println!("tool call: {} {args}", call.name());
                }
            }
            note_status(result);
        }
    }
    Ok(())
}

/// Says on stderr when an answer is not whole: cut by the token limit, or withheld by the
/// content filter (JSON output carries the status itself).
pub fn note_status(result: &CompletionResult) {
    use yandex_cloud_ml_sdk::completions::AlternativeStatus;
    match result.status() {
        AlternativeStatus::TruncatedFinal => eprintln!(
            "ycml: the answer was cut at {} tokens (the token limit); raise --max-tokens for more",
            result.usage().completion_tokens
        ),
        AlternativeStatus::ContentFilter => eprintln!("ycml: the answer was withheld by the content filter"),
        _ => {}
    }
}

pub async fn complete(connection: &Connection, output: Output, args: CompleteArgs) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let model = args.model.model(&sdk)?;
    let messages = messages::conversation(args.prompt.as_deref(), args.messages.as_deref(), args.system.as_deref())?;
    let timeout = connection.timeout();
    if args.deferred {
        let mut call = model.run_deferred(messages);
        if let Some(t) = timeout {
            call = call.timeout(t);
        }
        let op = call.await.map_err(crate::connect::explain)?;
        match output {
            Output::Text => println!("{}", op.id()),
            Output::Json => println!("{}", json!({"operation_id": op.id()})),
        }
        return Ok(());
    }
    if args.stream {
        let mut call = model.run_stream(messages);
        if let Some(t) = timeout {
            call = call.timeout(t);
        }
        let mut stream = call.await.map_err(crate::connect::explain)?;
        let mut stdout = std::io::stdout();
        let mut last = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(crate::connect::explain)?;
            match output {
                Output::Text => {
                    let _ = write!(stdout, "{}", chunk.delta());
                    let _ = stdout.flush();
                }
                Output::Json => println!("{}", serde_json::to_string(&chunk).map_err(|e| e.to_string())?),
            }
            last = Some(chunk.into_result());
        }
        if output == Output::Text {
            match &last {
                Some(r) if !r.tool_calls().is_empty() => print_result(output, r)?,
                Some(r) => {
                    println!();
                    note_status(r);
                }
                None => println!(),
            }
        }
        return Ok(());
    }
    let mut call = model.run(messages);
    if let Some(t) = timeout {
        call = call.timeout(t);
    }
    let result = call.await.map_err(crate::connect::explain)?;
    print_result(output, &result)
}

/// `ycml tokenize`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenizeArgs {
    /// The prompt (`-`: read it from stdin; text piped in comes before it; read from stdin when
    /// neither it nor --messages is given).
    pub prompt: Option<String>,
    /// JSON file (or - for stdin) with a list of messages.
    #[arg(long, value_name = "FILE")]
    pub messages: Option<String>,
    /// A system message put first.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub async fn tokenize(connection: &Connection, output: Output, args: TokenizeArgs) -> Result<(), String> {
    let sdk = connection.sdk()?;
    let model = args.model.model(&sdk)?;
    let messages = messages::conversation(args.prompt.as_deref(), args.messages.as_deref(), args.system.as_deref())?;
    let mut call = model.tokenize(messages);
    if let Some(t) = connection.timeout() {
        call = call.timeout(t);
    }
    let tokens = call.await.map_err(crate::connect::explain)?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&tokens).map_err(|e| e.to_string())?),
        Output::Text => {
            for t in &tokens {
                // Escaped (`\n`, `\t`, …), so every token stays on its own line.
                println!("{}\t{}{}", t.id, t.text.escape_debug(), if t.special { "\t(special)" } else { "" });
            }
            println!("{} tokens", tokens.len());
        }
    }
    Ok(())
}
