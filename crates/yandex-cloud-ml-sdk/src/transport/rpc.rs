//! Descriptors of the RPCs the SDK calls: path, service id for routing, and how the SDK
//! treats them.
//!
//! Routing follows the cloud's published service URLs and the official SDK: text generation,
//! tokenization, embeddings, datasets, tuning and batch inference all live at the `ai-foundation-models`
//! endpoint (`llm.api.cloud.yandex.net:443`, the "Service URL" of the Dataset and Tuning API
//! references). Discovery also lists `fomo-dataset` and `fomo-tuning`, but no published
//! client uses them. Operations of deferred completions are polled at `operation`; those of
//! datasets and tuning at `ai-foundation-models`, where they were started.

use yandex_cloud_ml_proto::paths;

/// Service ids of the cloud's endpoint discovery (`ApiEndpointService/List`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Service {
    /// Discovery itself (`api.cloud.yandex.net:443`).
    Endpoint = 0,
    /// IAM token exchange.
    Iam = 1,
    /// Operation polling for deferred completions.
    Operation = 2,
    /// Foundation models, tokenizer, datasets, tuning and batch inference.
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
    /// `Service/Method`, for errors and logs.
    pub name: &'static str,
    pub service: Service,
    /// Whether the call carries the `authorization` header (discovery and IAM do not).
    pub authenticated: bool,
    /// Whether the call creates something on the server (gets an `idempotency-key`).
    pub mutating: bool,
    /// Whether request or response payloads carry credentials or signed URLs (never logged in
    /// clear).
    pub secret_payload: bool,
}

