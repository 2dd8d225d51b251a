//! `OperationService`: polling and cancelling operations from the shared store.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::yandex::cloud::operation::{
    self as pb,
    operation_service_server::{OperationService, OperationServiceServer},
};

use crate::state::State;

pub(crate) struct Operations(pub Arc<State>);

impl Operations {
    pub(crate) fn server(state: Arc<State>) -> OperationServiceServer<Operations> {
        OperationServiceServer::new(Operations(state))
    }
}

fn required(id: &str) -> Result<&str, Status> {
    if id.trim().is_empty() { Err(Status::invalid_argument("operation_id: required")) } else { Ok(id) }
}

#[tonic::async_trait]
impl OperationService for Operations {
    async fn get(&self, request: Request<pb::GetOperationRequest>) -> Result<Response<pb::Operation>, Status> {
        Ok(Response::new(self.0.operations.poll(required(&request.get_ref().operation_id)?)?))
    }

    async fn cancel(&self, request: Request<pb::CancelOperationRequest>) -> Result<Response<pb::Operation>, Status> {
        Ok(Response::new(self.0.operations.cancel(required(&request.get_ref().operation_id)?)?))
    }
}
