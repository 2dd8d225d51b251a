//! Sends a payload through the SDK (its auth, deadlines and retries) and hands rig the
//! cumulative results as frames.

use futures_util::{StreamExt, stream};
use rig_core::{
    ProviderError, ProviderResponseError,
    driver::{Exchange, Opened, Opening, Transport},
    wire::Mode,
};
use yandex_cloud_ml_sdk::{Error, completions::CompletionResult};

use crate::encode::{Payload, YandexWire};

/// The transport of [`YandexWire`]: `run` for unary calls, `run_stream` for streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct YandexTransport;

impl Transport<YandexWire> for YandexTransport {
    fn send(&self, payload: Payload, exchange: Exchange) -> Opening<CompletionResult> {
        Opening::new(async move {
            let Payload { model, messages } = payload;
            match exchange.mode {
                Mode::Unary => {
                    let result = model.run(messages).await.map_err(provider_error)?;
                    let document = serde_json::to_value(&result).unwrap_or_default();
                    Ok(Opened::new(stream::iter([Ok(result)])).with_document(document))
                }
                Mode::Streaming => {
                    let chunks = model.run_stream(messages).await.map_err(provider_error)?;
                    let request_id = chunks.request_id().to_owned();
                    // The first error is the last item: rig must not read past it.
                    let frames = chunks
                        .scan(false, |failed, chunk| {
                            if *failed {
                                return std::future::ready(None);
                            }
                            *failed = chunk.is_err();
                            std::future::ready(Some(chunk.map(|c| c.into_result()).map_err(provider_error)))
                        })
                        .boxed();
                    Ok(Opened::new(frames).with_request_id(Some(request_id)))
                }
            }
        })
    }
}

/// An SDK error as rig's: the gRPC code name, the message, the server's request id, and
/// `transient` set exactly when the call's retry policy counts the failure as retryable (the
/// SDK has retried it already, unless a stream failed after its first chunk). Rejected
/// credentials become rig's invalid-authentication error.
pub fn provider_error(error: Error) -> ProviderError {
    let code = error.code().map(|c| c.as_str().to_owned());
    if error.is_auth() {
        return ProviderError::InvalidAuthentication(
            ProviderResponseError::without_status(error.to_string()).with_code(code).with_transient(Some(false)),
        );
    }
    let request_id = error.server_request_id().or(error.client_request_id()).map(str::to_owned);
    ProviderError::from_provider_body(error.to_string())
        .with_provider_code(code)
        .with_transient(Some(error.is_retryable()))
        .with_provider_request_id(request_id)
}
