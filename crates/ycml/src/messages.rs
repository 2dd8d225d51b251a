//! Reading prompts and message lists from arguments, files and stdin.

use std::io::Read;

use serde_json::Value;
use yandex_cloud_ml_sdk::completions::Message;

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

/// Parses a JSON list of messages, each `{"role", "text"}`, `{"role": "assistant",
/// "tool_calls": [{"function": {"name", "arguments"}}]}` or `{"role", "tool_results": [{"name",
/// "content"}]}` (the SDK's message format; `role` defaults to `user`). A result printed by
/// `ycml complete --output json` is accepted too, as the assistant's message.
pub fn parse_messages(json: &str) -> Result<Vec<Message>, String> {
    let entries: Vec<Value> = serde_json::from_str(json)
        .map_err(|e| format!("messages must be a JSON list of {{\"role\", \"text\"}} objects: {e}"))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, mut entry)| {
            if entry.get("alternatives").is_some() {
                let result: yandex_cloud_ml_sdk::completions::CompletionResult =
                    serde_json::from_value(entry).map_err(|e| format!("message {i}: not a completion result: {e}"))?;
                return Ok(Message::from(result));
            }
            if let Value::Object(map) = &mut entry {
                map.entry("role").or_insert_with(|| Value::String("user".into()));
            }
            serde_json::from_value(entry).map_err(|e| format!("message {i}: {e}"))
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
        // `-` reads the prompt from stdin; a prompt with text piped in gets that text first,
        // as in `cat notes.txt | ycml complete "Summarize:"` (a terminal is not read).
        (None, Some("-")) => out.push(Message::user(read_source("-")?.trim_end())),
        (None, Some(p)) => {
            use std::io::IsTerminal;
            let piped = if std::io::stdin().is_terminal() { String::new() } else { read_source("-")? };
            match piped.trim_end() {
                "" => out.push(Message::user(p)),
                text => out.push(Message::user(format!("{text}\n\n{p}"))),
            }
        }
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
        assert_eq!(m[2].tool_results_list().len(), 1);
        assert!(parse_messages(r#"[{"role":"user"}]"#).unwrap_err().contains("exactly one"));
        let calls =
            parse_messages(r#"[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{"x":1}}}]}]"#)
                .unwrap();
        assert_eq!(calls[0].tool_calls()[0].name(), "f");
        assert!(parse_messages("{").unwrap_err().contains("JSON list"));
    }
}
