//! [`TextEmbeddingsModel`]: an embeddings model with its configuration, and its calls.

use std::{fmt, sync::Arc, time::Duration};

use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{many::RunMany, result::Embedding};
use crate::{
    call::{Action, Call, CallOptions},
    error::{Error, Result},
    sdk::Sdk,
    transport::rpc,
};

/// Default timeout of `run` (the Python SDK's).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of a [`TextEmbeddingsModel`], changed with [`TextEmbeddingsModel::configure`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TextEmbeddingsConfig {
    /// The vector size to ask for (the Python SDK's `dimensions`); `None` for the model's
    /// default. Models tuned with several `embedding_dims` answer in any of them.
    pub dim: Option<u32>,
}

impl TextEmbeddingsConfig {
    /// Asks for vectors of `dim` dimensions (`None`: the model's default).
    pub fn dim(mut self, dim: impl Into<Option<u32>>) -> Self {
        self.dim = dim.into();
        self
    }

    fn validate(&self) -> Result<()> {
        match self.dim {
            Some(0) => Err(Error::invalid_input("dim must be at least 1, or None for the model's default size")),
            _ => Ok(()),
        }
    }
}

/// A text-embeddings model (the Python SDK's `AsyncTextEmbeddingsModel`). Cheap to clone;
/// `configure` returns a new value and leaves this one unchanged.
#[derive(Clone)]
pub struct TextEmbeddingsModel {
    sdk: Sdk,
    uri: Arc<str>,
    config: Arc<TextEmbeddingsConfig>,
}

impl fmt::Debug for TextEmbeddingsModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextEmbeddingsModel").field("uri", &self.uri).field("config", &self.config).finish()
    }
}

impl TextEmbeddingsModel {
    pub(crate) fn new(sdk: Sdk, uri: String) -> TextEmbeddingsModel {
        TextEmbeddingsModel { sdk, uri: uri.into(), config: Arc::default() }
    }

    crate::completions::uri::uri_accessors!("emb://b1g.../text-search-doc/latest");

    /// The current configuration.
    pub fn config(&self) -> &TextEmbeddingsConfig {
        &self.config
    }

    /// Returns a model with a changed configuration; an invalid one is refused.
    ///
    /// ```
    /// # fn demo(model: yandex_cloud_ml_sdk::embeddings::TextEmbeddingsModel) -> yandex_cloud_ml_sdk::Result<()> {
    /// let small = model.configure(|c| c.dim(128))?;
    /// assert_eq!(small.config().dim, Some(128));
    /// assert!(model.configure(|c| c.dim(0)).is_err());
    /// # Ok(()) }
    /// ```
    pub fn configure(
        &self,
        change: impl FnOnce(TextEmbeddingsConfig) -> TextEmbeddingsConfig,
    ) -> Result<TextEmbeddingsModel> {
        let config = change((*self.config).clone());
        config.validate()?;
        Ok(TextEmbeddingsModel { sdk: self.sdk.clone(), uri: self.uri.clone(), config: Arc::new(config) })
    }

    /// Embeds one text (`EmbeddingsService/TextEmbedding`). Default timeout 60 s.
    pub fn run(&self, text: impl Into<String>) -> Call<Embed> {
        Call::new(Embed { model: self.clone(), text: text.into() })
    }

    /// Embeds many texts: each is one call (the API has no batch method) with its own retries,
    /// at most [`concurrency`](RunMany::concurrency) at a time; the vectors come back in the
    /// order of the texts. See [`RunMany`] for progress reports and for a streamed form that
    /// never holds the whole corpus.
    pub fn run_many<I>(&self, texts: I) -> RunMany
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        RunMany::new(self.clone(), texts.into_iter().map(Into::into).collect())
    }

    pub(crate) fn sdk(&self) -> &Sdk {
        &self.sdk
    }

    fn request(&self, text: String) -> Result<pb::TextEmbeddingRequest> {
        if self.uri.is_empty() || self.uri.contains(char::is_whitespace) {
            return Err(Error::invalid_input(format!(
                "model URI `{}` is empty or contains whitespace: pass a model name like \"doc\"",
                self.uri
            )));
        }
        Ok(pb::TextEmbeddingRequest { model_uri: String::from(&*self.uri), text, dim: self.config.dim.map(i64::from) })
    }
}

/// [`TextEmbeddingsModel::run`]: the embedding of one text.
#[derive(Debug)]
pub struct Embed {
    model: TextEmbeddingsModel,
    text: String,
}

impl Action for Embed {
    type Output = Embedding;
    const DEFAULT_TIMEOUT: Duration = RUN_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Embedding> {
        let request = self.model.request(self.text)?;
        let response: pb::TextEmbeddingResponse =
            self.model.sdk.transport().unary(&rpc::TEXT_EMBEDDING, request, &options).await?;
        Ok(Embedding::from_proto(response))
    }
}
