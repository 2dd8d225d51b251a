//! `EmbeddingsService/TextEmbedding`: the vector of one text, from the state's embedder.
//! Admission (journal, faults, authentication) happened before; this validates like the cloud
//! and embeds.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb,
    embeddings_service_server::{EmbeddingsService, EmbeddingsServiceServer},
};

use crate::{
    engine::{
        Engine,
        embedding::{Row, TUNED_ROWS},
    },
    state::State,
    validate,
};

/// The embedding models a folder has: the search models' document and query sides, and the
/// base model of embedding tuning.
pub(crate) const MODELS: [&str; 3] = ["text-search-doc", "text-search-query", "text-embeddings"];

#[derive(Clone)]
pub(crate) struct Embeddings(pub Arc<State>);

impl Embeddings {
    pub(crate) fn server(state: Arc<State>) -> EmbeddingsServiceServer<Embeddings> {
        EmbeddingsServiceServer::new(Embeddings(state)).max_decoding_message_size(crate::admission::MAX_REQUEST_BYTES)
    }
}

#[tonic::async_trait]
impl EmbeddingsService for Embeddings {
    async fn text_embedding(
        &self,
        request: Request<pb::TextEmbeddingRequest>,
    ) -> Result<Response<pb::TextEmbeddingResponse>, Status> {
        let request = request.into_inner();
        let state = self.0.clone();
        // Tokenizing and embedding are CPU work (a real model's especially): off the reactor,
        // as many at once as there are cores; the others wait their turn.
        let _turn = self.0.embedding_turns.acquire().await.map_err(|_| Status::unavailable("shutting down"))?;
        let response = tokio::task::spawn_blocking(move || embed(&state, request))
            .await
            .map_err(|e| Status::internal(format!("embedding failed: {e}")))??;
        Ok(Response::new(response))
    }
}

fn embed(state: &State, request: pb::TextEmbeddingRequest) -> Result<pb::TextEmbeddingResponse, Status> {
    let model = validate::parse_model_uri(state, &request.model_uri, "emb")?;
    let tuned = state.tuning.models.find_embeddings(&model)?;
    if tuned.is_none() && !MODELS.contains(&model.name.as_str()) {
        return Err(Status::not_found(format!(
            "model {} not found; the embedding models are {}",
            model.name,
            MODELS.join(", ")
        )));
    }
    if request.text.trim().is_empty() {
        return Err(Status::invalid_argument("text: the text to embed is empty"));
    }
    let embedder = &state.embedder;
    // A model tuned with sizes answers in those (the largest by default), as the cloud's do.
    let sizes = tuned.as_ref().and_then(|t| t.learned.embedding.as_ref()).map(|e| e.dims.clone()).unwrap_or_default();
    let dim = match (request.dim, sizes.iter().max()) {
        (None, Some(largest)) => *largest,
        (None, None) => embedder.default_dim(),
        (Some(d), _) => match usize::try_from(d)
            .ok()
            .filter(|d| if sizes.is_empty() { embedder.accepts_dim(*d) } else { sizes.contains(d) })
        {
            Some(d) => d,
            None if sizes.is_empty() => {
                return Err(Status::invalid_argument(format!(
                    "dim: {d} is not a size this model gives; ask for {} (or leave dim unset)",
                    embedder.sizes()
                )));
            }
            None => {
                let sizes: Vec<String> = sizes.iter().map(ToString::to_string).collect();
                return Err(Status::invalid_argument(format!(
                    "dim: {d} is not a size this model was tuned for; ask for one of {} (or leave dim unset)",
                    sizes.join(", ")
                )));
            }
        },
    };
    // Sizes a model was tuned for that this emulator's embedder cannot give (it was tuned
    // before a restart with another embedding model).
    if !embedder.accepts_dim(dim) {
        return Err(Status::failed_precondition(format!(
            "dim: the model was tuned for size {dim}, which the emulator's embedding model does not give ({})",
            embedder.sizes()
        )));
    }
    let limit = embedder.max_tokens();
    // A text far over the limit is refused before it is tokenized.
    if request.text.len() > limit.saturating_mul(64) {
        return Err(too_long(limit, format!("{} bytes", request.text.len())));
    }
    let tokens =
        embedder.count_tokens(&request.text).unwrap_or_else(|| state.engine.tokenizer().tokenize(&request.text).len());
    if tokens > limit {
        return Err(too_long(limit, format!("{tokens} tokens")));
    }
    let embedding = match tuned.as_ref().and_then(|t| t.learned.embedding.as_ref().map(|e| (t, e))) {
        Some((t, e)) => {
            let rows: Vec<Row<'_>> = t
                .closest_rows(&request.text, TUNED_ROWS)
                .into_iter()
                .map(|i| {
                    let (anchor, positive) = &t.learned.examples[i];
                    (anchor.as_str(), positive.as_str(), e.negatives.get(i).map(String::as_str))
                })
                .collect();
            crate::engine::embedding::tuned(embedder.as_ref(), &t.learned.base, &rows, &request.text, dim)
        }
        None => embedder.embed(&model.name, &request.text, dim),
    }
    .map_err(|e| Status::internal(format!("the embedding model failed: {e}")))?;
    Ok(pb::TextEmbeddingResponse {
        embedding,
        num_tokens: i64::try_from(tokens).unwrap_or(i64::MAX),
        model_version: embedder.model_version().to_owned(),
    })
}

fn too_long(limit: usize, size: String) -> Status {
    Status::invalid_argument(format!("text: {size}, more than the model's limit of {limit} tokens; embed it in parts"))
}
