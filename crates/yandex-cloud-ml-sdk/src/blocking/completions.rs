//! The blocking client's entry points and the completion models, one line per async method.

use super::{Call, CompletionStream, Iter};
use crate::{
    call::Call as AsyncCall,
    completions::{CompletionResult, GptModelConfig, IntoMessages, Run, RunDeferred, RunStream, Token, Tokenize},
    error::Result,
};

impl super::Sdk {
    /// Models by name ([`crate::Sdk::models`]).
    pub fn models(&self) -> super::Models {
        self.wrap(self.inner.models())
    }
}

impl super::Models {
    /// A completion model by name or URI ([`crate::Models::completions`]).
    pub fn completions(&self, model_name: &str) -> super::GptModel {
        self.wrap(self.inner.completions(model_name))
    }

    /// A completion model by name and version.
    pub fn completions_with_version(&self, model_name: &str, model_version: &str) -> super::GptModel {
        self.wrap(self.inner.completions_with_version(model_name, model_version))
    }
}

impl super::GptModel {
    /// A copy with a changed configuration ([`crate::completions::GptModel::configure`]).
    pub fn configure(&self, change: impl FnOnce(GptModelConfig) -> GptModelConfig) -> Result<super::GptModel> {
        Ok(self.wrap(self.inner.configure(change)?))
    }

    /// One answer, when it is complete (`Completion`).
    pub fn run(&self, messages: impl IntoMessages) -> Call<AsyncCall<Run>, CompletionResult> {
        self.call(self.inner.run(messages))
    }

    /// The answer as it is generated: an iterator of chunks.
    pub fn run_stream(&self, messages: impl IntoMessages) -> Call<AsyncCall<RunStream>, CompletionStream> {
        Call {
            inner: self.inner.run_stream(messages),
            rt: self.rt.clone(),
            convert: |stream, rt| stream.map(|s| Iter::new(s, rt)),
        }
    }

    /// Starts a deferred generation and returns its operation.
    pub fn run_deferred(
        &self,
        messages: impl IntoMessages,
    ) -> Call<AsyncCall<RunDeferred>, super::Operation<CompletionResult>> {
        self.call_handle(self.inner.run_deferred(messages))
    }

    /// Re-attaches to a deferred generation by operation id. No RPC is made.
    pub fn attach_deferred(&self, operation_id: impl Into<String>) -> super::Operation<CompletionResult> {
        self.wrap(self.inner.attach_deferred(operation_id))
    }

    /// The tokens of the messages as the model sees them.
    pub fn tokenize(&self, messages: impl IntoMessages) -> Call<AsyncCall<Tokenize>, Vec<Token>> {
        self.call(self.inner.tokenize(messages))
    }

    /// An answer constrained to the JSON schema of `T`, deserialized.
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub fn run_structured<T>(
        &self,
        messages: impl IntoMessages,
    ) -> Call<AsyncCall<crate::completions::RunStructured<T>>, T>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
    {
        self.call(self.inner.run_structured(messages))
    }
}
