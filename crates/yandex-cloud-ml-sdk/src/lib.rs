//! # yandex-cloud-ml-sdk
//!
//! Async Rust SDK for the text-generation models of Yandex Cloud AI Studio (Foundation
//! Models), speaking gRPC to the cloud over TLS. It covers what the official Python SDK's
//! `AsyncCompletions`/`AsyncGPTModel` do — model URIs, `run`, `run_stream`, `run_deferred`,
//! `attach_deferred`, `tokenize`, `configure` — with a credential chain, endpoint discovery,
//! bounded retries and deadlines.
//!
//! ```no_run
//! # async fn demo() -> yandex_cloud_ml_sdk::Result<()> {
//! use yandex_cloud_ml_sdk::Sdk;
//! let sdk = Sdk::builder().folder_id("b1g...").api_key("AQVN...").build()?;
//! let model = sdk.models().completions("yandexgpt");
//! let result = model.run("hello").await?;
//! println!("{} [{}; {} tokens]", result.text(), result.model_version(), result.usage().total_tokens);
//! # Ok(()) }
//! ```
//!
//! For offline work, point the SDK at the local emulator (`yandex-cloud-ml-emulator`) with
//! [`SdkBuilder::emulator`] or the `YCML_EMULATOR_HOST` environment variable.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
pub mod batch;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
pub mod call;
mod clock;
pub mod completions;
pub mod datasets;
mod error;
mod json;
pub mod operations;
mod pager;
mod presigned;
#[cfg(test)]
mod property_tests;
mod retry;
mod sdk;
pub mod tools;
mod transport;
pub mod tuning;

pub use auth::{Credentials, Secret, ServiceAccountKey};
pub use call::Call;
pub use error::{Code, Error, ErrorDetails, ErrorKind, Result};
pub use retry::RetryPolicy;
pub use sdk::{
    EMULATOR_API_KEY, EMULATOR_FOLDER_ID, ENV_API_ENDPOINT, ENV_EMULATOR_HOST, ENV_FOLDER_ID, Models, Sdk, SdkBuilder,
    Tls,
};

/// The generated protobuf types and gRPC stubs, for exact wire access. Prefer the SDK's own
/// types; these follow the `.proto` files and may change with them.
pub use yandex_cloud_ml_proto as proto;
