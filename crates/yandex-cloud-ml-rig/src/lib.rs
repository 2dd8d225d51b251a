//! # yandex-cloud-ml-rig
//!
//! A [rig](https://docs.rs/rig-core) provider for Yandex Cloud AI Studio text generation:
//! [`RigExt::rig`] turns a configured [`GptModel`] into a rig completion model that agents,
//! extractors and pipelines use like any other provider. It is the Rust counterpart of the
//! Python SDK's `model.langchain()`, without its gaps: tools and tool calls round-trip through
//! rig's tool loop, streaming delivers deltas, per-request temperature and token limits apply,
//! structured output uses the model's JSON-schema mode, usage reports reasoning tokens, and
//! errors carry a transient flag that matches the SDK's own retry policy. A failed call has
//! used the SDK's retries already, so rig needs no second retry layer; the exception is a
//! stream that fails after its first chunk, which the SDK never replays (chunks would be
//! delivered twice): there `transient` tells the caller whether starting over may succeed.
//!
//! The transport is the SDK's gRPC client, so requests must run inside a Tokio runtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use yandex_cloud_ml_rig::RigExt;
//! let sdk = yandex_cloud_ml_sdk::Sdk::from_env()?;
//! let model = sdk.models().completions("yandexgpt").configure(|c| c.temperature(0.3))?.rig();
//! let answer = model.call("Say hello").await?;
//! println!("{}", answer.text());
//! # Ok(()) }
//! ```
//!
//! The crate is versioned apart from the SDK and pins `rig-core` exactly (0.44.0), because
//! rig's provider traits change between minor releases.

#![warn(missing_docs)]
// rig fixes the error types (ProviderError, EncodeError) that its traits return.
#![allow(clippy::result_large_err)]

mod decode;
mod embed;
mod encode;
mod transport;

use yandex_cloud_ml_sdk::{completions::GptModel, embeddings::TextEmbeddingsModel};

pub use self::{
    decode::{LastFrame, YandexDecoder},
    embed::{EmbeddingDecoder, EmbeddingPayload, MAX_DOCUMENTS, YandexEmbeddingTransport, YandexEmbeddingWire},
    encode::{Payload, YandexWire},
    transport::{YandexTransport, provider_error},
};

/// A Yandex text-generation model as a rig completion model.
pub type RigModel = rig_core::Model<YandexWire, YandexTransport>;

/// A Yandex text-embeddings model as a rig embedding model (for `EmbeddingsBuilder` and vector
/// indexes).
pub type RigEmbeddingModel = rig_core::Model<YandexEmbeddingWire, YandexEmbeddingTransport>;

/// The wire's name in rig's descriptors and telemetry.
pub const PROVIDER: &str = "yandex";

/// `model.rig()`: the rig adapter of an SDK model.
pub trait RigExt {
    /// The rig model it becomes.
    type Rig;

    /// A completion model ([`RigModel`]) that sends every request through this model, with
    /// its `configure()` settings as defaults that each rig request can override; or an
    /// embedding model ([`RigEmbeddingModel`]) that embeds each batch with `run_many`.
    fn rig(&self) -> Self::Rig;
}

impl RigExt for GptModel {
    type Rig = RigModel;

    fn rig(&self) -> RigModel {
        rig_core::Model::new(YandexWire::new(self.clone()), YandexTransport)
    }
}

impl RigExt for TextEmbeddingsModel {
    type Rig = RigEmbeddingModel;

    fn rig(&self) -> RigEmbeddingModel {
        rig_core::Model::new(YandexEmbeddingWire { model: self.clone() }, YandexEmbeddingTransport)
    }
}
