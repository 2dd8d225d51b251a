//! The OpenAI-compatible API, one line per async method.

use super::{Call, Iter};
use crate::{
    call::Call as AsyncCall,
    chat::{ChatModelConfig, ChatResult, EmbedText, IntoChatMessages, ListModels, ModelInfo, Run, RunStream},
    embeddings::Embedding,
    error::Result,
};

impl super::Sdk {
    /// The OpenAI-compatible API ([`crate::Sdk::chat`]).
    pub fn chat(&self) -> super::Chat {
        self.wrap(self.inner.chat())
    }
}

impl super::Chat {
    /// A chat model by name or URI ([`crate::chat::Chat::completions`]).
    pub fn completions(&self, name: &str) -> super::ChatModel {
        self.wrap(self.inner.completions(name))
    }

    /// A chat model at a version.
    pub fn completions_with_version(&self, name: &str, version: &str) -> super::ChatModel {
        self.wrap(self.inner.completions_with_version(name, version))
    }

    /// An embedding model by name or URI.
    pub fn text_embeddings(&self, name: &str) -> super::ChatEmbeddingsModel {
        self.wrap(self.inner.text_embeddings(name))
    }

    /// The models the folder can use.
    pub fn models(&self) -> Call<AsyncCall<ListModels>, Vec<ModelInfo>> {
        self.call(self.inner.models())
    }
}

impl super::ChatModel {
    /// A copy with a changed configuration ([`crate::chat::ChatModel::configure`]).
    pub fn configure(&self, change: impl FnOnce(ChatModelConfig) -> ChatModelConfig) -> Result<super::ChatModel> {
        Ok(self.wrap(self.inner.configure(change)?))
    }

    /// One answer.
    pub fn run(&self, messages: impl IntoChatMessages) -> Call<AsyncCall<Run>, ChatResult> {
        self.call(self.inner.run(messages))
    }

    /// The answer as it is generated: an iterator of deltas.
    pub fn run_stream(&self, messages: impl IntoChatMessages) -> Call<AsyncCall<RunStream>, super::ChatStream> {
        Call {
            inner: self.inner.run_stream(messages),
            rt: self.rt.clone(),
            convert: |stream, rt| stream.map(|s| Iter::new(s, rt)),
        }
    }
}

impl super::ChatEmbeddingsModel {
    /// A copy asking for vectors of `dimensions`.
    pub fn with_dimensions(&self, dimensions: impl Into<Option<u32>>) -> Result<super::ChatEmbeddingsModel> {
        Ok(self.wrap(self.inner.with_dimensions(dimensions)?))
    }

    /// The vector of one text.
    pub fn run(&self, text: impl Into<String>) -> Call<AsyncCall<EmbedText>, Embedding> {
        self.call(self.inner.run(text))
    }
}
