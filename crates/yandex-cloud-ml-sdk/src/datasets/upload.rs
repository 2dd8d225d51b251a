//! Sending a file to presigned URLs: one PUT, or parts PUT in parallel. The file is streamed
//! from disk (never read whole), every PUT is retried on its own when it fails for a transient
//! reason (PUTs are idempotent), and bytes sent are reported as progress.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use tokio::time::Instant;

use crate::{
    call::CallOptions,
    error::{Error, Result},
    operations::{Progress, ProgressFn, ProgressUnit},
    presigned::Body,
    retry,
    sdk::Sdk,
};

/// Bytes sent so far, reported as they go.
#[derive(Clone)]
pub(crate) struct Sent {
    done: Arc<AtomicU64>,
    total: u64,
    report: Option<ProgressFn>,
}

impl Sent {
    pub(crate) fn new(total: u64, report: Option<ProgressFn>) -> Sent {
        Sent { done: Arc::default(), total, report }
    }

    fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.emit(done);
    }

    /// A part failed and is sent again: its bytes are taken back.
    fn undo(&self, n: u64) {
        let done = self.done.fetch_sub(n, Ordering::Relaxed).saturating_sub(n);
        self.emit(done);
    }

    fn emit(&self, done: u64) {
        if let Some(report) = &self.report {
            report(&Progress::new("uploading", done, Some(self.total), ProgressUnit::Bytes));
        }
    }
}

/// A byte range of a file as a streamed request body, counting what leaves.
async fn file_body(path: &Path, offset: u64, len: u64, sent: Sent, counted: Arc<AtomicU64>) -> Result<Body> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::invalid_input(format!("cannot open {}: {e}", path.display())))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| Error::invalid_input(format!("cannot read {}: {e}", path.display())))?;
    let reader = file.take(len);
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map_ok(move |chunk: Bytes| {
        let n = chunk.len() as u64;
        counted.fetch_add(n, Ordering::Relaxed);
        sent.add(n);
        http_body::Frame::data(chunk)
    });
    Ok(BodyExt::boxed(StreamBody::new(stream)))
}

/// One file range to send.
pub(crate) struct Piece {
    pub url: String,
    pub offset: u64,
    pub len: u64,
}

/// How the PUTs of one upload are bounded and retried: the upload call's retry policy and
/// deadline (one budget with its RPCs), and a timeout for each PUT.
#[derive(Clone)]
pub(crate) struct PutBudget {
    pub options: CallOptions,
    pub deadline: Instant,
    pub put_timeout: Duration,
}

/// PUTs one range through the SDK's retry loop; returns the response's ETag, if any.
pub(crate) async fn put(
    sdk: &Sdk,
    path: &Path,
    piece: &Piece,
    budget: &PutBudget,
    sent: &Sent,
) -> Result<Option<String>> {
    let policy = budget.options.retry.as_ref().unwrap_or(sdk.transport().retry_policy());
    let attempts = retry::Attempts {
        what: "upload PUT",
        request_id: "",
        policy,
        deadline: budget.deadline,
        timeout: budget.options.timeout,
        attempt_timeout: Some(budget.put_timeout),
    };
    // Bytes of the current attempt, taken back from the progress if it fails.
    let counted = Arc::new(AtomicU64::new(0));
    let attempt = |_, _| {
        counted.store(0, Ordering::Relaxed);
        let counted = counted.clone();
        async move {
            let body = file_body(path, piece.offset, piece.len, sent.clone(), counted).await?;
            let response = sdk
                .transport()
                .http()
                .send(http::Method::PUT, &piece.url, Some(piece.len), body, budget.put_timeout)
                .await?
                .error_for_status("upload")
                .await?;
            let etag = response.headers.get(http::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
            // Drain the (empty) body so the connection can be reused; a stalled one is left.
            let _ = tokio::time::timeout(budget.put_timeout, response.body.collect()).await;
            Ok::<_, Error>(etag)
        }
    };
    let after_failure = |_: &mut Error, _| {
        sent.undo(counted.load(Ordering::Relaxed));
        retry::Next::Backoff
    };
    retry::run(attempts, attempt, after_failure).await
}

/// Part boundaries as the official SDK computes them: `floor(size / chunk)` parts of
/// `ceil(size / parts)` bytes, the last one shorter.
pub(crate) fn parts(size: u64, chunk_size: u64) -> Vec<(u64, u64)> {
    let count = (size / chunk_size).max(1);
    let part_size = size.div_ceil(count);
    (0..count)
        .map(|i| {
            let start = i * part_size;
            (start, part_size.min(size - start))
        })
        .collect()
}

/// Sends pieces with at most `parallelism` in flight; returns their ETags in order.
pub(crate) async fn put_all(
    sdk: &Sdk,
    path: PathBuf,
    pieces: Vec<Piece>,
    parallelism: usize,
    budget: &PutBudget,
    sent: Sent,
) -> Result<Vec<Option<String>>> {
    futures_util::stream::iter(pieces)
        .map(|piece| {
            let (sdk, path, sent) = (sdk.clone(), path.clone(), sent.clone());
            async move { put(&sdk, &path, &piece, budget, &sent).await }
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_follow_the_official_arithmetic() {
        const MIB: u64 = 1 << 20;
        assert_eq!(parts(12 * MIB, 5 * MIB), vec![(0, 6 * MIB), (6 * MIB, 6 * MIB)]);
        let p = parts(11 * MIB + 3, 5 * MIB);
        assert_eq!(p.len(), 2);
        assert_eq!(p.iter().map(|(_, l)| l).sum::<u64>(), 11 * MIB + 3);
        assert!(p[0].1 >= 5 * MIB && p[1].1 <= p[0].1);
        assert_eq!(parts(100, 1000), vec![(0, 100)]);
    }
}
