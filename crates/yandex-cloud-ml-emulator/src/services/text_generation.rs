//! `TextGenerationService`, `TextGenerationAsyncService` and `TokenizerService`. Admission
//! (journal, faults, authentication) happened before; these only generate.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::Stream;
use tokio::time::Instant;
use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::{
    pack_any,
    yandex::cloud::{
        ai::foundation_models::v1::{
            self as pb,
            text_generation_async_service_server::{TextGenerationAsyncService, TextGenerationAsyncServiceServer},
            text_generation_service_server::{TextGenerationService, TextGenerationServiceServer},
            tokenizer_service_server::{TokenizerService, TokenizerServiceServer},
        },
        operation::Operation,
    },
};

use super::{Creator, cut_by_fault, deadline, rpc_status, start_operation};
use crate::admission::CutByFault;
use crate::{engine::Engine, services::generation::Generation, state::State, validate};

/// The three foundation-model services share one implementation.
#[derive(Clone)]
pub(crate) struct TextGeneration(pub Arc<State>);

impl TextGeneration {
    pub(crate) fn sync_server(state: Arc<State>) -> TextGenerationServiceServer<TextGeneration> {
        TextGenerationServiceServer::new(TextGeneration(state))
            .max_decoding_message_size(crate::admission::MAX_REQUEST_BYTES)
    }

    pub(crate) fn async_server(state: Arc<State>) -> TextGenerationAsyncServiceServer<TextGeneration> {
        TextGenerationAsyncServiceServer::new(TextGeneration(state))
            .max_decoding_message_size(crate::admission::MAX_REQUEST_BYTES)
    }

    pub(crate) fn tokenizer_server(state: Arc<State>) -> TokenizerServiceServer<TextGeneration> {
        TokenizerServiceServer::new(TextGeneration(state))
            .max_decoding_message_size(crate::admission::MAX_REQUEST_BYTES)
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::CompletionResponse, Status>> + Send>>;

/// A streamed completion being read by the client. Chunks are generated only when the client
/// asks for the next one, so memory holds the cumulative answer, not the stream.
struct Streaming {
    generation: Option<Generation>,
    state: Arc<State>,
    chunk_tokens: usize,
    delay: Duration,
    deadline: Option<Instant>,
    cut: CutByFault,
    sent: usize,
}

impl Streaming {
    async fn next(mut self) -> Option<(Result<pb::CompletionResponse, Status>, Streaming)> {
        self.generation.as_ref()?;
        if self.sent > 0 && !self.delay.is_zero() {
            let wake = Instant::now() + self.delay;
            if let Some(d) = self.deadline.filter(|d| *d < wake) {
                tokio::time::sleep_until(d).await;
                self.state.count(|s| s.deadlines_exceeded += 1);
                self.generation = None;
                return Some((Err(Status::deadline_exceeded("Deadline exceeded")), self));
            }
            tokio::time::sleep_until(wake).await;
        }
        // Taken only now: a stream dropped while waiting still holds its unfinished generation.
        let generation = self.generation.take()?;
        let (item, generation) = generation.next_chunk(self.chunk_tokens).await?;
        self.sent += 1;
        self.generation = Some(generation);
        Some((item, self))
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        // Dropped with chunks still to come: the client went away and generation stopped
        // (unless a fault cut the stream; the fault counts its own outcome).
        if self.generation.as_ref().is_some_and(|g| !g.is_done()) && !self.cut.is_set() {
            tracing::debug!("client went away; generation stopped");
            self.state.count(|s| s.streams_cancelled += 1);
        }
    }
}

#[tonic::async_trait]
impl TextGenerationService for TextGeneration {
    async fn completion(&self, request: Request<pb::CompletionRequest>) -> Result<Response<ResponseStream>, Status> {
        let deadline = deadline(&request);
        let cut = cut_by_fault(&request);
        let request = request.into_inner();
        let stream = request.completion_options.as_ref().is_some_and(|o| o.stream);
        let chunk_tokens = if self.0.engine.streams_chunks() { 1 } else { self.0.config.stream_chunk_tokens.max(1) };
        let generation =
            Generation::start(&self.0, request, if stream { chunk_tokens } else { usize::MAX }, false).await?;
        if !stream {
            let response = generation.finish().await?;
            return Ok(Response::new(Box::pin(futures_util::stream::iter([Ok(response)]))));
        }
        let streaming = Streaming {
            generation: Some(generation),
            state: self.0.clone(),
            chunk_tokens,
            delay: self.0.config.chunk_delay(),
            deadline,
            cut,
            sent: 0,
        };
        Ok(Response::new(Box::pin(futures_util::stream::unfold(streaming, Streaming::next))))
    }
}

#[tonic::async_trait]
impl TextGenerationAsyncService for TextGeneration {
    async fn completion(&self, request: Request<pb::CompletionRequest>) -> Result<Response<Operation>, Status> {
        // A retry of a call whose answer was lost gets the same operation, before any work (a
        // second generation would use up scripted replies meant for later calls).
        let creator = match Creator::of(&self.0, &request) {
            Ok(creator) => creator,
            Err(existing) => return Ok(Response::new(*existing)),
        };
        let mut request = request.into_inner();
        if let Some(o) = request.completion_options.as_mut() {
            o.stream = false;
        }
        // Validation errors belong to this call, not to the operation.
        let generation = Generation::start(&self.0, request, 0, true).await?;
        let new = creator.operation("d7e", "Async GPT Completion");
        let op = start_operation(&self.0, new, |_| async move {
            generation.finish().await.map(|response| pack_any(&response)).map_err(|s| rpc_status(&s))
        })?;
        Ok(Response::new(op))
    }
}

#[tonic::async_trait]
impl TokenizerService for TextGeneration {
    async fn tokenize(&self, request: Request<pb::TokenizeRequest>) -> Result<Response<pb::TokenizeResponse>, Status> {
        let request = request.into_inner();
        let state = self.0.clone();
        let response = tokio::task::spawn_blocking(move || {
            validate::model_uri(&state, &request.model_uri)?;
            let tokenizer = state.engine.tokenizer();
            let mut tokens = tokenizer.text_prefix();
            let count = || {
                tokens.extend(tokenizer.tokenize(&request.text));
                tokens.len()
            };
            validate::context(&state, "text", count, request.text.len())?;
            Ok::<_, Status>(pb::TokenizeResponse { tokens, model_version: state.engine.model_version().to_owned() })
        })
        .await
        .map_err(|e| Status::internal(format!("tokenization failed: {e}")))??;
        Ok(Response::new(response))
    }

    async fn tokenize_completion(
        &self,
        request: Request<pb::CompletionRequest>,
    ) -> Result<Response<pb::TokenizeResponse>, Status> {
        let request = request.into_inner();
        let state = self.0.clone();
        let response = tokio::task::spawn_blocking(move || {
            let tokenizer = state.engine.tokenizer();
            validate::completion(&state, &request, tokenizer)?;
            Ok::<_, Status>(pb::TokenizeResponse {
                tokens: tokenizer.tokenize_chat(&request.messages),
                model_version: state.engine.model_version().to_owned(),
            })
        })
        .await
        .map_err(|e| Status::internal(format!("tokenization failed: {e}")))??;
        Ok(Response::new(response))
    }
}
