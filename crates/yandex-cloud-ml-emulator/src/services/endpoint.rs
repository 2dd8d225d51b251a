//! `ApiEndpointService`: the discovery table, with every service at the emulator itself.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::yandex::cloud::endpoint::{
    self as pb,
    api_endpoint_service_server::{ApiEndpointService, ApiEndpointServiceServer},
};

use crate::state::State;

/// Service ids the emulator answers for (those the SDKs route to).
pub(crate) const SERVICE_IDS: [&str; 8] =
    ["endpoint", "ai-foundation-models", "ai-llm", "operation", "iam", "fomo-dataset", "fomo-tuning", "ai-assistants"];

pub(crate) struct Endpoints(pub Arc<State>);

impl Endpoints {
    pub(crate) fn server(state: Arc<State>) -> ApiEndpointServiceServer<Endpoints> {
        ApiEndpointServiceServer::new(Endpoints(state))
    }

    fn entry(&self, id: &str) -> pb::ApiEndpoint {
        pb::ApiEndpoint { id: id.to_owned(), address: self.0.advertised.clone() }
    }
}

#[tonic::async_trait]
impl ApiEndpointService for Endpoints {
    async fn get(&self, request: Request<pb::GetApiEndpointRequest>) -> Result<Response<pb::ApiEndpoint>, Status> {
        let id = &request.get_ref().api_endpoint_id;
        if SERVICE_IDS.contains(&id.as_str()) {
            Ok(Response::new(self.entry(id)))
        } else {
            Err(Status::not_found(format!("Api endpoint {} not found", crate::text::shown(id))))
        }
    }

    async fn list(
        &self,
        _request: Request<pb::ListApiEndpointsRequest>,
    ) -> Result<Response<pb::ListApiEndpointsResponse>, Status> {
        Ok(Response::new(pb::ListApiEndpointsResponse {
            endpoints: SERVICE_IDS.iter().map(|id| self.entry(id)).collect(),
            next_page_token: String::new(),
        }))
    }
}
