//! Embeddings for rig: a [`TextEmbeddingsModel`] as a rig embedding model. rig embeds documents
//! and queries through whichever model it is given, so a retrieval setup passes the `doc`
//! model's to `EmbeddingsBuilder` and the `query` model's to the vector index.

use futures_util::stream;
use rig_core::{
    ProviderError,
    completion::Usage,
    driver::{Exchange, Opened, Opening, Transport},
    embeddings::{Embedding as RigEmbedding, EmbeddingResponse},
    error::EncodeError,
    operation::Embedding,
    wire::{Capabilities, Decoder, Descriptor, Flow, Mode, Out, Wire, WireEvent, document::Unreassembled},
};
use yandex_cloud_ml_sdk::embeddings::{Embedding as SdkEmbedding, TextEmbeddingsModel};

use crate::{PROVIDER, provider_error};

/// Texts per rig batch: each batch is one `run_many` (one call per text, a few at a time).
pub const MAX_DOCUMENTS: usize = 256;

/// The wire of a rig embedding model: a batch of texts becomes one `run_many`.
#[derive(Debug, Clone)]
pub struct YandexEmbeddingWire {
    pub(crate) model: TextEmbeddingsModel,
}

/// A batch of texts with the model that embeds them.
#[derive(Debug, Clone)]
pub struct EmbeddingPayload {
    model: TextEmbeddingsModel,
    texts: Vec<String>,
}

impl Wire for YandexEmbeddingWire {
    type Op = Embedding;
    type Payload = EmbeddingPayload;
    type Frame = Vec<SdkEmbedding>;
    type Decoder<'id> = EmbeddingDecoder;
    type Reassembler = Unreassembled;

    fn describe(&self) -> Descriptor<'_> {
        // The size is known only when configured (a tuned model's default is its largest tuned
        // size, a local model's its own): 0 tells rig it is not known in advance.
        let dim = self.model.config().dim.map(|d| d as usize);
        Descriptor::new(PROVIDER)
            .model(self.model.uri())
            .capabilities(Capabilities::embedding(MAX_DOCUMENTS, dim.unwrap_or(0)).declaring(dim))
    }

    fn encode(&self, texts: Vec<String>, _mode: Mode) -> Result<EmbeddingPayload, EncodeError> {
        if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(EncodeError::request(format!("text {i} is empty: there is nothing to embed")));
        }
        Ok(EmbeddingPayload { model: self.model.clone(), texts })
    }

    fn decoder<'id>(&self) -> Self::Decoder<'id> {
        EmbeddingDecoder
    }
}

/// Turns the SDK's vectors into rig's response (rig pairs them with the texts by position).
#[derive(Debug, Default)]
pub struct EmbeddingDecoder;

impl<'id> Decoder<'id, Embedding, Vec<SdkEmbedding>> for EmbeddingDecoder {
    type Event = Vec<SdkEmbedding>;

    fn classify(&self, frame: Vec<SdkEmbedding>) -> WireEvent<Vec<SdkEmbedding>> {
        WireEvent::Known(frame)
    }

    fn decode(&mut self, vectors: Vec<SdkEmbedding>, out: Out<'id, Embedding>) -> Result<Flow, ProviderError> {
        // Every token of an embedding is input.
        let tokens: u64 = vectors.iter().map(SdkEmbedding::num_tokens).sum();
        let model = vectors.first().map(|v| v.model_version().to_owned()).filter(|v| !v.is_empty());
        let embeddings =
            vectors.into_iter().map(|v| RigEmbedding { document: String::new(), vec: v.into_vec() }).collect();
        Ok(out.end(EmbeddingResponse {
            usage: Usage::new().input_tokens(tokens).total_tokens(tokens),
            model,
            ..EmbeddingResponse::new(embeddings)
        }))
    }
}

/// The transport of [`YandexEmbeddingWire`]: the SDK's `run_many` (its auth, deadlines and
/// retries per text), vectors in the order of the texts.
#[derive(Debug, Clone, Copy, Default)]
pub struct YandexEmbeddingTransport;

impl Transport<YandexEmbeddingWire> for YandexEmbeddingTransport {
    fn send(&self, payload: EmbeddingPayload, _exchange: Exchange) -> Opening<Vec<SdkEmbedding>> {
        Opening::new(async move {
            let vectors = payload.model.run_many(payload.texts).await.map_err(provider_error)?;
            Ok(Opened::new(stream::iter([Ok(vectors)])))
        })
    }
}
