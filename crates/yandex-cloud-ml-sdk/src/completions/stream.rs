//! Streaming completions: the server sends cumulative text; the SDK hands out both the
//! cumulative text and the delta of each chunk.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use futures_core::Stream;
use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::result::{AlternativeStatus, CompletionResult, Usage};
use crate::{error::Result, tools::ToolCall, transport::RpcStream};

/// One chunk of a streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionChunk {
    // Shared with the stream, which keeps the latest result: a chunk costs no copy of the
    // cumulative text, so a long answer streams in linear time.
    result: Arc<CompletionResult>,
    deltas: Vec<String>,
    restated: bool,
}

impl CompletionChunk {
    /// Everything generated so far, as a full result (alternatives, usage, model version).
    pub fn result(&self) -> &CompletionResult {
        &self.result
    }

    /// Turns the chunk into its cumulative result.
    pub fn into_result(self) -> CompletionResult {
        Arc::unwrap_or_clone(self.result)
    }

    /// Cumulative text of alternative 0.
    pub fn text(&self) -> &str {
        self.result.text()
    }

    /// Text of alternative 0 that is new in this chunk. When the server replaced earlier text
    /// (e.g. by content moderation) this is the whole new text and [`restated`](Self::restated)
    /// is true.
    pub fn delta(&self) -> &str {
        self.deltas.first().map_or("", String::as_str)
    }

    /// New text per alternative.
    pub fn deltas(&self) -> &[String] {
        &self.deltas
    }

    /// True if alternative 0's text does not extend the previous chunk's text.
    pub fn restated(&self) -> bool {
        self.restated
    }

    /// Status of alternative 0 (`Partial` until the last chunk).
    pub fn status(&self) -> AlternativeStatus {
        self.result.status()
    }

    /// Cumulative usage.
    pub fn usage(&self) -> &Usage {
        self.result.usage()
    }

    /// Tool calls of alternative 0 (set on the final chunk when the model asks for tools).
    pub fn tool_calls(&self) -> &[ToolCall] {
        self.result.tool_calls()
    }

    /// True for the chunk that ends alternative 0.
    pub fn is_final(&self) -> bool {
        self.status().is_final()
    }
}

/// How far a stream got before it broke: the [details](crate::Error::details) of its error.
/// What was delivered stays delivered (a stream is never replayed): the text so far is the
/// last chunk's [`text`](CompletionChunk::text), also kept by [`CompletionStream::current`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamInterrupted {
    /// Chunks delivered before the failure.
    pub chunks: u64,
    /// Characters of alternative 0's text delivered before the failure.
    pub text_chars: u64,
}

/// A stream of [`CompletionChunk`]s. Every chunk the server sent is yielded exactly once (the
/// SDK never replays a stream once it has handed out a chunk); dropping the stream cancels the
/// call on the server.
pub struct CompletionStream {
    inner: RpcStream<pb::CompletionResponse>,
    last: Option<Arc<CompletionResult>>,
    chunks: u64,
}

impl std::fmt::Debug for CompletionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionStream").field("request_id", &self.inner.request_id()).finish_non_exhaustive()
    }
}

impl CompletionStream {
    pub(crate) fn new(inner: RpcStream<pb::CompletionResponse>) -> CompletionStream {
        CompletionStream { inner, last: None, chunks: 0 }
    }

    /// The `x-client-request-id` of this call.
    pub fn request_id(&self) -> &str {
        self.inner.request_id()
    }

    /// The latest cumulative result seen so far.
    pub fn current(&self) -> Option<&CompletionResult> {
        self.last.as_deref()
    }

    /// Reads the rest of the stream and returns the final cumulative result.
    pub async fn final_result(mut self) -> Result<CompletionResult> {
        use futures_util::StreamExt;
        while let Some(chunk) = self.next().await {
            chunk?;
        }
        self.last
            .map(Arc::unwrap_or_clone)
            .ok_or_else(|| crate::Error::decode("the server closed the stream without sending a response"))
    }

    fn chunk(&mut self, response: pb::CompletionResponse) -> CompletionChunk {
        self.chunks += 1;
        let result = Arc::new(CompletionResult::from_proto(response));
        let (deltas, restated) = deltas(self.last.as_deref(), &result);
        self.last = Some(result.clone());
        CompletionChunk { result, deltas, restated }
    }
}

/// New text of each alternative compared with the `previous` result, and whether alternative
/// 0 was restated (its text does not extend the previous one).
pub(crate) fn deltas(previous: Option<&CompletionResult>, result: &CompletionResult) -> (Vec<String>, bool) {
    let seen = previous.map_or(&[][..], CompletionResult::alternatives);
    let mut restated = false;
    let deltas = result
        .alternatives()
        .iter()
        .enumerate()
        .map(|(i, alt)| {
            let previous = seen.get(i).map_or("", |a| a.text());
            match alt.text().strip_prefix(previous) {
                Some(new) => new.to_owned(),
                None => {
                    restated |= i == 0;
                    alt.text().to_owned()
                }
            }
        })
        .collect();
    (deltas, restated)
}

impl Stream for CompletionStream {
    type Item = Result<CompletionChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = ready!(Pin::new(&mut this.inner).poll_next(cx));
        Poll::Ready(item.map(|r| match r {
            Ok(response) => Ok(this.chunk(response)),
            Err(e) if this.chunks > 0 => {
                let text_chars = this.last.as_ref().map_or(0, |r| r.text().chars().count()) as u64;
                let chunks = this.chunks;
                let note = format!(
                    "the stream broke after {chunks} chunks with {text_chars} characters of text; what was \
                     delivered is not sent again"
                );
                Err(e.noted(&note).with_details(StreamInterrupted { chunks, text_chars }))
            }
            Err(e) => Err(e),
        }))
    }
}
