//! `TextGenerationService`, `TextGenerationAsyncService` and `TokenizerService`.

use std::{pin::Pin, sync::Arc};

use futures_util::Stream;
use tokio::time::Instant;
use tonic::{Request, Response, Status, metadata::MetadataMap};
use yandex_cloud_ml_proto::{
    google::rpc,
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

use crate::{
    auth,
    engine::{self, Reply, Shape, synthetic::last_user_text, tokenizer},
    faults::StreamFault,
    state::{Injected, State, scripted_reply},
    validate::{self, ModelRef},
};

/// The three foundation-model services share one implementation.
#[derive(Clone)]
pub(crate) struct TextGeneration(pub Arc<State>);

impl TextGeneration {
    pub(crate) fn sync_server(state: Arc<State>) -> TextGenerationServiceServer<TextGeneration> {
        TextGenerationServiceServer::new(TextGeneration(state))
    }

    pub(crate) fn async_server(state: Arc<State>) -> TextGenerationAsyncServiceServer<TextGeneration> {
        TextGenerationAsyncServiceServer::new(TextGeneration(state))
    }

    pub(crate) fn tokenizer_server(state: Arc<State>) -> TokenizerServiceServer<TextGeneration> {
        TokenizerServiceServer::new(TextGeneration(state))
    }

    /// Journal, faults, authentication and validation shared by every completion-like call.
    async fn admit(
        &self,
        method: &'static str,
        metadata: &MetadataMap,
        request: &pb::CompletionRequest,
    ) -> Result<(String, ModelRef, Injected), Status> {
        self.0.record(method, metadata, request);
        let injected = self.0.inject(method).await?;
        let subject = auth::authenticate(&self.0, metadata)?;
        let model = validate::completion(&self.0, request)?;
        Ok((subject, model, injected))
    }

    /// A scripted answer if a rule matches, otherwise the engine's.
    fn reply(&self, model: &ModelRef, request: &pb::CompletionRequest) -> Result<Reply, Status> {
        match self.0.scripted(&model.model, &last_user_text(request)) {
            Some(answer) => scripted_reply(answer),
            None => Ok(self.0.engine.reply(request)),
        }
    }

    fn shape(&self) -> Shape {
        Shape { chunk_tokens: self.0.config.stream_chunk_tokens }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::CompletionResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TextGenerationService for TextGeneration {
    type CompletionStream = ResponseStream;

    async fn completion(&self, request: Request<pb::CompletionRequest>) -> Result<Response<ResponseStream>, Status> {
        let deadline = State::deadline(request.metadata());
        let (_, model, injected) = self
            .admit(
                "yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion",
                request.metadata(),
                request.get_ref(),
            )
            .await?;
        let request = request.into_inner();
        let reply = self.reply(&model, &request)?;
        let chunks = engine::render(reply, &request, self.0.engine.model_version(), self.shape());
        let delay = self.0.config.chunk_delay();
        if delay.is_zero() && injected.stream.is_none() {
            return injected.deliver(Response::new(Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(produce(self.0.clone(), chunks, delay, deadline, injected.stream, tx));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// Sends paced chunks. Generation stops as soon as the client goes away or its deadline passes;
/// injected faults cut or stall the stream after some chunks.
async fn produce(
    state: Arc<State>,
    chunks: Vec<pb::CompletionResponse>,
    delay: std::time::Duration,
    deadline: Option<Instant>,
    fault: Option<StreamFault>,
    tx: tokio::sync::mpsc::Sender<Result<pb::CompletionResponse, Status>>,
) {
    let total = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        match fault {
            Some(StreamFault::Cut { after, code }) if i == after && after < total => {
                let _ = tx.send(Err(Status::new(tonic::Code::from_i32(code), "stream cut by fault injection"))).await;
                return;
            }
            Some(StreamFault::Stall { after }) if i == after => {
                // Hang until the client gives up or its deadline passes.
                let closed = tx.closed();
                match deadline {
                    Some(d) => {
                        tokio::select! {
                            _ = closed => state.count(|s| s.streams_cancelled += 1),
                            _ = tokio::time::sleep_until(d) => {
                                let _ = tx.send(Err(Status::deadline_exceeded("Deadline exceeded"))).await;
                                state.count(|s| s.deadlines_exceeded += 1);
                            }
                        }
                    }
                    None => {
                        closed.await;
                        state.count(|s| s.streams_cancelled += 1);
                    }
                }
                return;
            }
            _ => {}
        }
        if i > 0 && !delay.is_zero() {
            let wake = Instant::now() + delay;
            if let Some(d) = deadline.filter(|d| *d < wake) {
                tokio::time::sleep_until(d).await;
                let _ = tx.send(Err(Status::deadline_exceeded("Deadline exceeded"))).await;
                state.count(|s| s.deadlines_exceeded += 1);
                return;
            }
            tokio::time::sleep_until(wake).await;
        }
        if tx.send(Ok(chunk)).await.is_err() {
            tracing::debug!("client went away; generation stopped");
            state.count(|s| s.streams_cancelled += 1);
            return;
        }
    }
}

#[tonic::async_trait]
impl TextGenerationAsyncService for TextGeneration {
    async fn completion(&self, request: Request<pb::CompletionRequest>) -> Result<Response<Operation>, Status> {
        let (subject, model, mut injected) = self
            .admit(
                "yandex.cloud.ai.foundation_models.v1.TextGenerationAsyncService/Completion",
                request.metadata(),
                request.get_ref(),
            )
            .await?;
        let idempotency_key =
            request.metadata().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut request = request.into_inner();
        if let Some(o) = request.completion_options.as_mut() {
            o.stream = false;
        }
        let outcome = match self.reply(&model, &request) {
            Ok(reply) => {
                let mut responses = engine::render(reply, &request, self.0.engine.model_version(), self.shape());
                Ok(pack_any(&responses.pop().unwrap_or_default()))
            }
            Err(status) => {
                Err(rpc::Status { code: status.code() as i32, message: status.message().to_owned(), details: vec![] })
            }
        };
        let op = self.0.create_operation(
            "Async GPT Completion",
            &subject,
            idempotency_key.as_deref(),
            outcome,
            std::mem::take(&mut injected.operation),
        );
        injected.deliver(Response::new(op))
    }
}

#[tonic::async_trait]
impl TokenizerService for TextGeneration {
    async fn tokenize(&self, request: Request<pb::TokenizeRequest>) -> Result<Response<pb::TokenizeResponse>, Status> {
        self.0.record(
            "yandex.cloud.ai.foundation_models.v1.TokenizerService/Tokenize",
            request.metadata(),
            request.get_ref(),
        );
        auth::authenticate(&self.0, request.metadata())?;
        validate::model_uri(&self.0, &request.get_ref().model_uri)?;
        let mut tokens = vec![pb::Token { id: tokenizer::BOS.1, text: tokenizer::BOS.0.into(), special: true }];
        tokens.extend(tokenizer::tokenize(&request.get_ref().text));
        Ok(Response::new(pb::TokenizeResponse { tokens, model_version: self.0.engine.model_version().to_owned() }))
    }

    async fn tokenize_completion(
        &self,
        request: Request<pb::CompletionRequest>,
    ) -> Result<Response<pb::TokenizeResponse>, Status> {
        self.admit(
            "yandex.cloud.ai.foundation_models.v1.TokenizerService/TokenizeCompletion",
            request.metadata(),
            request.get_ref(),
        )
        .await?;
        Ok(Response::new(pb::TokenizeResponse {
            tokens: tokenizer::tokenize_chat(&request.get_ref().messages),
            model_version: self.0.engine.model_version().to_owned(),
        }))
    }
}
