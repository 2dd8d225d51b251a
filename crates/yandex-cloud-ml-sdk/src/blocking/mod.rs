//! The blocking flavour (feature `blocking`): the same API without `async`, for scripts,
//! command-line tools and programs that have no async runtime.
//!
//! It is a thin layer over the async API, not a second implementation: a blocking [`Sdk`]
//! owns one small Tokio runtime (as `reqwest::blocking` does) and every method runs the
//! matching async call on it. Calls return a [`Call`] to configure and [`send`](Call::send);
//! streams are [`Iterator`]s, and dropping one cancels the call on the server.
//!
//! ```no_run
//! # fn demo() -> yandex_cloud_ml_sdk::Result<()> {
//! use yandex_cloud_ml_sdk::blocking::Sdk;
//! let sdk = Sdk::from_env()?;
//! let model = sdk.models().completions("yandexgpt");
//! println!("{}", model.run("hello").send()?.text());
//! for chunk in model.run_stream("tell a story").send()? {
//!     print!("{}", chunk?.delta());
//! }
//! # Ok(()) }
//! ```
//!
//! Inside an async runtime (a `#[tokio::main]` program, a task, `spawn_blocking`) every call
//! returns an error of kind [`Configuration`](crate::ErrorKind::Configuration) instead of
//! blocking a runtime thread: use the async API there.

mod batch;
mod chat;
mod completions;
mod datasets;
mod embeddings;
mod operations;
mod stream;
mod tuning;

use std::{future::IntoFuture, ops::Deref, sync::Arc, time::Duration};

pub use self::stream::{BoxStream, ChatStream, CompletionStream, Iter};
use crate::{
    error::{Error, Result},
    retry::RetryPolicy,
};

/// A blocking SDK client: the async [`crate::Sdk`] plus the runtime it runs on.
pub type Sdk = Blocking<crate::Sdk>;
/// A blocking [`crate::Models`].
pub type Models = Blocking<crate::Models>;
/// A blocking [`crate::completions::GptModel`].
pub type GptModel = Blocking<crate::completions::GptModel>;
/// A blocking [`crate::embeddings::TextEmbeddingsModel`].
pub type TextEmbeddingsModel = Blocking<crate::embeddings::TextEmbeddingsModel>;
/// A blocking [`crate::chat::Chat`].
pub type Chat = Blocking<crate::chat::Chat>;
/// A blocking [`crate::chat::ChatModel`].
pub type ChatModel = Blocking<crate::chat::ChatModel>;
/// A blocking [`crate::chat::ChatEmbeddingsModel`].
pub type ChatEmbeddingsModel = Blocking<crate::chat::ChatEmbeddingsModel>;
/// A blocking [`crate::operations::Operation`].
pub type Operation<T> = Blocking<crate::operations::Operation<T>>;
/// A blocking [`crate::operations::Operations`].
pub type Operations = Blocking<crate::operations::Operations>;
/// A blocking [`crate::datasets::Datasets`].
pub type Datasets = Blocking<crate::datasets::Datasets>;
/// A blocking [`crate::datasets::Dataset`].
pub type Dataset = Blocking<crate::datasets::Dataset>;
/// A blocking [`crate::datasets::DatasetDraft`].
pub type DatasetDraft = Blocking<crate::datasets::DatasetDraft>;
/// A blocking [`crate::tuning::Tuning`].
pub type Tuning = Blocking<crate::tuning::Tuning>;
/// A blocking [`crate::tuning::TuningTask`] (of a completion model unless `M` says otherwise).
pub type TuningTask<M = crate::completions::GptModel> = Blocking<crate::tuning::TuningTask<M>>;
/// A blocking [`crate::batch::Batches`].
pub type Batches = Blocking<crate::batch::Batches>;
/// A blocking [`crate::batch::ModelBatch`].
pub type ModelBatch = Blocking<crate::batch::ModelBatch>;
/// A blocking [`crate::batch::BatchTask`].
pub type BatchTask = Blocking<crate::batch::BatchTask>;
/// A blocking [`crate::list::List`]: iterate it (pages are fetched as the iteration goes), or
/// set its filters and options with `.with(|l| …)` first.
pub type List<Q> = Blocking<crate::list::List<Q>>;

