//! Dataset rows: checking every line of an uploaded `jsonlines` file against its task type, and
//! writing the valid rows as parquet in the cloud's layout (`request: list<struct<role, text>>`
//! plus string columns), a row group at a time so memory does not grow with the file.

use std::{
    collections::BTreeMap,
    io::{self, BufRead, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use parquet::{
    data_type::{ByteArray, ByteArrayType},
    file::{properties::WriterProperties, writer::SerializedFileWriter},
    schema::parser::parse_message_type,
};
use serde_json::Value;
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1 as pb;

/// A parquet row group ends after this many rows or this many bytes of input, whichever
/// comes first, so memory stays bounded whatever the rows are like.
const GROUP_ROWS: usize = 4096;
const GROUP_BYTES: usize = 32 << 20;

/// Longest row read; a longer line is a row error, skipped without being held in memory.
pub(crate) const MAX_ROW_BYTES: usize = 4 << 20;

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

/// Reads the next line into `line` (without its end), keeping at most [`MAX_ROW_BYTES`];
/// `None` at the end of the input, otherwise whether the line was cut.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    // One byte over the cap is kept, so a `\r` before the newline does not count against it.
    const KEEP: usize = MAX_ROW_BYTES + 1;
    line.clear();
    let (mut cut, mut any) = (false, false);
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(any.then_some(cut || line.len() > MAX_ROW_BYTES));
        }
        any = true;
        let end = available.iter().position(|b| *b == b'\n');
        let piece = &available[..end.unwrap_or(available.len())];
        let room = KEEP - line.len();
        cut |= piece.len() > room;
        line.extend_from_slice(&piece[..piece.len().min(room)]);
        let used = end.map_or(available.len(), |e| e + 1);
        input.consume(used);
        if end.is_some() {
            if !cut && line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(cut || line.len() > MAX_ROW_BYTES));
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "validation was cancelled")
}

