//! Text generation (the Python SDK's `AsyncCompletions` and `AsyncGPTModel`): models, their
//! configuration, messages, results and streams.
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! use yandex_cloud_ml_sdk::completions::Message;
//! let model = sdk.models().completions("yandexgpt").configure(|c| c.temperature(0.3))?;
//! let answer = model.run([Message::system("Answer briefly."), Message::user("What is Rust?")]).await?;
//! println!("{} ({} tokens)", answer.text(), answer.usage().total_tokens);
//! # Ok(()) }
//! ```

mod config;
mod message;
mod model;
mod result;
mod stream;
mod uri;

pub use self::{
    config::{GptModelConfig, ReasoningMode, ResponseFormat},
    message::{IntoMessages, Message, Role},
    model::{GptModel, Run, RunDeferred, RunStream, Tokenize},
    result::{Alternative, AlternativeStatus, CompletionResult, Token, Usage},
    stream::{CompletionChunk, CompletionStream},
};
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub use model::RunStructured;
#[cfg(test)]
pub(crate) use stream::deltas;

use crate::sdk::Sdk;

/// Factory of text-generation models; see [`Models::completions`](crate::sdk::Models::completions).
#[derive(Debug, Clone)]
pub(crate) struct Completions {
    sdk: Sdk,
}

impl Completions {
    pub(crate) fn new(sdk: Sdk) -> Completions {
        Completions { sdk }
    }

    pub(crate) fn model(&self, name: &str) -> GptModel {
        self.model_with_version(name, "latest")
    }

    pub(crate) fn model_with_version(&self, name: &str, version: &str) -> GptModel {
        let uri = uri::model_uri(self.sdk.folder_id(), name, version);
        GptModel::new(self.sdk.clone(), uri)
    }
}