/// The runtime a blocking client owns, shared by every handle made from it (opaque).
#[derive(Clone)]
pub struct Runtime(Arc<Owned>);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("blocking::Runtime")
    }
}

/// What a blocking call, listing or operation hands back: plain data as it is, SDK handles (a
/// dataset, a tuned model) bound to the blocking client's runtime.
pub trait BlockingOutput {
    /// The blocking form.
    type Blocking;
    #[doc(hidden)]
    fn bind(self, runtime: &Runtime) -> Self::Blocking;
}

macro_rules! plain_output {
    ($($t:ty),*) => {$(
        impl BlockingOutput for $t {
            type Blocking = $t;
            fn bind(self, _: &Runtime) -> $t {
                self
            }
        }
    )*};
}

plain_output!(
    crate::completions::CompletionResult,
    prost_types::Any,
    yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::BatchCompletionResponse,
    crate::tuning::TuningTaskInfo,
    crate::batch::BatchTaskInfo
);

macro_rules! handle_output {
    ($($t:ty),*) => {$(
        impl BlockingOutput for $t {
            type Blocking = Blocking<$t>;
            fn bind(self, runtime: &Runtime) -> Blocking<$t> {
                Blocking { inner: self, rt: runtime.clone() }
            }
        }
    )*};
}

handle_output!(crate::datasets::Dataset, crate::completions::GptModel);

struct Owned(Option<tokio::runtime::Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; let it wind down in the background.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Runtime {
    fn new() -> Result<Runtime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ycml-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::configuration(format!("could not start the blocking client's runtime: {e}")))?;
        Ok(Runtime(Arc::new(Owned(Some(runtime)))))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.0.0.as_ref().expect("the runtime lives as long as its last handle")
    }

    /// Runs `future` to completion on this thread, or refuses inside an async runtime (where
    /// blocking would stall its thread, and nesting runtimes panics).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::configuration(
                "the blocking API was called from inside an async runtime, where it would block the runtime's \
                 thread; use the async API (yandex_cloud_ml_sdk::Sdk) there",
            ));
        }
        Ok(self.runtime().block_on(future))
    }

    /// Runs `make` with this runtime as the current one, for calls that spawn tasks.
    pub(crate) fn enter<T>(&self, make: impl FnOnce() -> T) -> T {
        let _guard = self.runtime().enter();
        make()
    }
}

/// An async SDK handle bound to the runtime of its blocking client. Reading accessors (`id`,
/// `uri`, `config`, `info`, …) come through `Deref`; every method that talks to the cloud has
/// a blocking counterpart on this type.
#[derive(Clone)]
pub struct Blocking<T> {
    inner: T,
    rt: Runtime,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Blocking").field(&self.inner).finish()
    }
}

impl<T> Deref for Blocking<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> Blocking<T> {
    pub(crate) fn wrap<U>(&self, inner: U) -> Blocking<U> {
        Blocking { inner, rt: self.rt.clone() }
    }

    /// The async handle, e.g. to use it from async code.
    pub fn into_async(self) -> T {
        self.inner
    }

    /// Changes the wrapped async builder (a draft's task type, a listing's filter, …).
    pub fn with(self, change: impl FnOnce(T) -> T) -> Self {
        Blocking { inner: change(self.inner), rt: self.rt }
    }

    /// A pending call whose output is plain data.
    pub(crate) fn call<F, O>(&self, inner: F) -> Call<F, O>
    where
        F: IntoFuture<Output = Result<O>>,
    {
        Call { inner, rt: self.rt.clone(), convert: |output, _| output }
    }

    /// A pending call whose output is an async handle, bound to this runtime when it arrives.
    pub(crate) fn call_handle<F, O>(&self, inner: F) -> Call<F, Blocking<O>>
    where
        F: IntoFuture<Output = Result<O>>,
    {
        Call {
            inner,
            rt: self.rt.clone(),
            convert: |output, rt| output.map(|inner| Blocking { inner, rt: rt.clone() }),
        }
    }

