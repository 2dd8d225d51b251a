//! The OpenAI-compatible API of AI Studio (`sdk.chat()`): chat completions of every model
//! family the cloud serves, text embeddings and the folder's model listing, over HTTPS with the
//! SDK's credentials, retries and call options.
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! use futures_util::StreamExt;
//! let model = sdk.chat().completions("qwen3-235b-a22b-fp8");
//! println!("{}", model.run("hello").await?.text());
//! let mut stream = model.run_stream("tell me about platypuses").await?;
//! while let Some(delta) = stream.next().await {
//!     print!("{}", delta?.delta());
//! }
//! # Ok(()) }
//! ```

mod config;
mod embeddings;
mod message;
mod model;
mod models;
mod result;
mod stream;

pub use self::{
    config::{ChatModelConfig, ChatResponseFormat, ReasoningEffort},
    embeddings::{ChatEmbeddingsModel, EmbedText},
    message::{ChatMessage, Content, ContentPart, ImageUrl, IntoChatMessages},
    model::{ChatModel, Run, RunStream},
    models::{ListModels, ModelInfo},
    result::{ChatChoice, ChatResult, ChatToolCall, FinishReason},
    stream::{ChatDelta, ChatStream},
};
pub use crate::transport::openai::ApiErrorBody;
use crate::{call::Call, sdk::Sdk};

/// The OpenAI-compatible API's models of an [`Sdk`].
#[derive(Debug, Clone)]
pub struct Chat {
    sdk: Sdk,
}

impl Sdk {
    /// The OpenAI-compatible API: [`completions`](Chat::completions),
    /// [`text_embeddings`](Chat::text_embeddings), [`models`](Chat::models).
    pub fn chat(&self) -> Chat {
        Chat { sdk: self.clone() }
    }
}

impl Chat {
    /// A chat model by name (`qwen3-235b-a22b-fp8` → `gpt://<folder>/qwen3-235b-a22b-fp8/latest`)
    /// or by full URI (a name with `://`, e.g. a tuned model's).
    pub fn completions(&self, name: &str) -> ChatModel {
        self.completions_with_version(name, "latest")
    }

    /// A chat model at `version` (`latest`, `rc`, `deprecated`).
    pub fn completions_with_version(&self, name: &str, version: &str) -> ChatModel {
        ChatModel::new(self.sdk.clone(), uri("gpt", self.sdk.folder_id(), name, version))
    }

    /// An embedding model by name (`text-search-doc` → `emb://<folder>/text-search-doc/latest`;
    /// unlike the gRPC API, `doc` and `query` are not expanded, as in the Python SDK) or URI.
    pub fn text_embeddings(&self, name: &str) -> ChatEmbeddingsModel {
        ChatEmbeddingsModel::new(self.sdk.clone(), uri("emb", self.sdk.folder_id(), name, "latest"))
    }

    /// The models the folder can use, tuned ones included. Default timeout 60 s.
    pub fn models(&self) -> Call<ListModels> {
        Call::new(ListModels { sdk: self.sdk.clone() })
    }
}

fn uri(scheme: &str, folder: &str, name: &str, version: &str) -> String {
    if name.contains("://") { name.to_owned() } else { format!("{scheme}://{folder}/{name}/{version}") }
}
