//! The models a folder can use through the OpenAI-compatible API (`GET models`).

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{
    call::{Action, CallOptions},
    completions::uri,
    error::Result,
    sdk::Sdk,
    transport::openai::ApiRequest,
};

/// One model of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelInfo {
    /// Its URI: `gpt://…` for chat models, `emb://…` for embedding models, tuned ones with `@suffix`.
    #[serde(rename = "id")]
    pub uri: String,
    /// Who made it (`Yandex`, `Alibaba`, `OpenAI`, …).
    #[serde(default)]
    pub owned_by: String,
    /// When it was added (Unix seconds; the cloud says 0).
    #[serde(default)]
    pub created: i64,
}

impl ModelInfo {
    /// A chat model (`gpt://`)?
    pub fn is_completions(&self) -> bool {
        self.uri.starts_with("gpt://")
    }

    /// An embedding model (`emb://`)?
    pub fn is_embeddings(&self) -> bool {
        self.uri.starts_with("emb://")
    }

    /// The name parsed from the URI.
    pub fn name(&self) -> Option<&str> {
        uri::parse(&self.uri).map(|p| p.name)
    }

    /// The version parsed from the URI.
    pub fn version(&self) -> Option<&str> {
        uri::parse(&self.uri).map(|p| p.version)
    }

    /// Whether it is a tuned model.
    pub fn fine_tuned(&self) -> bool {
        uri::parse(&self.uri).is_some_and(|p| p.fine_tune.is_some())
    }
}

/// [`Chat::models`](super::Chat::models): the listing.
#[derive(Debug)]
pub struct ListModels {
    pub(crate) sdk: Sdk,
}

#[derive(Deserialize)]
struct Listing {
    data: Vec<ModelInfo>,
}

impl Action for ListModels {
    type Output = Vec<ModelInfo>;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    async fn execute(self, options: CallOptions) -> Result<Vec<ModelInfo>> {
        let request =
            ApiRequest { method: Method::GET, path: "models", body: None, project: Some(self.sdk.folder_id()) };
        let listing: Listing = self.sdk.transport().api_json(request, &options).await?.value;
        Ok(listing.data)
    }
}
