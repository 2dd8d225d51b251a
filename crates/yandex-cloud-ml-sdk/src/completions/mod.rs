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
mod role;
mod stream;
pub(crate) mod uri;

pub use self::{
    config::{GptModelConfig, ReasoningMode, ResponseFormat},
    message::{IntoMessages, Message},
    model::{GptModel, Run, RunDeferred, RunStream, Tokenize},
    result::{Alternative, AlternativeStatus, CompletionResult, Token, Usage},
    role::Role,
    stream::{CompletionChunk, CompletionStream, StreamInterrupted},
};
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub use model::RunStructured;
#[cfg(test)]
pub(crate) use stream::deltas;

use crate::sdk::Models;

impl Models {
    /// A text-generation model by name (the Python SDK's `sdk.models.completions`): `yandexgpt`
    /// becomes `gpt://<folder>/yandexgpt/latest`. A full URI is taken as it is, which is how a
    /// tuned model is named: `completions("gpt://b1g…/yandexgpt-lite/latest@tamr…")`.
    pub fn completions(&self, model_name: &str) -> GptModel {
        self.completions_with_version(model_name, "latest")
    }

    /// A text-generation model at a given version (`latest`, `rc`, `deprecated`, …).
    pub fn completions_with_version(&self, model_name: &str, model_version: &str) -> GptModel {
        let uri = uri::model_uri(self.sdk.folder_id(), model_name, model_version);
        GptModel::new(self.sdk.clone(), uri)
    }
}
