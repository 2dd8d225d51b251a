//! Text generation (the Python SDK's `AsyncCompletions` and `AsyncGPTModel`).
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! use yandex_cloud_ml_sdk::Message;
//! let model = sdk.models().completions("yandexgpt").configure(|c| c.temperature(0.3))?;
//! let answer = model.run([Message::system("Answer briefly."), Message::user("What is Rust?")]).await?;
//! println!("{} ({} tokens)", answer.text(), answer.usage().total_tokens);
//! # Ok(()) }
//! ```

pub(crate) mod config;
pub(crate) mod message;
pub(crate) mod model;
pub(crate) mod result;
pub(crate) mod stream;
pub(crate) mod uri;

use crate::sdk::Sdk;

/// Factory of text-generation models; see [`Models::completions`](crate::Models::completions).
#[derive(Debug, Clone)]
pub(crate) struct Completions {
    sdk: Sdk,
}

impl Completions {
    pub(crate) fn new(sdk: Sdk) -> Completions {
        Completions { sdk }
    }

    pub(crate) fn model(&self, name: &str) -> model::GptModel {
        self.model_with_version(name, "latest")
    }

    pub(crate) fn model_with_version(&self, name: &str, version: &str) -> model::GptModel {
        let uri = uri::model_uri(self.sdk.folder_id(), name, version);
        model::GptModel::new(self.sdk.clone(), uri)
    }
}
