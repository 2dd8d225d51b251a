//! `ycml embed`: the vector of a text, or of every line of a file (read as the calls go, so a
//! file larger than memory works, with a progress bar), as JSON lines.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use serde_json::{Value, json};
use yandex_cloud_ml_sdk::{
    embeddings::Embedding,
    operations::{Progress, ProgressUnit},
};

use crate::{Context, error::CliError, output::Out, progress::Bar};

/// `ycml embed`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmbedArgs {
    /// The text (`-`: read it from stdin).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub text: Option<String>,
    /// Embed every non-blank line of FILE; each vector is labelled with its line number.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// `doc` (documents), `query` (search queries), another model name, or a full `emb://` URI
    /// (a tuned model).
    #[arg(long, short, default_value = "doc")]
    pub model: String,
    /// Vector size to ask for (default: the model's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub dim: Option<u32>,
    /// With --file: calls in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

/// An embedding as printed: one JSON object (a line in text mode: vectors are data).
fn emit(out: Out, line: Option<usize>, e: &Embedding) -> Result<(), CliError> {
    let mut value =
        json!({"embedding": e.as_slice(), "num_tokens": e.num_tokens(), "model_version": e.model_version()});
    if let (Some(n), Value::Object(map)) = (line, &mut value) {
        map.insert("line".into(), n.into());
    }
    if out.is_text() {
        out.line(value);
        Ok(())
    } else {
        out.document(&value, String::new)
    }
}

pub async fn embed(cx: &Context, args: EmbedArgs) -> Result<(), CliError> {
    let sdk = cx.connection.sdk().await?;
    let model = sdk.models().text_embeddings(&args.model).configure(|c| c.dim(args.dim))?;
    let Some(path) = &args.file else {
        let text = match args.text.as_deref() {
            Some("-") => crate::messages::read_source("-")?.trim_end().to_owned(),
            Some(text) => text.to_owned(),
            None => return Err("give a text or --file FILE".into()),
        };
        let mut call = model.run(text);
        if let Some(t) = cx.connection.timeout() {
            call = call.timeout(t);
        }
        return emit(cx.out, None, &call.await?);
    };
    let open =
        || std::fs::File::open(path).map(BufReader::new).map_err(|e| format!("cannot read {}: {e}", path.display()));
    // Counted first, for the bar's total; then read again as the calls go.
    let total = open()?.lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).count() as u64;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(usize, String)>(usize::from(args.concurrency) * 2);
    let reader = open()?;
    let reading = tokio::task::spawn_blocking(move || {
        let mut blank = 0usize;
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
            if line.trim().is_empty() {
                blank += 1;
            } else if sender.blocking_send((i + 1, line)).is_err() {
                break;
            }
        }
        Ok::<usize, String>(blank)
    });
    // Vectors come back in the order the lines were taken: their numbers wait in this queue.
    let pending = Arc::new(Mutex::new(VecDeque::new()));
    let taken = pending.clone();
    let texts = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(move |(n, text)| {
        taken.lock().unwrap_or_else(|e| e.into_inner()).push_back(n);
        text
    });
    let bar = Bar::new();
    let mut vectors = std::pin::pin!(model.run_many_stream(texts, usize::from(args.concurrency)));
    let mut done = 0u64;
    while let Some(vector) = vectors.next().await {
        let line = pending.lock().unwrap_or_else(|e| e.into_inner()).pop_front().unwrap_or_default();
        let vector = match vector {
            Ok(v) => v,
            Err(e) => {
                bar.finish(false);
                let e = CliError::from(e);
                return Err(format!("{} line {line}: {e}", path.display()).into());
            }
        };
        done += 1;
        bar.report(&Progress::new("embedding", done, Some(total), ProgressUnit::Rows));
        emit(cx.out, Some(line), &vector)?;
    }
    bar.finish(true);
    let blank = reading.await.map_err(|e| e.to_string())??;
    if blank > 0 {
        eprintln!("ycml: skipped {blank} blank line(s) of {}", path.display());
    }
    Ok(())
}
