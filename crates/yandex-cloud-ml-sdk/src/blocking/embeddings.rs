//! Text-embeddings models, one line per async method.

use super::Call;
use crate::{
    call::Call as AsyncCall,
    embeddings::{Embed, Embedding, RunMany, TextEmbeddingsConfig, TextEmbeddingsModel},
    error::Result,
    tuning::{EmbeddingsTuneType, Tune, TuneDeferred, TuningDatasets},
};

impl super::Models {
    /// A text-embeddings model by name or URI ([`crate::Models::text_embeddings`]).
    pub fn text_embeddings(&self, model_name: &str) -> super::TextEmbeddingsModel {
        self.wrap(self.inner.text_embeddings(model_name))
    }

    /// A text-embeddings model by name and version.
    pub fn text_embeddings_with_version(&self, model_name: &str, model_version: &str) -> super::TextEmbeddingsModel {
        self.wrap(self.inner.text_embeddings_with_version(model_name, model_version))
    }
}

impl super::TextEmbeddingsModel {
    /// A copy with a changed configuration ([`crate::embeddings::TextEmbeddingsModel::configure`]).
    pub fn configure(
        &self,
        change: impl FnOnce(TextEmbeddingsConfig) -> TextEmbeddingsConfig,
    ) -> Result<super::TextEmbeddingsModel> {
        Ok(self.wrap(self.inner.configure(change)?))
    }

    /// The embedding of one text.
    pub fn run(&self, text: impl Into<String>) -> Call<AsyncCall<Embed>, Embedding> {
        self.call(self.inner.run(text))
    }

    /// The embeddings of many texts, in their order ([`RunMany`]); `.send()` them.
    pub fn run_many<I>(&self, texts: I) -> Call<RunMany, Vec<Embedding>>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.call(self.inner.run_many(texts))
    }

    /// Starts tuning on pairs or triplets; returns the tuning task.
    pub fn tune_deferred(
        &self,
        train: impl TuningDatasets,
        tune_type: EmbeddingsTuneType,
    ) -> Call<AsyncCall<TuneDeferred<TextEmbeddingsModel>>, super::TuningTask<TextEmbeddingsModel>> {
        self.call_handle(self.inner.tune_deferred(train, tune_type))
    }

    /// Tunes and waits for the tuned model.
    pub fn tune(
        &self,
        train: impl TuningDatasets,
        tune_type: EmbeddingsTuneType,
    ) -> Call<AsyncCall<Tune<TextEmbeddingsModel>>, super::TextEmbeddingsModel> {
        self.call_handle(self.inner.tune(train, tune_type))
    }

    /// Re-attaches to an embeddings tuning by its operation id. No RPC is made.
    pub fn attach_tune_deferred(&self, id: impl Into<String>) -> super::TuningTask<TextEmbeddingsModel> {
        self.wrap(self.inner.attach_tune_deferred(id))
    }
}
