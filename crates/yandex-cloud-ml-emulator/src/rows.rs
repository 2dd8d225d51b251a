//! Dataset rows: checking every line of an uploaded `jsonlines` file against its task type, and
//! writing the valid rows as parquet in the cloud's layout (`request: list<struct<role, text>>`
//! plus string columns), a row group at a time so memory does not grow with the file.

use std::{
    collections::BTreeMap,
    io::{BufRead, Write},
    sync::Arc,
};

use parquet::{
    data_type::{ByteArray, ByteArrayType},
    file::{properties::WriterProperties, writer::SerializedFileWriter},
    schema::parser::parse_message_type,
};
use serde_json::Value;
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1 as pb;

/// Rows per parquet row group.
const GROUP_ROWS: usize = 4096;

/// The columns of a task type's rows besides `request`.
fn string_columns(task_type: &str) -> &'static [&'static str] {
    match task_type {
        "TextToTextGeneration" => &["response"],
        "TextToTextGenerationRequest" => &[],
        "TextEmbeddingsPair" => &["anchor", "positive"],
        "TextEmbeddingsTriplet" => &["anchor", "positive", "negative"],
        "TextClassificationMultilabel" | "TextClassificationMulticlass" => &["text"],
        _ => &[],
    }
}

fn has_request(task_type: &str) -> bool {
    matches!(task_type, "TextToTextGeneration" | "TextToTextGenerationRequest")
}

/// Why a row is not valid for its task type, if it is not.
pub(crate) fn check_row(task_type: &str, row: &Value) -> Result<(), (String, String)> {
    let Some(object) = row.as_object() else {
        return Err(("row is not a JSON object".into(), format!("got {}", kind(row))));
    };
    if has_request(task_type) {
        let ok = object.get("request").and_then(Value::as_array).is_some_and(|messages| {
            !messages.is_empty()
                && messages.iter().all(|m| {
                    m.get("role").and_then(Value::as_str).is_some_and(|r| matches!(r, "system" | "user" | "assistant"))
                        && m.get("text").is_some_and(Value::is_string)
                })
        });
        if !ok {
            return Err((
                "field `request` must be a non-empty list of {\"role\", \"text\"} messages".into(),
                "role is one of system, user, assistant; text is a string".into(),
            ));
        }
    }
    for column in string_columns(task_type) {
        match object.get(*column) {
            Some(Value::String(_)) => {}
            Some(other) => return Err((format!("field `{column}` must be a string"), format!("got {}", kind(other)))),
            None => return Err((format!("field `{column}` is missing"), format!("a {task_type} row needs it"))),
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON schema of one line of a task type's `jsonlines` file (`ListUploadSchemas`).
pub(crate) fn upload_schema(task_type: &str) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    if has_request(task_type) {
        properties.insert(
            "request".into(),
            serde_json::json!({
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                        "text": {"type": "string"}
                    },
                    "required": ["role", "text"]
                }
            }),
        );
        required.push(Value::from("request"));
    }
    for column in string_columns(task_type) {
        properties.insert((*column).into(), serde_json::json!({"type": "string"}));
        required.push(Value::from(*column));
    }
    serde_json::json!({"type": "object", "properties": properties, "required": required})
}

/// Lines with something on them (a first, cheap pass, so progress can show a total).
pub(crate) fn count_rows(mut input: impl BufRead) -> std::io::Result<u64> {
    let mut rows = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(rows);
        }
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            rows += 1;
        }
    }
}

/// Errors grouped by what is wrong, with their rows (at most 1,000 per error) and the details
/// of the first row that had it.
#[derive(Default)]
pub(crate) struct Findings {
    grouped: BTreeMap<String, (String, Vec<i64>)>,
}

impl Findings {
    fn add(&mut self, row: i64, (error, description): (String, String)) {
        let (_, rows) = self.grouped.entry(error).or_insert_with(|| (format!("row {row}: {description}"), Vec::new()));
        if rows.len() < 1000 {
            rows.push(row);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.grouped.is_empty()
    }

    pub(crate) fn into_proto(self) -> Vec<pb::ValidationError> {
        self.grouped
            .into_iter()
            .map(|(error, (error_description, row_numbers))| pb::ValidationError {
                error,
                error_description,
                row_numbers,
            })
            .collect()
    }
}

/// The outcome of reading a file.
pub(crate) struct Checked {
    pub valid: u64,
    pub findings: Findings,
}

/// Reads `input` line by line: each valid row goes to `sink`, every problem is recorded with its
/// (1-based) line number, and `progress(processed, valid)` is called now and then.
pub(crate) fn check_lines(
    task_type: &str,
    input: impl BufRead,
    mut sink: impl FnMut(Value) -> std::io::Result<()>,
    mut progress: impl FnMut(u64, u64),
) -> std::io::Result<Checked> {
    let mut findings = Findings::default();
    let (mut total, mut valid) = (0u64, 0u64);
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let number = i as i64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        total += 1;
        match serde_json::from_str::<Value>(&line) {
            Err(e) => findings.add(number, ("row is not valid JSON".into(), e.to_string())),
            Ok(row) => match check_row(task_type, &row) {
                Err(problem) => findings.add(number, problem),
                Ok(()) => {
                    valid += 1;
                    sink(row)?;
                }
            },
        }
        if total % 1000 == 0 {
            progress(total, valid);
        }
    }
    if total == 0 {
        findings.add(0, ("the file has no rows".into(), "a dataset needs at least one JSON line".into()));
    }
    progress(total, valid);
    Ok(Checked { valid, findings })
}

/// Writes rows of one task type as parquet, a row group at a time.
pub(crate) struct ParquetWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    task_type: String,
    pending: Vec<Value>,
}

