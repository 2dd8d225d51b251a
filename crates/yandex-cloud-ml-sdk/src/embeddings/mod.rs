//! Text embeddings (the Python SDK's `sdk.models.text_embeddings`): one text in, one vector out
//! (`EmbeddingsService/TextEmbedding`); and, beyond the Python SDK, many texts at once with
//! bounded concurrency, results in input order.
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! let docs = sdk.models().text_embeddings("doc");
//! let query = sdk.models().text_embeddings("query");
//! let corpus = ["Paris is the capital of France.", "Rust is a programming language."];
//! let vectors = docs.run_many(corpus).await?;
//! let question = query.run("What is the capital of France?").await?;
//! println!("{} dimensions, {} tokens", question.len(), question.num_tokens());
//! # let _ = vectors;
//! # Ok(()) }
//! ```

mod many;
mod model;
mod result;

pub use self::{
    many::RunMany,
    model::{Embed, TextEmbeddingsConfig, TextEmbeddingsModel},
    result::Embedding,
};
use crate::sdk::Models;

/// The URI of an embeddings model: a name containing `://` as is; `doc` and `query` are the
/// search models' short names (`text-search-doc`, `text-search-query`); anything else becomes
/// `emb://<folder>/<name>/<version>`.
fn model_uri(folder_id: &str, name: &str, version: &str) -> String {
    let name = match name {
        "doc" => "text-search-doc",
        "query" => "text-search-query",
        other => other,
    };
    if name.contains("://") { name.to_owned() } else { format!("emb://{folder_id}/{name}/{version}") }
}

impl Models {
    /// A text-embeddings model by name (the Python SDK's `sdk.models.text_embeddings`): `doc`
    /// embeds documents (`emb://<folder>/text-search-doc/latest`), `query` embeds search
    /// queries (`text-search-query`); a full URI is taken as it is, which is how a tuned model
    /// is named (`emb://b1g…/text-embeddings/latest@tamr…`).
    pub fn text_embeddings(&self, model_name: &str) -> TextEmbeddingsModel {
        self.text_embeddings_with_version(model_name, "latest")
    }

    /// A text-embeddings model at a given version (`latest`, `rc`, …).
    pub fn text_embeddings_with_version(&self, model_name: &str, model_version: &str) -> TextEmbeddingsModel {
        TextEmbeddingsModel::new(self.sdk.clone(), model_uri(self.sdk.folder_id(), model_name, model_version))
    }
}

#[cfg(test)]
mod tests {
    use super::model_uri;

    #[test]
    fn uris_follow_the_python_sdk() {
        assert_eq!(model_uri("b1g", "doc", "latest"), "emb://b1g/text-search-doc/latest");
        assert_eq!(model_uri("b1g", "query", "rc"), "emb://b1g/text-search-query/rc");
        assert_eq!(model_uri("b1g", "text-embeddings", "latest"), "emb://b1g/text-embeddings/latest");
        let tuned = "emb://b1g/text-embeddings/latest@tamr1";
        assert_eq!(model_uri("other", tuned, "rc"), tuned);
    }
}
