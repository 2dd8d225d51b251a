//! [`Embedding`]: the vector of one text.

use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

/// The embedding of one text: its vector, how many tokens the text was, and the model version
/// that made it. Serializes as `{"embedding": [...], "num_tokens": N, "model_version": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    embedding: Vec<f64>,
    num_tokens: u64,
    model_version: String,
}

impl Embedding {
    /// A vector received over the OpenAI-compatible API, whose `model` stands in for the version.
    pub(crate) fn new(embedding: Vec<f64>, num_tokens: u64, model_version: String) -> Embedding {
        Embedding { embedding, num_tokens, model_version }
    }

    pub(crate) fn from_proto(response: pb::TextEmbeddingResponse) -> Embedding {
        Embedding {
            embedding: response.embedding,
            num_tokens: u64::try_from(response.num_tokens).unwrap_or(0),
            model_version: response.model_version,
        }
    }

    /// The vector as the API sends it (64-bit floats).
    pub fn as_slice(&self) -> &[f64] {
        &self.embedding
    }

    /// The vector as 32-bit floats, the usual element type of vector stores and indexes.
    pub fn to_f32(&self) -> Vec<f32> {
        self.embedding.iter().map(|&x| x as f32).collect()
    }

    /// Takes the vector out.
    pub fn into_vec(self) -> Vec<f64> {
        self.embedding
    }

    /// Its number of dimensions.
    pub fn len(&self) -> usize {
        self.embedding.len()
    }

    /// True for an empty vector (no model answers so; kept for `len`'s sake).
    pub fn is_empty(&self) -> bool {
        self.embedding.is_empty()
    }

    /// How many tokens the text was.
    pub fn num_tokens(&self) -> u64 {
        self.num_tokens
    }

    /// The version of the model that made it, e.g. `06.12.2023`.
    pub fn model_version(&self) -> &str {
        &self.model_version
    }
}
