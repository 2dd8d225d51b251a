//! Everything the commands print on stdout, in one of three forms:
//! - text for people: records as `key  value` lines, listings as tables with a header row;
//! - JSON for scripts: one document per record or listed item, pretty on a terminal and one
//!   per line in a pipe (`--output json`), with RFC 3339 times;
//! - YAML (`--output yaml`), one `---` document per record or item.
//!
//! Tables and records take their columns from the JSON of the item, so text and JSON never
//! disagree. A closed pipe (`ycml … | head`) ends the output quietly.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use serde_json::Value;

use crate::error::CliError;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: text, tables with a header row.
    Text,
    /// JSON documents: pretty on a terminal, one per line in a pipe.
    Json,
    /// YAML documents, each starting with `---`.
    Yaml,
}

/// The printer of a command.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    format: Format,
    pretty: bool,
}

impl Out {
    pub fn new(format: Format) -> Out {
        Out { format, pretty: std::io::stdout().is_terminal() }
    }

    /// True for text output.
    pub fn is_text(self) -> bool {
        self.format == Format::Text
    }

    /// Prints `text` and a newline as is.
    pub fn line(self, text: impl std::fmt::Display) {
        write_out(format_args!("{text}\n"));
    }

    /// Prints text as it streams in (no newline added).
    pub fn partial(self, text: &str) {
        write_out(format_args!("{text}"));
    }

    /// Prints a value as a JSON or YAML document; in text, prints `text` instead.
    pub fn document<T: Serialize + ?Sized>(self, value: &T, text: impl FnOnce() -> String) -> Result<(), CliError> {
        match self.format {
            Format::Text => self.line(text()),
            Format::Json if self.pretty => self.line(serde_json::to_string_pretty(value)?),
            Format::Json => self.line(serde_json::to_string(value)?),
            Format::Yaml => self.line(yaml(&serde_json::to_value(value)?)),
        }
        Ok(())
    }

    /// Labelled values (ids the next command needs): `key value` lines in text, one object
    /// otherwise.
    pub fn fields(self, fields: &[(&str, &str)]) -> Result<(), CliError> {
        let object: serde_json::Map<String, Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
        self.document(&object, || {
            let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            let lines: Vec<String> = fields.iter().map(|(k, v)| format!("{k:width$}  {v}")).collect();
            lines.join("\n")
        })
    }

    /// One item shown whole: in text, `key  value` lines for `columns` of its JSON.
    pub fn record<T: Serialize>(self, item: &T, columns: &[&str]) -> Result<(), CliError> {
        let value = serde_json::to_value(item)?;
        self.document(&value, || {
            let width = columns.iter().map(|c| c.len()).max().unwrap_or(0);
            let lines: Vec<String> = columns.iter().map(|c| format!("{c:width$}  {}", cell(&value[*c]))).collect();
            lines.join("\n")
        })
    }

    /// A listing with these columns of each item's JSON.
    pub fn listing(self, columns: &'static [&'static str]) -> Listing {
        Listing { out: self, columns, rows: Vec::new() }
    }
}

/// Items of a listing: printed as they come in JSON and YAML; in text, a table printed at the
/// end, when the widths of its columns are known.
pub struct Listing {
    out: Out,
    columns: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

impl Listing {
    /// Adds an item.
    pub fn push<T: Serialize>(&mut self, item: &T) -> Result<(), CliError> {
        if self.out.is_text() {
            let value = serde_json::to_value(item)?;
            self.rows.push(self.columns.iter().map(|c| cell(&value[*c])).collect());
            Ok(())
        } else {
            self.out.document(item, String::new)
        }
    }

    /// Prints the table (text only; a listing with no items prints only its header).
    pub fn finish(self) {
        if !self.out.is_text() {
            return;
        }
        let header: Vec<String> = self.columns.iter().map(|c| c.replace('_', " ").to_uppercase()).collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| self.rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<0$}  ", widths[i]));
                }
            }
            self.out.line(line.trim_end());
        }
    }
}

/// A JSON value as a table cell: strings unquoted, nothing as `-`, lists comma-separated.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.replace(['\n', '\t'], " "),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.is_empty() => "-".to_owned(),
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A JSON value as a YAML document.
fn yaml(value: &Value) -> String {
    fn convert(value: &Value) -> yaml_rust2::Yaml {
        use yaml_rust2::Yaml;
        match value {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Boolean(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Integer(i),
                // Beyond i64 (or fractional): written as the number's own text.
                None => Yaml::Real(n.to_string()),
            },
            Value::String(s) => Yaml::String(s.clone()),
            Value::Array(items) => Yaml::Array(items.iter().map(convert).collect()),
            Value::Object(map) => Yaml::Hash(map.iter().map(|(k, v)| (Yaml::String(k.clone()), convert(v))).collect()),
        }
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = yaml_rust2::YamlEmitter::new(&mut text).dump(&convert(value));
    text
}

/// Writes to stdout; a closed pipe ends the program quietly, as `head` expects.
fn write_out(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("ycml: cannot write the output: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_like_text() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&serde_json::json!("a\nb")), "a b");
        assert_eq!(cell(&serde_json::json!(12)), "12");
        assert_eq!(cell(&serde_json::json!({"k": "v"})), "k=v");
        assert_eq!(cell(&serde_json::json!([])), "-");
    }

    #[test]
    fn yaml_documents_hold_the_json() {
        let text = yaml(&serde_json::json!({"id": "x", "rows": 3, "labels": {"a": "b"}, "done": true}));
        assert!(text.starts_with("---\n"), "{text}");
        for line in ["id: x", "rows: 3", "labels:\n  a: b", "done: true"] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