/// Lines with something on them (a first, cheap pass, so progress can show a total).
pub(crate) fn count_rows(mut input: impl BufRead, stop: &AtomicBool) -> io::Result<u64> {
    let mut rows = 0;
    let mut line = Vec::new();
    while let Some(cut) = read_line(&mut input, &mut line)? {
        if stop.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        if cut || !is_blank(&line) {
            rows += 1;
        }
    }
    Ok(rows)
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
/// What a kept message costs in memory beyond its text: a map of two strings, whose tree node
/// alone takes about 600 bytes. A row of many tiny messages costs many times its line, and row
/// groups are cut by this estimate, not by the line's length.
const MESSAGE_COST: usize = 700;

/// A row as validation keeps it and an estimate of its memory. Only what is stored is built
/// (see [`kept`](crate::kept)); a task type without known columns keeps the whole row.
fn parse_row(task_type: &str, text: &str) -> serde_json::Result<(Value, usize)> {
    let columns = string_columns(task_type);
    if !has_request(task_type) && columns.is_empty() {
        return serde_json::from_str(text).map(|row| (row, text.len()));
    }
    let kept = crate::kept::parse(text, columns, has_request(task_type))?;
    Ok((kept.row, text.len() + MESSAGE_COST * kept.messages))
}

pub(crate) struct Checked {
    pub valid: u64,
    pub findings: Findings,
}

/// Reads `input` line by line: each valid row goes to `sink` with its size, every problem is
/// recorded with its (1-based) line number, and `progress(processed, valid)` is called now and
/// then. Stops with `Interrupted` when `stop` is set.
pub(crate) fn check_lines(
    task_type: &str,
    mut input: impl BufRead,
    mut sink: impl FnMut(Value, usize) -> io::Result<()>,
    mut progress: impl FnMut(u64, u64),
    stop: &AtomicBool,
) -> io::Result<Checked> {
    let mut findings = Findings::default();
    let (mut total, mut valid, mut number) = (0u64, 0u64, 0i64);
    let mut line = Vec::new();
    while let Some(cut) = read_line(&mut input, &mut line)? {
        number += 1;
        if stop.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        if !cut && is_blank(&line) {
            continue;
        }
        total += 1;
        if cut {
            findings.add(number, ("row is too long".into(), format!("rows are at most {MAX_ROW_BYTES} bytes")));
        } else {
            match std::str::from_utf8(&line) {
                Err(e) => findings.add(number, ("row is not valid UTF-8".into(), e.to_string())),
                Ok(text) => match parse_row(task_type, text) {
                    Err(e) => findings.add(number, ("row is not valid JSON".into(), e.to_string())),
                    Ok((row, cost)) => match check_row(task_type, &row) {
                        Err(problem) => findings.add(number, problem),
                        Ok(()) => {
                            valid += 1;
                            sink(row, cost)?;
                        }
                    },
                },
            }
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

/// Calls `each` with every row of a parquet file, in order, as JSON (column → value); stops
/// when `each` says `false`. Rows are decoded a row group at a time (blocking).
pub(crate) fn read_parquet(
    source: crate::storage::blobs::RandomAccess,
    mut each: impl FnMut(Value) -> bool,
) -> Result<(), String> {
    use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};
    fn all<R: ChunkReader + 'static>(reader: R, each: &mut dyn FnMut(Value) -> bool) -> Result<(), String> {
        let reader = SerializedFileReader::new(reader).map_err(|e| e.to_string())?;
        for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
            if !each(row.map_err(|e| e.to_string())?.to_json_value()) {
                break;
            }
        }
        Ok(())
    }
    match source {
        crate::storage::blobs::RandomAccess::Bytes(b) => all(b, &mut each),
        crate::storage::blobs::RandomAccess::File(f) => all(f, &mut each),
    }
}

/// Writes rows of one task type as parquet, a row group at a time.
pub(crate) struct ParquetWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    task_type: String,
    pending: Vec<Value>,
    /// Input bytes of the pending rows.
    pending_bytes: usize,
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
        Ok(ParquetWriter { writer, task_type: task_type.to_owned(), pending: Vec::new(), pending_bytes: 0 })
    }

    /// Adds a row that costs about `bytes` bytes of memory.
    pub(crate) fn push(&mut self, row: Value, bytes: usize) -> Result<(), String> {
        self.pending.push(row);
        self.pending_bytes += bytes;
        if self.pending.len() >= GROUP_ROWS || self.pending_bytes >= GROUP_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
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
        let go = AtomicBool::new(false);
        let checked = check_lines(
            "TextToTextGeneration",
            input.as_bytes(),
            |r, _| {
                kept.push(r);
                Ok(())
            },
            |_, _| {},
            &go,
        )
        .unwrap();
        assert_eq!((count_rows(input.as_bytes(), &go).unwrap(), checked.valid, kept.len()), (5, 1, 1));
        let errors = checked.findings.into_proto();
        let rows: Vec<(String, Vec<i64>)> = errors.into_iter().map(|e| (e.error, e.row_numbers)).collect();
        assert!(rows.contains(&("row is not valid JSON".into(), vec![2])));
        assert!(rows.iter().any(|(e, r)| e.contains("`request`") && *r == vec![4, 6]));
        assert!(rows.contains(&("field `response` is missing".into(), vec![5])));
    }

    #[test]
    fn long_lines_bad_bytes_and_cancellation_are_handled_without_holding_the_line() {
        let long = format!("{{\"request\": \"{}\"}}", "x".repeat(MAX_ROW_BYTES * 2));
        let input = [long.as_bytes(), b"\n", &[0xff, 0xfe, b'{', b'}'], b"\r\n", b"{}"].concat();
        let go = AtomicBool::new(false);
        let checked = check_lines("TextToTextGeneration", input.as_slice(), |_, _| Ok(()), |_, _| {}, &go).unwrap();
        let errors = checked.findings.into_proto();
        let rows = |needle: &str| errors.iter().find(|e| e.error.contains(needle)).map(|e| e.row_numbers.clone());
        assert_eq!(rows("too long"), Some(vec![1]));
        assert_eq!(rows("UTF-8"), Some(vec![2]));
        assert_eq!(count_rows(input.as_slice(), &go).unwrap(), 3);
        // A line of exactly the cap is read, with either line ending.
        let exact = format!("\"{}\"", "y".repeat(MAX_ROW_BYTES - 2));
        for ending in ["\n", "\r\n"] {
            let mut line = Vec::new();
            let input = [exact.as_bytes(), ending.as_bytes()].concat();
            assert_eq!(read_line(&mut input.as_slice(), &mut line).unwrap(), Some(false), "{ending:?}");
            assert_eq!(line.len(), MAX_ROW_BYTES);
        }
        let stop = AtomicBool::new(true);
        let e = check_lines("TextToTextGeneration", input.as_slice(), |_, _| Ok(()), |_, _| {}, &stop).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
    }

    #[test]
    fn parquet_has_the_clouds_layout_and_reads_back() {
        let rows = vec![
            json!({"request": [{"role": "system", "text": "s"}, {"role": "user", "text": "Привет"}], "response": "r1"}),
            json!({"request": [{"role": "user", "text": "q2"}], "response": "r2"}),
        ];
        let mut w = ParquetWriter::new("TextToTextGeneration", Vec::new()).unwrap();
        for r in rows.clone() {
            w.push(r, 100).unwrap();
        }
        let bytes = bytes::Bytes::from(w.finish().unwrap());
        let reader = SerializedFileReader::new(bytes).unwrap();
        let back: Vec<serde_json::Value> =
            reader.get_row_iter(None).unwrap().map(|r| r.unwrap().to_json_value()).collect();
        assert_eq!(back, rows);
    }
}
