//! [`ChatEmbeddingsModel`]: text embeddings over the OpenAI-compatible API (`POST embeddings`).

use std::{sync::Arc, time::Duration};

use serde::Deserialize;

use crate::{
    call::{Action, Call, CallOptions},
    embeddings::Embedding,
    error::{Error, Result},
    sdk::Sdk,
    transport::openai::ApiRequest,
};

/// An embedding model of the OpenAI-compatible API (the Python SDK's
/// `sdk.chat.text_embeddings(name)`): one text per request, like the cloud takes them. For
/// many texts, the gRPC model's [`run_many`](crate::embeddings::TextEmbeddingsModel::run_many)
/// is faster.
#[derive(Debug, Clone)]
pub struct ChatEmbeddingsModel {
    sdk: Sdk,
    uri: Arc<str>,
    dimensions: Option<u32>,
}

impl ChatEmbeddingsModel {
    pub(crate) fn new(sdk: Sdk, uri: String) -> ChatEmbeddingsModel {
        ChatEmbeddingsModel { sdk, uri: uri.into(), dimensions: None }
    }

    /// The model URI, e.g. `emb://b1g.../text-search-doc/latest`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// A model that asks for vectors of `dimensions` (`None`: the model's default size).
    pub fn with_dimensions(&self, dimensions: impl Into<Option<u32>>) -> Result<ChatEmbeddingsModel> {
        let dimensions = dimensions.into();
        if dimensions == Some(0) {
            return Err(Error::invalid_input("dimensions is 0: ask for at least 1, or None for the model's size"));
        }
        Ok(ChatEmbeddingsModel { dimensions, ..self.clone() })
    }

    /// The vector of `text`. Default timeout 180 s (the Python SDK's).
    pub fn run(&self, text: impl Into<String>) -> Call<EmbedText> {
        Call::new(EmbedText { model: self.clone(), text: text.into() })
    }
}

/// [`ChatEmbeddingsModel::run`]: one text's vector.
#[derive(Debug)]
pub struct EmbedText {
    model: ChatEmbeddingsModel,
    text: String,
}

#[derive(serde::Serialize)]
struct Body<'a> {
    model: &'a str,
    input: [&'a str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    model: String,
    data: Vec<Item>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f64>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
}

impl Action for EmbedText {
    type Output = Embedding;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

    async fn execute(self, options: CallOptions) -> Result<Embedding> {
        if self.text.is_empty() {
            return Err(Error::invalid_input("the text to embed is empty"));
        }
        let body = Body { model: &self.model.uri, input: [&self.text], dimensions: self.model.dimensions };
        let answer: Answer =
            self.model.sdk.transport().api_json(ApiRequest::post("embeddings", &body)?, &options).await?.value;
        let count = answer.data.len();
        let Some(item) = answer.data.into_iter().next().filter(|_| count == 1) else {
            return Err(Error::decode(format!("the server answered {count} vectors for one text")));
        };
        let tokens = answer.usage.map_or(0, |u| u.prompt_tokens);
        Ok(Embedding::new(item.embedding, tokens, answer.model))
    }
}
