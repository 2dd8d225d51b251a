//! Many texts at once: the API embeds one text per call, so [`RunMany`] makes the calls,
//! a bounded number at a time, each with the call's own retries, and gives the vectors back in
//! the order of the texts.

use std::{
    future::{Future, IntoFuture},
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{Stream, StreamExt};

use super::{model::TextEmbeddingsModel, result::Embedding};
use crate::{
    error::Result,
    operations::{Progress, ProgressFn, ProgressUnit},
};

/// Calls in flight by default: enough to hide the latency of one call, well under the cloud's
/// default quota of text-embedding requests per second.
const DEFAULT_CONCURRENCY: usize = 4;

/// [`TextEmbeddingsModel::run_many`]: set the concurrency, a per-text timeout or a progress
/// callback, then `.await` the vectors (in input order) or take them as a [`stream`](Self::stream).
/// The first text that fails for good (after its retries) fails the whole run, and its error
/// names the text's index.
#[must_use = "nothing is sent until the run is awaited or streamed"]
pub struct RunMany {
    model: TextEmbeddingsModel,
    texts: Vec<String>,
    concurrency: usize,
    timeout: Option<Duration>,
    on_progress: Option<ProgressFn>,
}

impl std::fmt::Debug for RunMany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMany")
            .field("model", &self.model)
            .field("texts", &self.texts.len())
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RunMany {
    pub(crate) fn new(model: TextEmbeddingsModel, texts: Vec<String>) -> RunMany {
        RunMany { model, texts, concurrency: DEFAULT_CONCURRENCY, timeout: None, on_progress: None }
    }

    /// Calls in flight at once (default 4; 0 counts as 1).
    pub fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = calls.max(1);
        self
    }

    /// The timeout of each text's call, retries included (default: that of `run`, 60 s).
    pub fn timeout(mut self, per_text: Duration) -> Self {
        self.timeout = Some(per_text);
        self
    }

    /// Reports progress after each text embedded: stage `embedding`, `done` of `total` texts
    /// (counted as [`ProgressUnit::Rows`]).
    pub fn on_progress(mut self, report: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(report));
        self
    }

    /// The vectors one by one, in the order of the texts, as they are ready.
    pub fn stream(self) -> impl Stream<Item = Result<Embedding>> + Send + 'static {
        let RunMany { model, texts, concurrency, timeout, on_progress } = self;
        let total = texts.len() as u64;
        let started = Instant::now();
        embed_in_order(model, futures_util::stream::iter(texts), concurrency, timeout).enumerate().map(
            move |(i, result)| {
                if let Some(report) = on_progress.as_ref().filter(|_| result.is_ok()) {
                    let mut progress = Progress::new("embedding", i as u64 + 1, Some(total), ProgressUnit::Rows);
                    progress.elapsed = started.elapsed();
                    report(&progress);
                }
                result
            },
        )
    }
}

impl IntoFuture for RunMany {
    type Output = Result<Vec<Embedding>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Vec<Embedding>>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let count = self.texts.len();
        let stream = self.stream();
        Box::pin(async move {
            let mut stream = std::pin::pin!(stream);
            let mut vectors = Vec::with_capacity(count);
            while let Some(vector) = stream.next().await {
                vectors.push(vector?);
            }
            Ok(vectors)
        })
    }
}

impl TextEmbeddingsModel {
    /// Embeds a stream of texts that need not fit in memory (lines of a file, rows of a
    /// database): at most `concurrency` calls in flight and as many texts read ahead, the
    /// vectors in the order of the texts. An error for one text is yielded in its place, with
    /// its index, and the stream goes on.
    pub fn run_many_stream<S>(
        &self,
        texts: S,
        concurrency: usize,
    ) -> impl Stream<Item = Result<Embedding>> + Send + 'static
    where
        S: Stream + Send + 'static,
        S::Item: Into<String>,
    {
        embed_in_order(self.clone(), texts.map(Into::into), concurrency.max(1), None)
    }
}

/// One call per text, `concurrency` at a time, results in input order; an error names its text.
fn embed_in_order(
    model: TextEmbeddingsModel,
    texts: impl Stream<Item = String> + Send + 'static,
    concurrency: usize,
    timeout: Option<Duration>,
) -> impl Stream<Item = Result<Embedding>> + Send + 'static {
    texts
        .enumerate()
        .map(move |(i, text)| {
            let mut call = model.run(text);
            if let Some(t) = timeout {
                call = call.timeout(t);
            }
            async move { call.await.map_err(|e| e.context(&format!("text {i}"))) }
        })
        .buffered(concurrency)
}