/// `Service/Method` of `/package.Service/Method`, worked out at compile time.
const fn name_of(path: &'static str) -> &'static str {
    let bytes = path.as_bytes();
    let mut start = bytes.len();
    while start > 0 && bytes[start - 1] != b'.' {
        start -= 1;
    }
    match std::str::from_utf8(bytes.split_at(start).1) {
        Ok(name) => name,
        Err(_) => path,
    }
}

const fn rpc(path: &'static str, service: Service, mutating: bool) -> Rpc {
    Rpc { path, name: name_of(path), service, authenticated: true, mutating, secret_payload: false }
}

pub(crate) static LIST_ENDPOINTS: Rpc =
    Rpc { authenticated: false, ..rpc(paths::API_ENDPOINT_SERVICE_LIST, Service::Endpoint, false) };
pub(crate) static IAM_CREATE_TOKEN: Rpc =
    Rpc { authenticated: false, secret_payload: true, ..rpc(paths::IAM_TOKEN_SERVICE_CREATE, Service::Iam, false) };

pub(crate) static COMPLETION: Rpc = rpc(paths::TEXT_GENERATION_SERVICE_COMPLETION, Service::FoundationModels, false);
pub(crate) static COMPLETION_ASYNC: Rpc =
    rpc(paths::TEXT_GENERATION_ASYNC_SERVICE_COMPLETION, Service::FoundationModels, true);
pub(crate) static TOKENIZE_COMPLETION: Rpc =
    rpc(paths::TOKENIZER_SERVICE_TOKENIZE_COMPLETION, Service::FoundationModels, false);

pub(crate) static TEXT_EMBEDDING: Rpc = rpc(paths::EMBEDDINGS_SERVICE_TEXT_EMBEDDING, Service::FoundationModels, false);

pub(crate) static DATASET_DESCRIBE: Rpc = rpc(paths::DATASET_SERVICE_DESCRIBE, Service::FoundationModels, false);
pub(crate) static DATASET_CREATE: Rpc = rpc(paths::DATASET_SERVICE_CREATE, Service::FoundationModels, true);
pub(crate) static DATASET_VALIDATE: Rpc = rpc(paths::DATASET_SERVICE_VALIDATE, Service::FoundationModels, true);
pub(crate) static DATASET_UPDATE: Rpc = rpc(paths::DATASET_SERVICE_UPDATE, Service::FoundationModels, true);
pub(crate) static DATASET_DELETE: Rpc = rpc(paths::DATASET_SERVICE_DELETE, Service::FoundationModels, true);
pub(crate) static DATASET_LIST: Rpc = rpc(paths::DATASET_SERVICE_LIST, Service::FoundationModels, false);
pub(crate) static DATASET_LIST_UPLOAD_SCHEMAS: Rpc =
    rpc(paths::DATASET_SERVICE_LIST_UPLOAD_SCHEMAS, Service::FoundationModels, false);
// The answers of these carry presigned URLs: whoever has one can read or write the file.
pub(crate) static DATASET_GET_UPLOAD_DRAFT_URL: Rpc =
    Rpc { secret_payload: true, ..rpc(paths::DATASET_SERVICE_GET_UPLOAD_DRAFT_URL, Service::FoundationModels, false) };
pub(crate) static DATASET_START_MULTIPART_UPLOAD_DRAFT: Rpc = Rpc {
    secret_payload: true,
    ..rpc(paths::DATASET_SERVICE_START_MULTIPART_UPLOAD_DRAFT, Service::FoundationModels, true)
};
pub(crate) static DATASET_FINISH_MULTIPART_UPLOAD_DRAFT: Rpc =
    rpc(paths::DATASET_SERVICE_FINISH_MULTIPART_UPLOAD_DRAFT, Service::FoundationModels, true);
pub(crate) static DATASET_GET_DOWNLOAD_URLS: Rpc =
    Rpc { secret_payload: true, ..rpc(paths::DATASET_SERVICE_GET_DOWNLOAD_URLS, Service::FoundationModels, false) };

pub(crate) static TUNING_TUNE: Rpc = rpc(paths::TUNING_SERVICE_TUNE, Service::FoundationModels, true);
pub(crate) static TUNING_DESCRIBE: Rpc = rpc(paths::TUNING_SERVICE_DESCRIBE, Service::FoundationModels, false);
pub(crate) static TUNING_LIST: Rpc = rpc(paths::TUNING_SERVICE_LIST, Service::FoundationModels, false);
pub(crate) static TUNING_GET_METRICS_URL: Rpc =
    Rpc { secret_payload: true, ..rpc(paths::TUNING_SERVICE_GET_METRICS_URL, Service::FoundationModels, false) };

pub(crate) static BATCH_COMPLETION: Rpc =
    rpc(paths::TEXT_GENERATION_BATCH_SERVICE_COMPLETION, Service::FoundationModels, true);
pub(crate) static BATCH_DESCRIBE: Rpc = rpc(paths::BATCH_INFERENCE_SERVICE_DESCRIBE, Service::FoundationModels, false);
pub(crate) static BATCH_LIST: Rpc = rpc(paths::BATCH_INFERENCE_SERVICE_LIST, Service::FoundationModels, false);
pub(crate) static BATCH_CANCEL: Rpc = rpc(paths::BATCH_INFERENCE_SERVICE_CANCEL, Service::FoundationModels, false);
pub(crate) static BATCH_DELETE: Rpc = rpc(paths::BATCH_INFERENCE_SERVICE_DELETE, Service::FoundationModels, false);

static OPERATION_GET: Rpc = rpc(paths::OPERATION_SERVICE_GET, Service::Operation, false);
static OPERATION_CANCEL: Rpc = rpc(paths::OPERATION_SERVICE_CANCEL, Service::Operation, true);
static FM_OPERATION_GET: Rpc = rpc(paths::OPERATION_SERVICE_GET, Service::FoundationModels, false);
static FM_OPERATION_CANCEL: Rpc = rpc(paths::OPERATION_SERVICE_CANCEL, Service::FoundationModels, true);

/// Which endpoint's `OperationService` serves an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationRoute {
    /// `operation`: deferred completions and anything of unknown origin.
    Operation,
    /// `ai-foundation-models`: datasets, tuning and batch operations.
    FoundationModels,
}

impl OperationRoute {
    pub(crate) fn get(self) -> &'static Rpc {
        match self {
            OperationRoute::Operation => &OPERATION_GET,
            OperationRoute::FoundationModels => &FM_OPERATION_GET,
        }
    }

    pub(crate) fn cancel(self) -> &'static Rpc {
        match self {
            OperationRoute::Operation => &OPERATION_CANCEL,
            OperationRoute::FoundationModels => &FM_OPERATION_CANCEL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_service_slash_method() {
        assert_eq!(COMPLETION.name, "TextGenerationService/Completion");
        assert_eq!(OperationRoute::Operation.get().name, "OperationService/Get");
        assert_eq!(LIST_ENDPOINTS.name, "ApiEndpointService/List");
        assert_eq!(COMPLETION.path, "/yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion");
    }
}
