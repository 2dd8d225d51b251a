//! Reading prompts and message lists from arguments, files and stdin.

use std::io::Read;

use serde::Deserialize;
use yandex_cloud_ml_sdk::{completions::Message, tools::ToolResult};

/// One entry of a messages file: `{"role": "...", "text": "..."}` or
/// `{"role": "user", "tool_results": [{"name": "...", "content": "..."}]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default = "user")]
    role: String,
    text: Option<String>,
    tool_results: Option<Vec<ToolResultEntry>>,
}

#[derive(Debug, Deserialize)]
struct ToolResultEntry {
    name: String,
    content: String,
}

fn user() -> String {
    "user".into()
}

/// Reads `path` (or stdin for `-`).
pub fn read_source(path: &str) -> Result<String, String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
    }
}

/// Parses a JSON list of messages.
pub fn parse_messages(json: &str) -> Result<Vec<Message>, String> {
    let entries: Vec<Entry> = serde_json::from_str(json)
        .map_err(|e| format!("messages must be a JSON list of {{\"role\", \"text\"}} objects: {e}"))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| match (e.text, e.tool_results) {
            (Some(text), None) => Ok(Message::new(e.role.as_str(), text)),
            (None, Some(results)) => {
                Ok(Message::tool_results(results.into_iter().map(|r| ToolResult::function(r.name, r.content))))
            }
            _ => Err(format!("message {i} needs exactly one of \"text\" or \"tool_results\"")),
        })
        .collect()
}

/// The conversation of a command: `--messages` file, else the prompt argument, else stdin;
/// `--system` goes first.
pub fn conversation(
    prompt: Option<&str>,
    messages: Option<&str>,
    system: Option<&str>,
) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    if let Some(s) = system {
        out.push(Message::system(s));
    }
    match (messages, prompt) {
        (Some(path), None) => out.extend(parse_messages(&read_source(path)?)?),
        (None, Some(p)) => out.push(Message::user(p)),
        (None, None) => {
            let text = read_source("-")?;
            if text.trim().is_empty() {
                return Err("no prompt: pass it as an argument, on stdin, or with --messages FILE".into());
            }
            out.push(Message::user(text.trim_end()));
        }
        (Some(_), Some(_)) => return Err("give either a prompt or --messages, not both".into()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_tool_result_messages() {
        let m = parse_messages(
            r#"[{"role":"system","text":"s"},{"text":"u"},{"tool_results":[{"name":"f","content":"1"}]}]"#,
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].role().as_str(), "user");
        assert!(parse_messages(r#"[{"role":"user"}]"#).unwrap_err().contains("exactly one"));
        assert!(parse_messages("{").unwrap_err().contains("JSON list"));
    }
}