impl<W: Write + Send> ParquetWriter<W> {
    pub(crate) fn new(task_type: &str, out: W) -> Result<ParquetWriter<W>, String> {
        let mut schema = String::from("message schema {\n");
        if has_request(task_type) {
            schema.push_str(
                "  optional group request (LIST) {\n    repeated group list {\n      optional group element {\n        \
                 optional binary role (STRING);\n        optional binary text (STRING);\n      }\n    }\n  }\n",
            );
        }
        for column in string_columns(task_type) {
            schema.push_str(&format!("  optional binary {column} (STRING);\n"));
        }
        if !has_request(task_type) && string_columns(task_type).is_empty() {
            schema.push_str("  optional binary row (STRING);\n");
        }
        schema.push('}');
        let schema = Arc::new(parse_message_type(&schema).map_err(|e| e.to_string())?);
        let props = Arc::new(WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build());
        let writer = SerializedFileWriter::new(out, schema, props).map_err(|e| e.to_string())?;
        Ok(ParquetWriter { writer, task_type: task_type.to_owned(), pending: Vec::new() })
    }

    pub(crate) fn push(&mut self, row: Value) -> Result<(), String> {
        self.pending.push(row);
        if self.pending.len() >= GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let err = |e: parquet::errors::ParquetError| e.to_string();
        let mut group = self.writer.next_row_group().map_err(err)?;
        let text = |v: Option<&Value>| -> Option<ByteArray> {
            v.map(|v| match v {
                Value::String(s) => ByteArray::from(s.as_str()),
                other => ByteArray::from(other.to_string().as_str()),
            })
        };
        if has_request(&self.task_type) {
            for field in ["role", "text"] {
                // Levels: request (optional, 1) → list (repeated, 2) → element (optional, 3) →
                // field (optional, 4); repetition 1 inside a list.
                let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
                for row in &rows {
                    match row.get("request").and_then(Value::as_array) {
                        None => {
                            defs.push(0);
                            reps.push(0);
                        }
                        Some(messages) if messages.is_empty() => {
                            defs.push(1);
                            reps.push(0);
                        }
                        Some(messages) => {
                            for (i, m) in messages.iter().enumerate() {
                                reps.push(if i == 0 { 0 } else { 1 });
                                match text(m.get(field)) {
                                    Some(v) => {
                                        values.push(v);
                                        defs.push(4);
                                    }
                                    None => defs.push(3),
                                }
                            }
                        }
                    }
                }
                let mut column = group.next_column().map_err(err)?.ok_or("the schema lost a column")?;
                column.typed::<ByteArrayType>().write_batch(&values, Some(&defs), Some(&reps)).map_err(err)?;
                column.close().map_err(err)?;
            }
        }
        let mut names: Vec<&str> = string_columns(&self.task_type).to_vec();
        if !has_request(&self.task_type) && names.is_empty() {
            names.push("row");
        }
        for name in names {
            let (mut values, mut defs) = (Vec::new(), Vec::new());
            for row in &rows {
                let v =
                    if name == "row" { Some(ByteArray::from(row.to_string().as_str())) } else { text(row.get(name)) };
                match v {
                    Some(v) => {
                        values.push(v);
                        defs.push(1);
                    }
                    None => defs.push(0),
                }
            }
            let mut column = group.next_column().map_err(err)?.ok_or("the schema lost a column")?;
            column.typed::<ByteArrayType>().write_batch(&values, Some(&defs), None).map_err(err)?;
            column.close().map_err(err)?;
        }
        group.close().map_err(err)?;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<W, String> {
        self.flush()?;
        self.writer.into_inner().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_are_checked_with_line_numbers_and_grouped_errors() {
        let input = "{\"request\": [{\"role\": \"user\", \"text\": \"hi\"}], \"response\": \"hello\"}\n\
                     not json\n\
                     \n\
                     {\"request\": [], \"response\": \"x\"}\n\
                     {\"request\": [{\"role\": \"user\", \"text\": \"q\"}]}\n\
                     {\"request\": [{\"role\": \"robot\", \"text\": \"q\"}], \"response\": \"x\"}\n";
        let mut kept = Vec::new();
        let checked = check_lines(
            "TextToTextGeneration",
            input.as_bytes(),
            |r| {
                kept.push(r);
                Ok(())
            },
            |_, _| {},
        )
        .unwrap();
        assert_eq!((count_rows(input.as_bytes()).unwrap(), checked.valid, kept.len()), (5, 1, 1));
        let errors = checked.findings.into_proto();
        let rows: Vec<(String, Vec<i64>)> = errors.into_iter().map(|e| (e.error, e.row_numbers)).collect();
        assert!(rows.contains(&("row is not valid JSON".into(), vec![2])));
        assert!(rows.iter().any(|(e, r)| e.contains("`request`") && *r == vec![4, 6]));
        assert!(rows.contains(&("field `response` is missing".into(), vec![5])));
    }

    #[test]
    fn parquet_has_the_clouds_layout_and_reads_back() {
        let rows = vec![
            json!({"request": [{"role": "system", "text": "s"}, {"role": "user", "text": "Привет"}], "response": "r1"}),
            json!({"request": [{"role": "user", "text": "q2"}], "response": "r2"}),
        ];
        let mut w = ParquetWriter::new("TextToTextGeneration", Vec::new()).unwrap();
        for r in rows.clone() {
            w.push(r).unwrap();
        }
        let bytes = bytes::Bytes::from(w.finish().unwrap());
        let reader = SerializedFileReader::new(bytes).unwrap();
        let back: Vec<serde_json::Value> =
            reader.get_row_iter(None).unwrap().map(|r| r.unwrap().to_json_value()).collect();
        assert_eq!(back, rows);
    }
}
