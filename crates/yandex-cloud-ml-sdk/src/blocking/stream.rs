//! Streams as iterators: each `next` blocks for one item; dropping the iterator drops the async
//! stream, which cancels its call on the server.

use std::pin::Pin;

use futures_core::Stream;
use futures_util::StreamExt;

use super::Runtime;
use crate::{
    completions::CompletionResult,
    error::{Error, Result},
};

/// A boxed SDK stream (listings, dataset rows, batch results).
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

/// A blocking [`crate::completions::CompletionStream`]: an iterator of chunks, each with the
/// text so far and its delta. Dropping it before the end cancels the generation.
pub type CompletionStream = Iter<crate::completions::CompletionStream>;

/// A blocking [`crate::chat::ChatStream`]: an iterator of deltas. Dropping it before the end
/// closes the connection, which stops the generation.
pub type ChatStream = Iter<crate::chat::ChatStream>;

/// A blocking iterator over an async SDK stream. The first error ends it.
pub struct Iter<S> {
    stream: Option<S>,
    rt: Runtime,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Iter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Iter").field("stream", &self.stream).finish()
    }
}

impl<T> Iter<BoxStream<T>> {
    /// Makes the stream inside the runtime (some streams spawn their reader at once).
    pub(crate) fn boxed<S>(rt: &Runtime, make: impl FnOnce() -> S) -> Iter<BoxStream<T>>
    where
        S: Stream<Item = Result<T>> + Send + 'static,
    {
        Iter { stream: Some(rt.enter(|| make().boxed())), rt: rt.clone() }
    }
}

impl<S> Iter<S> {
    pub(crate) fn new(stream: S, rt: &Runtime) -> Iter<S> {
        Iter { stream: Some(stream), rt: rt.clone() }
    }

    /// The async stream, until the iteration has ended.
    pub fn as_async(&self) -> Option<&S> {
        self.stream.as_ref()
    }
}

impl<S, T> Iterator for Iter<S>
where
    S: Stream<Item = Result<T>> + Unpin,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let stream = self.stream.as_mut()?;
        let item = self.rt.block_on(stream.next()).unwrap_or_else(|refused| Some(Err(refused)));
        // An error ends the iteration: a `for` loop that skips errors must not spin.
        if !matches!(item, Some(Ok(_))) {
            let finished = self.stream.take();
            self.rt.enter(|| drop(finished));
        }
        item
    }
}

impl<S> Drop for Iter<S> {
    fn drop(&mut self) {
        let stream = self.stream.take();
        self.rt.enter(|| drop(stream));
    }
}

impl CompletionStream {
    /// The client request id of the call (`x-client-request-id`), for support requests.
    pub fn request_id(&self) -> &str {
        self.stream.as_ref().map_or("", |s| s.request_id())
    }

    /// The latest cumulative result, if a chunk has arrived and the stream has not ended.
    pub fn current(&self) -> Option<&CompletionResult> {
        self.stream.as_ref()?.current()
    }

    /// Reads the rest of the stream and returns the final result.
    pub fn final_result(mut self) -> Result<CompletionResult> {
        let Some(stream) = self.stream.take() else {
            return Err(Error::invalid_input("the stream has already ended; keep the last chunk's result instead"));
        };
        self.rt.block_on(stream.final_result())?
    }
}

impl<S, T> std::iter::FusedIterator for Iter<S> where S: Stream<Item = Result<T>> + Unpin {}

impl ChatStream {
    /// The client request id of the call (`x-client-request-id`).
    pub fn request_id(&self) -> &str {
        self.stream.as_ref().map_or("", |s| s.request_id())
    }

    /// Reads the rest of the stream and returns the whole answer.
    pub fn final_result(mut self) -> Result<crate::chat::ChatResult> {
        let Some(stream) = self.stream.take() else {
            return Err(Error::invalid_input("the stream has already ended; keep the deltas' text instead"));
        };
        self.rt.block_on(stream.final_result())?
    }
}
