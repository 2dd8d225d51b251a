//! Reading a dataset's rows. The cloud serves dataset files as parquet; each file is streamed to
//! a temporary file and its rows are decoded on a blocking thread, a row group at a time, and
//! handed over through a small channel, so memory stays bounded however large the dataset is.

use std::{path::PathBuf, time::Duration};

use futures_core::Stream;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::Dataset;
use crate::error::{Error, Result};

/// One message of a [`CompletionRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub text: String,
}

/// A row of a completions dataset (`TextToTextGeneration`, and batch results): the
/// conversation and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionRecord {
    /// The conversation.
    #[serde(default)]
    pub request: Vec<RecordMessage>,
    /// The answer (absent in batch inputs).
    #[serde(default)]
    pub response: Option<String>,
}

/// Rows waiting between the decoding thread and the reader.
const CHANNEL_ROWS: usize = 256;

#[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
impl Dataset {
    /// The rows of every file of the dataset as JSON objects (column name → value), in order.
    /// Files are downloaded to temporary files and decoded a row group at a time.
    pub fn read(&self) -> impl Stream<Item = Result<Value>> + Send + 'static {
        let dataset = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Value>>(CHANNEL_ROWS);
        tokio::spawn(async move {
            if let Err(e) = read_into(&dataset, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        tokio_stream_from(rx)
    }

    /// The rows decoded as `T`, e.g. [`CompletionRecord`].
    pub fn read_as<T: DeserializeOwned + Send + 'static>(&self) -> impl Stream<Item = Result<T>> + Send + 'static {
        use futures_util::StreamExt;
        self.read().map(|row| {
            let row = row?;
            serde_json::from_value(row.clone()).map_err(|e| {
                let shown: String = row.to_string().chars().take(300).collect();
                Error::decode(format!("a dataset row is not a {}: {e}; the row: {shown}", std::any::type_name::<T>()))
            })
        })
    }
}

fn tokio_stream_from<T: Send + 'static>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn read_into(dataset: &Dataset, tx: &tokio::sync::mpsc::Sender<Result<Value>>) -> Result<()> {
    // Each RPC and each stalled piece of a file gets a minute; reading has no overall bound.
    let timeout = Duration::from_secs(60);
    let options = crate::call::CallOptions::with_timeout(timeout);
    for (key, url) in super::dataset::download_urls(dataset, &options).await? {
        // The reader went away: the remaining files are not downloaded.
        if tx.is_closed() {
            return Ok(());
        }
        let path = temp_path(dataset.id(), &key);
        // No overall bound (only stalls end a read), and a broken-off GET is retried with the
        // SDK's policy, resuming where it stopped.
        let deadline = tokio::time::Instant::now() + crate::clock::capped(Duration::MAX);
        let fetched = super::dataset::fetch_to(dataset.sdk(), &url, &path, &options, deadline, timeout).await;
        if let Err(e) = fetched {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        let tx = tx.clone();
        let decode = tokio::task::spawn_blocking(move || {
            let result = decode(&path, &key, &tx);
            let _ = std::fs::remove_file(&path);
            result
        });
        decode.await.map_err(|e| Error::decode(format!("reading the dataset failed: {e}")))??;
    }
    Ok(())
}

fn temp_path(id: &str, key: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ycml-dataset-{id}-{key}-{:016x}.parquet", fastrand::u64(..)))
}

/// Sends every row of one parquet file; stops early when the reader went away.
fn decode(path: &std::path::Path, key: &str, tx: &tokio::sync::mpsc::Sender<Result<Value>>) -> Result<()> {
    let bad = |e: &dyn std::fmt::Display| Error::decode(format!("dataset file `{key}` is not readable parquet: {e}"));
    let file = std::fs::File::open(path).map_err(|e| bad(&e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(&e))?;
    for row in reader.get_row_iter(None).map_err(|e| bad(&e))? {
        let row = row.map_err(|e| bad(&e))?;
        if tx.blocking_send(Ok(row.to_json_value())).is_err() {
            return Ok(());
        }
    }
    Ok(())
}