    /// A pending call whose output is plain data or a handle, as [`BlockingOutput`] says.
    pub(crate) fn call_bound<F, O>(&self, inner: F) -> Call<F, O::Blocking>
    where
        F: IntoFuture<Output = Result<O>>,
        O: BlockingOutput,
    {
        Call { inner, rt: self.rt.clone(), convert: |output, rt| output.map(|o| o.bind(rt)) }
    }
}

impl Sdk {
    /// A blocking client configured like [`crate::Sdk::from_env`].
    pub fn from_env() -> Result<Sdk> {
        Sdk::new(crate::Sdk::builder().from_env())
    }

    /// A blocking client from an async builder, e.g.
    /// `Sdk::new(yandex_cloud_ml_sdk::Sdk::builder().folder_id("b1g…").api_key(key))`.
    pub fn new(builder: crate::SdkBuilder) -> Result<Sdk> {
        let rt = Runtime::new()?;
        let inner = rt.enter(|| builder.build())?;
        Ok(Blocking { inner, rt })
    }
}

impl crate::SdkBuilder {
    /// Builds a blocking client (feature `blocking`); see [`blocking::Sdk`](Sdk).
    #[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
    pub fn build_blocking(self) -> Result<Sdk> {
        Sdk::new(self)
    }
}

/// A configured request of the blocking API: set per-call options, then [`send`](Call::send)
/// it. Nothing is sent before that.
#[must_use = "a call does nothing until sent"]
pub struct Call<F: IntoFuture, O> {
    inner: F,
    rt: Runtime,
    convert: fn(F::Output, &Runtime) -> Result<O>,
}

impl<F: IntoFuture + std::fmt::Debug, O> std::fmt::Debug for Call<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("blocking::Call").field(&self.inner).finish()
    }
}

impl<F: IntoFuture, O> Call<F, O> {
    /// Sends the request and blocks until its answer (or error) arrives.
    pub fn send(self) -> Result<O> {
        let output = self.rt.block_on(self.inner.into_future())?;
        (self.convert)(output, &self.rt)
    }

    /// Changes the wrapped async call: the way to every option without a shortcut here (a
    /// tuning's validation datasets: `.with(|c| c.validation(id))`, a download's
    /// `.with(|d| d.exist_ok(true))`, `tune`'s `.with(|c| c.poll_interval(d))`).
    pub fn with(self, change: impl FnOnce(F) -> F) -> Self {
        Call { inner: change(self.inner), ..self }
    }

    /// The wrapped async call.
    pub fn as_async(&self) -> &F {
        &self.inner
    }
}

impl<A: crate::call::Action, O> Call<crate::Call<A>, O> {
    /// Overall deadline: all attempts, backoff and (for streams) reading to the end.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.timeout(timeout))
    }

    /// Bound of a single attempt (for streams: until the first chunk).
    pub fn attempt_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.attempt_timeout(timeout))
    }

    /// Retry policy for this call only.
    pub fn retry_policy(self, policy: RetryPolicy) -> Self {
        self.with(|c| c.retry_policy(policy))
    }
}

impl<T: Send + 'static, O> Call<crate::operations::Wait<T>, O> {
    /// Longest time between polls.
    pub fn poll_interval(self, interval: Duration) -> Self {
        self.with(|w| w.poll_interval(interval))
    }

    /// How long to wait in total before giving up (the work keeps running on the server).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|w| w.timeout(timeout))
    }

    /// Called with every progress report while the work runs (on the client's runtime: do not
    /// call the blocking API from it).
    pub fn on_progress(self, callback: impl Fn(&crate::operations::Progress) + Send + Sync + 'static) -> Self {
        self.with(|w| w.on_progress(callback))
    }
}

impl<Q: crate::list::ListRpc> IntoIterator for List<Q>
where
    Q::Item: BlockingOutput,
    <Q::Item as BlockingOutput>::Blocking: Send + 'static,
{
    type Item = Result<<Q::Item as BlockingOutput>::Blocking>;
    type IntoIter = Iter<BoxStream<<Q::Item as BlockingOutput>::Blocking>>;

    fn into_iter(self) -> Self::IntoIter {
        use futures_util::StreamExt;
        let rt = self.rt.clone();
        Iter::boxed(&self.rt, move || self.inner.stream().map(move |item| item.map(|i| i.bind(&rt))))
    }
}
