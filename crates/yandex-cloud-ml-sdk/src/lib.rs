//! # yandex-cloud-ml-sdk
//!
//! Async Rust SDK for the text-generation models of Yandex Cloud AI Studio (Foundation
//! Models), speaking gRPC to the cloud over TLS: completions, text embeddings, datasets,
//! fine-tuning and batch inference, with a credential chain, endpoint discovery, bounded retries and deadlines.
//!
//! ```no_run
//! # async fn demo() -> yandex_cloud_ml_sdk::Result<()> {
//! use yandex_cloud_ml_sdk::Sdk;
//! let sdk = Sdk::from_env()?; // YC_FOLDER_ID, and YC_API_KEY / YC_IAM_TOKEN / … (see Credentials::from_env)
//! let model = sdk.models().completions("yandexgpt");
//! let result = model.run("hello").await?;
//! println!("{} [{}; {} tokens]", result.text(), result.model_version(), result.usage().total_tokens);
//! # Ok(()) }
//! ```
//!
//! Offline, point it at the local emulator (crate `yandex-cloud-ml-emulator`) with
//! [`SdkBuilder::emulator`] or the `YCML_EMULATOR_HOST` environment variable; every example of
//! this crate runs that way when no folder is configured.
//!
//! ## Domains
//!
//! | module | entry point | what |
//! |---|---|---|
//! | [`completions`] | `sdk.models().completions("yandexgpt")` | `run`, `run_stream`, `run_deferred`, `attach_deferred`, `tokenize`, `run_structured`, `configure` |
//! | [`embeddings`] | `sdk.models().text_embeddings("doc")` | `run` one text, `run_many` a corpus in order, `configure(dim)` |
//! | [`tools`] | `c.tool(FunctionTool::from_type::<T>())` | function calling: tools, calls, results, tool choice |
//! | [`datasets`] | `sdk.datasets()` | upload files of examples (streamed, in parallel parts), validate, list, read, download |
//! | [`tuning`] | `model.tune(&train)`, `sdk.tuning()` | fine-tune a model; the tuned model is a model URI |
//! | [`batch`] | `model.batch().run_deferred(&dataset)`, `sdk.batch()` | answer every row of a dataset |
//! | [`operations`] | `sdk.operations()` | long-running work: `Operation`, `Wait`, progress |
//! | [`list`] | `sdk.datasets().list()`, … | listings: every page, or a lazy stream |
//! | [`blocking`] | `blocking::Sdk::from_env()` | the same API without `async` (feature `blocking`) |
//!
//! ## One way to call, list, wait and cancel
//!
//! Every method that talks to the cloud returns a [`Call`]: set `.timeout` (the whole logical
//! call, retries included), `.attempt_timeout` and `.retry_policy`, then `.await` it. Listings
//! are calls too ([`list::List`]): `.await` gives every item of every page, `.stream()` reads
//! them lazily. Long work — a deferred completion, a dataset validation, a tuning, a batch run —
//! is a handle with `id()`, `info()`, `status()`, `result()`, `cancel()` and `wait()`; a
//! [`Wait`](operations::Wait) polls with a backoff and reports [`Progress`](operations::Progress)
//! to one kind of callback.
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! use std::time::Duration;
//! let train = sdk
//!     .datasets()
//!     .completions()
//!     .draft_from_path("train.jsonl")
//!     .upload()
//!     .on_progress(|p| eprintln!("{}: {}/{:?}", p.stage, p.done, p.total))
//!     .await?;
//! let task = sdk.models().completions("yandexgpt-lite").tune_deferred(&train).await?;
//! let tuned = task.wait().poll_interval(Duration::from_secs(30)).await?;
//! println!("{}", tuned.uri()); // gpt://<folder>/yandexgpt-lite/latest@<suffix>: keep it
//! # Ok(()) }
//! ```
//!
//! Errors are one [`Error`] with a kind, the gRPC code, request ids, structured details from the
//! domain ([`Error::details`]) and, when the SDK knows, what to do ([`Error::remedy`]).

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
pub mod batch;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
pub mod call;
pub mod chat;
mod clock;
pub mod completions;
pub mod datasets;
pub mod embeddings;
mod error;
mod json;
pub mod list;
pub mod operations;
mod presigned;
#[cfg(test)]
mod property_tests;
mod retry;
mod sdk;
mod timestamp;
pub mod tools;
mod transport;
pub mod tuning;
mod wire_enum;

pub use auth::{Credentials, Secret, ServiceAccountKey};
pub use call::Call;
pub use error::{Code, Error, ErrorKind, Remedy, Result, WithoutRemedy};
pub use retry::RetryPolicy;
pub use sdk::{
    EMULATOR_API_KEY, EMULATOR_FOLDER_ID, ENV_API_ENDPOINT, ENV_EMULATOR_HOST, ENV_FOLDER_ID, Models, Sdk, SdkBuilder,
    Tls,
};

/// The generated protobuf types and gRPC stubs, for exact wire access. Prefer the SDK's own
/// types; these follow the `.proto` files and may change with them.
pub use yandex_cloud_ml_proto as proto;
