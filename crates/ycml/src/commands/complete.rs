//! `ycml complete` and `ycml tokenize`.

use std::path::PathBuf;

use futures_util::StreamExt;
use serde_json::{Value, json};
use yandex_cloud_ml_sdk::{
    Sdk,
    completions::{CompletionResult, GptModel, ReasoningMode, ResponseFormat},
    tools::{FunctionTool, ToolChoice},
};

use crate::{Context, error::CliError, messages, output::Out};

/// Which model.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelName {
    /// Model name (`ycml models` lists them) or full URI.
    #[arg(long, short, default_value = "yandexgpt")]
    pub model: String,
    /// Model version.
    #[arg(long = "model-version", default_value = "latest")]
    pub model_version: String,
}

impl ModelName {
    pub fn model(&self, sdk: &Sdk) -> GptModel {
        sdk.models().completions_with_version(&self.model, &self.model_version)
    }
}

/// Which model and how it is configured.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub name: ModelName,
    /// Sampling temperature in [0, 1].
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Maximum tokens to generate (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
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

fn read_json(path: &PathBuf) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?)
}

/// A `--tool FILE`: `{"name", "description", "parameters"}`, or a JSON schema whose `title`
/// names the tool.
fn tool_from_file(path: &PathBuf) -> Result<FunctionTool, CliError> {
    let v = read_json(path)?;
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let (name, parameters) = match (text("name"), v.get("parameters")) {
        (Some(name), Some(params)) => (name, params.clone()),
        (None, Some(_)) => return Err(no_tool_name(path)),
        _ => (text("title").ok_or_else(|| no_tool_name(path))?, v.clone()),
    };
    let tool = FunctionTool::new(name, parameters);
    Ok(match text("description") {
        Some(d) => tool.with_description(d),
        None => tool,
    })
}

fn no_tool_name(path: &std::path::Path) -> CliError {
    CliError::with_hint(
        format!("--tool {}: the tool has no name", path.display()),
        "give the file a \"name\" next to \"parameters\", or a \"title\" if it is a bare JSON schema",
    )
}

impl ModelArgs {
    /// The configured model; every problem is reported with the flag it came from.
    pub fn model(&self, sdk: &Sdk) -> Result<GptModel, CliError> {
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
        match &choice {
            Some(ToolChoice::Function(name)) if !tools.iter().any(|t| t.name() == name) => {
                let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
                return Err(CliError::with_hint(
                    format!("--tool-choice {name}: no --tool is named {name}"),
                    match names.is_empty() {
                        true => "give the tool with --tool FILE, or choose none, auto or required".to_owned(),
                        false => format!("the tools are {}; or choose none, auto or required", names.join(", ")),
                    },
                ));
            }
            Some(ToolChoice::Required) if tools.is_empty() => {
                return Err(CliError::with_hint(
                    "--tool-choice required: there is no tool",
                    "give one with --tool FILE",
                ));
            }
            _ => {}
        }
        let model = self.name.model(sdk).configure(|c| {
            c.temperature(self.temperature)
                .max_tokens(self.max_tokens)
                .reasoning_mode(reasoning)
                .response_format(format)
                .tools(tools)
                .tool_choice(choice)
                .parallel_tool_calls(self.parallel_tool_calls)
        });
        Ok(model?)
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

/// Prints a finished result: its text, or the tool calls it asks for (`tool call: NAME ARGS`);
/// a whole result document in JSON or YAML.
pub fn print_result(out: Out, result: &CompletionResult) -> Result<(), CliError> {
    out.document(result, || {
        if result.tool_calls().is_empty() {
            return result.text().to_owned();
        }
        let calls: Vec<String> = result.tool_calls().iter().map(describe_call).collect();
        calls.join("\n")
    })?;
    if out.is_text() {
        note_status(result);
    }
    Ok(())
}

/// A tool call as text: `tool call: NAME {"arg": …}`.
pub fn describe_call(call: &yandex_cloud_ml_sdk::tools::ToolCall) -> String {
    let args = call.function().map(|f| f.arguments.to_string()).unwrap_or_default();
    format!("tool call: {} {args}", call.name())
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

/// Streams an answer: text deltas as they come (text), or one document per chunk; returns the
/// final result. Text mode ends the line and prints tool calls and status notes.
pub async fn stream_answer(
    out: Out,
    mut stream: yandex_cloud_ml_sdk::completions::CompletionStream,
) -> Result<Option<CompletionResult>, CliError> {
    let (mut last, mut wrote) = (None, false);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.is_text() {
            out.partial(chunk.delta());
            wrote |= !chunk.delta().is_empty();
        } else {
            out.document(&chunk, String::new)?;
        }
        last = Some(chunk.into_result());
    }
    if !out.is_text() {
        return Ok(last);
    }
    if wrote || last.as_ref().is_none_or(|r| r.tool_calls().is_empty()) {
        out.line("");
    }
    if let Some(r) = &last {
        for call in r.tool_calls() {
            out.line(describe_call(call));
        }
        note_status(r);
    }
    Ok(last)
}

pub async fn complete(cx: &Context, args: CompleteArgs) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let model = args.model.model(&sdk)?;
    let messages = messages::conversation(args.prompt.as_deref(), args.messages.as_deref(), args.system.as_deref())?;
    let timeout = cx.connection.timeout();
    if args.deferred {
        let mut call = model.run_deferred(messages);
        if let Some(t) = timeout {
            call = call.timeout(t);
        }
        let op = call.await?;
        return cx.out.fields(&[("operation_id", op.id())]);
    }
    if args.stream {
        let mut call = model.run_stream(messages);
        if let Some(t) = timeout {
            call = call.timeout(t);
        }
        stream_answer(cx.out, call.await?).await?;
        return Ok(());
    }
    let mut call = model.run(messages);
    if let Some(t) = timeout {
        call = call.timeout(t);
    }
    print_result(cx.out, &call.await?)
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
    pub model: ModelName,
}

pub async fn tokenize(cx: &Context, args: TokenizeArgs) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let model = args.model.model(&sdk);
    let messages = messages::conversation(args.prompt.as_deref(), args.messages.as_deref(), args.system.as_deref())?;
    let mut call = model.tokenize(messages);
    if let Some(t) = cx.connection.timeout() {
        call = call.timeout(t);
    }
    let tokens = call.await?;
    if !cx.out.is_text() {
        return cx.out.document(&tokens, String::new);
    }
    let mut table = cx.out.listing(&["id", "text", "special"]);
    for t in &tokens {
        // Escaped (`\n`, `\t`, …), so every token stays on its own line.
        table.push(&json!({"id": t.id, "text": t.text.escape_debug().to_string(), "special": t.special}))?;
    }
    table.finish();
    eprintln!("{} tokens", tokens.len());
    Ok(())
}

/// `ycml models`: the models the folder can use, as the OpenAI-compatible API lists them
/// (chat and embedding models, the folder's tuned ones included).
pub async fn models(cx: &Context) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let models = sdk.chat().models().await?;
    let mut table = cx.out.listing(&["name", "version", "kind", "owner", "uri"]);
    for m in &models {
        let kind = if m.is_completions() {
            "chat"
        } else if m.is_embeddings() {
            "embeddings"
        } else {
            "other"
        };
        let kind = if m.fine_tuned() { format!("{kind}, tuned") } else { kind.to_owned() };
        table.push(&json!({
            "name": m.name().unwrap_or(&m.uri),
            "version": m.version().unwrap_or(""),
            "kind": kind,
            "owner": m.owned_by,
            "uri": m.uri,
        }))?;
    }
    table.finish();
    Ok(())
}
