//! Descriptors of the RPCs the SDK calls and the per-call options.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// Service ids of the cloud's endpoint discovery (`ApiEndpointService/List`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Service {
    /// Discovery itself (`api.cloud.yandex.net:443`).
    Endpoint = 0,
    /// IAM token exchange.
    Iam = 1,
    /// Operation polling for text-generation operations.
    Operation = 2,
    /// Foundation models, tuning, datasets and batch inference (`llm.api.cloud.yandex.net:443`).
    FoundationModels = 3,
}

impl Service {
    pub(crate) const COUNT: usize = 4;

    /// The id used in the discovery table and in endpoint overrides.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Service::Endpoint => "endpoint",
            Service::Iam => "iam",
            Service::Operation => "operation",
            Service::FoundationModels => "ai-foundation-models",
        }
    }
}

/// One RPC: its gRPC path and how the SDK treats it.
#[derive(Debug)]
pub(crate) struct Rpc {
    /// `/package.Service/Method`.
    pub path: &'static str,
    pub service: Service,
    /// Whether the call carries the `authorization` header (discovery and IAM do not).
    pub authenticated: bool,
    /// Whether the call creates something on the server (gets an `idempotency-key`).
    pub mutating: bool,
}

impl Rpc {
    /// `Service/Method`, for errors and logs.
    pub(crate) fn name(&self) -> &'static str {
        let path = self.path.trim_start_matches('/');
        path.rsplit_once('.').map_or(path, |(_, tail)| tail)
    }
}

macro_rules! rpc {
    ($name:ident, $path:literal, $service:ident, auth = $auth:literal, mutating = $mutating:literal) => {
        pub(crate) static $name: Rpc =
            Rpc { path: $path, service: Service::$service, authenticated: $auth, mutating: $mutating };
    };
}

rpc!(LIST_ENDPOINTS, "/yandex.cloud.endpoint.ApiEndpointService/List", Endpoint, auth = false, mutating = false);
rpc!(IAM_CREATE_TOKEN, "/yandex.cloud.iam.v1.IamTokenService/Create", Iam, auth = false, mutating = false);
rpc!(OPERATION_GET, "/yandex.cloud.operation.OperationService/Get", Operation, auth = true, mutating = false);
rpc!(OPERATION_CANCEL, "/yandex.cloud.operation.OperationService/Cancel", Operation, auth = true, mutating = true);
rpc!(
    COMPLETION,
    "/yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion",
    FoundationModels,
    auth = true,
    mutating = false
);
rpc!(
    COMPLETION_ASYNC,
    "/yandex.cloud.ai.foundation_models.v1.TextGenerationAsyncService/Completion",
    FoundationModels,
    auth = true,
    mutating = true
);
rpc!(
    TOKENIZE_COMPLETION,
    "/yandex.cloud.ai.foundation_models.v1.TokenizerService/TokenizeCompletion",
    FoundationModels,
    auth = true,
    mutating = false
);

/// Timeouts and retry overrides of one logical call.
#[derive(Debug, Clone)]
pub(crate) struct CallOptions {
    /// Budget for the whole call: every attempt, the backoff sleeps and, for streams, reading
    /// the stream to its end.
    pub timeout: Duration,
    /// Bound of a single attempt (for streams: until the first message arrives).
    pub attempt_timeout: Option<Duration>,
    /// Replaces the SDK's retry policy for this call.
    pub retry: Option<RetryPolicy>,
}

impl CallOptions {
    pub(crate) fn with_timeout(timeout: Duration) -> CallOptions {
        CallOptions { timeout, attempt_timeout: None, retry: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_service_slash_method() {
        assert_eq!(COMPLETION.name(), "TextGenerationService/Completion");
        assert_eq!(OPERATION_GET.name(), "OperationService/Get");
        assert_eq!(LIST_ENDPOINTS.name(), "ApiEndpointService/List");
    }
}
